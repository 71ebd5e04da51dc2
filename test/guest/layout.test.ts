/**
 * The guest layout walk: partitions with their volumes, a failing partition
 * reported with its own error while the others open, and the bytes outside
 * every partition checked against Sleuth Kit mmls's "Unallocated" rows.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChainReader } from '../../src/chain/reader.js';
import { chainSource } from '../../src/chain/guestSource.js';
import { openChain } from '../../src/chain/openChain.js';
import { GuestError } from '../../src/guest/errors.js';
import { readGuestLayout } from '../../src/guest/layout.js';
import { RangeSet } from '../../src/guest/ranges.js';
import type { VolumeReader } from '../../src/guest/readers.js';
import { bufferSource } from '../../src/guest/source.js';
import { swapReader } from '../../src/guest/swap.js';
import type { Volume } from '../../src/guest/volume.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { HAVE_MKFS_EXT4, HAVE_SFDISK, HAVE_TSK, blankImage, embed, partition, run } from '../helpers/guest.js';
import { HAVE_REAL, realPath } from '../helpers/real.js';
import { mbrSector, mmls, put } from '../helpers/tables.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const HAVE_MKSWAP = spawnSync('mkswap', ['--version'], { stdio: 'ignore' }).error === undefined;

let mixed: string | null = null;

/** A disk: p1 type 0x07 holding ext4, p2 swap, an extended partition with p5 swap and p6 blank (made once per file). */
function mixedDisk(): string {
  if (mixed) return mixed;
  const dir = tempDir();
  const disk = blankImage(path.join(dir, 'disk.img'), 64 * MiB);
  partition(
    disk,
    'label: dos\nstart=63, size=16384, type=7\nstart=20480, size=8192, type=82\nstart=32768, size=30000, type=5\n' +
      'start=34816, size=8192, type=82\nstart=45056, size=8192, type=83\n',
  );
  const ext = blankImage(path.join(dir, 'ext.img'), 16384 * 512);
  run('mkfs.ext4', ['-q', ext]);
  embed(disk, ext, 63 * 512);
  for (const [name, at] of [['s2.img', 20480], ['s5.img', 34816]] as const) {
    const s = blankImage(path.join(dir, name), 8192 * 512);
    run('mkswap', ['-q', s]);
    embed(disk, s, at * 512);
  }
  mixed = disk;
  return disk;
}

const HAVE_TOOLS = HAVE_SFDISK && HAVE_MKFS_EXT4 && HAVE_MKSWAP;

describe.skipIf(!HAVE_TOOLS)('a mixed MBR disk', () => {
  it('each partition gets its volume by content (a type 0x07 partition holding ext4 is ext4)', async () => {
    const disk = mixedDisk();
    const l = await readGuestLayout(bufferSource(new Uint8Array(readFileSync(disk))), { readers: [swapReader] });
    const summary = l.partitions.map((p) => [p.partition.index, p.partition.type, p.reader, p.volume && ('name' in p.volume ? p.volume.name : p.volume.kind), p.error]);
    expect(summary).toEqual([
      [1, '0x07', null, 'ext4', null],
      [2, '0x82', 'swap', 'swap', null],
      [5, '0x82', 'swap', 'swap', null],
      [6, '0x83', null, 'unrecognised', null],
    ]);
    expect(l.partitions[1].source.size).toBe(8192 * 512);
  });

  it('the bytes outside every partition are mmls\'s unallocated rows; tables, gaps and the tail split them', async () => {
    const disk = mixedDisk();
    const l = await readGuestLayout(bufferSource(new Uint8Array(readFileSync(disk))), { readers: [] });
    const S = 512;
    // sfdisk puts the first EBR at the extended partition's start and the next one just before its logical partition
    expect(l.tables.toArray()).toEqual([[0, S], [32768 * S, 32769 * S], [45055 * S, 45056 * S]]);
    expect(l.gaps.toArray()).toEqual([
      [S, 63 * S],
      [(63 + 16384) * S, 20480 * S],
      [28672 * S, 32768 * S],
      [32769 * S, 34816 * S],
      [43008 * S, 45055 * S],
    ]);
    expect(l.afterLast.toArray()).toEqual([[53248 * S, 64 * MiB]]);
    expect(l.outside.equals(l.tables.union(l.gaps).union(l.afterLast))).toBe(true);
    if (HAVE_TSK) {
      const free = RangeSet.from(mmls(disk).filter((r) => r.slot === '-------').map((r) => [r.start * S, (r.start + r.length) * S] as const));
      expect(l.outside.toArray()).toEqual(free.toArray());
    }
  });

  it('one partition that cannot be read is reported with its own error; the others open', async () => {
    const disk = new Uint8Array(readFileSync(mixedDisk()));
    new DataView(disk.buffer).setUint32(20480 * 512 + 1028, 999999, true); // p2's last_page past its end
    const boom: VolumeReader = {
      name: 'boom',
      probe: (h) => h[1080] === 0x53 && h[1081] === 0xef,
      open: () => Promise.reject(new TypeError('a bug')),
    };
    const l = await readGuestLayout(bufferSource(disk), { readers: [swapReader, boom] });
    const byIndex = new Map(l.partitions.map((p) => [p.partition.index, p]));
    expect(byIndex.get(1)!.error).toMatchObject({ code: 'INTERNAL', message: 'partition 1 (boom): internal error: a bug (please report this)' });
    expect(byIndex.get(2)!.error).toMatchObject({ code: 'BAD_FILESYSTEM', data: { partition: 2 } });
    expect(byIndex.get(2)!.error!.message).toMatch(/^partition 2 \(swap\): swap: the header claims 1000000 pages/);
    expect(byIndex.get(2)!.volume).toBeNull();
    expect(byIndex.get(5)!.volume!.kind).toBe('swap');
    expect(byIndex.get(6)!.error).toBeNull();
  });
});

describe('layout edge cases', () => {
  it('a table that cannot be trusted fails the whole walk with a GuestError', async () => {
    const img = new Uint8Array(8 * MiB);
    put(img, 0, mbrSector([{ type: 0x07, lba: 2048, sectors: 4096 }, { type: 0x07, lba: 4000, sectors: 100 }]));
    await expect(readGuestLayout(bufferSource(img))).rejects.toBeInstanceOf(GuestError);
  });

  it.skipIf(!HAVE_MKSWAP)('a superfloppy: one partition over the whole disk, nothing outside', async () => {
    const f = blankImage(path.join(tempDir(), 's.img'), 4 * MiB);
    run('mkswap', ['-q', f]);
    const l = await readGuestLayout(bufferSource(new Uint8Array(readFileSync(f))), { readers: [swapReader] });
    expect(l.table.scheme).toBe('none');
    expect(l.partitions.map((p) => [p.partition.start, p.partition.size, p.volume?.kind])).toEqual([[0, 4 * MiB, 'swap']]);
    expect(l.outside.isEmpty).toBe(true);
  });

  it('a blank disk: no partitions, everything after the (absent) last partition', async () => {
    const l = await readGuestLayout(bufferSource(new Uint8Array(MiB)));
    expect(l.partitions).toEqual([]);
    expect(l.afterLast.toArray()).toEqual([[0, MiB]]);
    expect(l.gaps.isEmpty && l.tables.isEmpty).toBe(true);
  });

  it('a fake volume is handed its partition as a source of exactly the partition\'s bytes', async () => {
    const img = new Uint8Array(8 * MiB);
    put(img, 0, mbrSector([{ type: 0x83, lba: 2048, sectors: 4096 }]));
    img[2048 * 512] = 0xab;
    img[(2048 + 4096) * 512 - 1] = 0xcd;
    let seen: Uint8Array | null = null;
    const r: VolumeReader = {
      name: 'f',
      probe: (h) => h[0] === 0xab,
      async open(src) {
        seen = await src.read(0, src.size);
        return { kind: 'ext4', size: src.size } as unknown as Volume;
      },
    };
    await readGuestLayout(bufferSource(img), { readers: [r] });
    expect(seen!.length).toBe(4096 * 512);
    expect([seen![0], seen![seen!.length - 1]]).toEqual([0xab, 0xcd]);
  });
});

describe.skipIf(!HAVE_REAL)('real fixtures through the chain', () => {
  async function layoutOf(name: string) {
    const chain = await openChain(nodeFileSystem, realPath(name));
    try {
      return await readGuestLayout(chainSource(new ChainReader(chain)), { readers: [] });
    } finally {
      await chain.close();
    }
  }

  it('img-63x255-512-mbr.vhd: the FreeBSD slice at sector 63 holds a BSD disklabel', async () => {
    const l = await layoutOf('img-63x255-512-mbr.vhd');
    expect(l.partitions.map((p) => [p.partition.start / 512, p.partition.type, p.volume && 'name' in p.volume ? p.volume.name : null])).toEqual([
      [63, '0xa5', 'BSD disklabel'],
    ]);
    expect(l.gaps.toArray()).toEqual([[512, 63 * 512]]);
  });

  it('ntfs-differential.vhd (a Windows child over its parent): NTFS at 64 KiB, the tail after it outside', async () => {
    const l = await layoutOf('ntfs-differential.vhd');
    const p = l.partitions[0];
    expect([p.partition.start, p.volume && 'name' in p.volume ? p.volume.name : null]).toEqual([65536, 'NTFS']);
    expect(l.afterLast.toArray()).toEqual([[65536 + 6016 * 512, 4194304]]);
  });

  it('ext2.vhd: a superfloppy holding ext2', async () => {
    const l = await layoutOf('ext2.vhd');
    expect(l.table.scheme).toBe('none');
    expect(l.partitions[0].volume).toMatchObject({ kind: 'unknown', name: 'ext2' });
  });
});
