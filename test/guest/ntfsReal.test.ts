/**
 * The NTFS reader on real Windows volumes (../shared/fixtures/real), read
 * through vhdtool's chain reader: a fixed parent and its differencing child,
 * a dynamic and a fixed disk, dissect's dynamic disk whose blocks are out
 * of order, and two GPT disks (node-vhd) with an NTFS partition among FAT
 * ones. The partition is found from the MBR or GPT here (the partition
 * module is written apart). Figures are checked against Sleuth Kit and
 * ntfsinfo on the partition's bytes extracted from the same view.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HAVE_REAL, realPath } from '../helpers/real.js';
import { tempDir } from '../helpers/tmp.js';
import { diffWithTsk, HAVE_TSK } from '../helpers/ntfsImages.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openChain } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';
import { chainSource } from '../../src/chain/guestSource.js';
import { sliceSource, type ByteSource } from '../../src/guest/source.js';
import { looksLikeNtfs } from '../../src/guest/ntfs/boot.js';
import { NtfsVolume } from '../../src/guest/ntfs/volume.js';
import type { GuestFile } from '../../src/guest/volume.js';

/** The NTFS partition of a disk: MBR entry 1 (type 7), or the GPT entry whose volume starts with an NTFS boot sector. */
async function ntfsPartition(disk: ByteSource): Promise<{ start: number; size: number }> {
  const mbr = await disk.read(0, 512);
  const dv = new DataView(mbr.buffer, mbr.byteOffset, 512);
  if (mbr[446 + 4] !== 0xee) {
    expect(mbr[446 + 4]).toBe(0x07);
    return { start: dv.getUint32(446 + 8, true) * 512, size: dv.getUint32(446 + 12, true) * 512 };
  }
  const entries = await disk.read(1024, 128 * 128);
  const ev = new DataView(entries.buffer, entries.byteOffset);
  for (let i = 0; i < 128; i++) {
    const first = Number(ev.getBigUint64(i * 128 + 32, true));
    const last = Number(ev.getBigUint64(i * 128 + 40, true));
    if (first && looksLikeNtfs(await disk.read(first * 512, 512))) return { start: first * 512, size: (last - first + 1) * 512 };
  }
  throw new Error('no NTFS partition');
}

async function readFixture(name: string) {
  const chain = await openChain(nodeFileSystem, realPath(name));
  try {
    const disk = chainSource(new ChainReader(chain));
    const { start, size } = await ntfsPartition(disk);
    const part = await disk.read(start, size);
    const vol = await NtfsVolume.open(sliceSource(disk, start, size));
    const files: GuestFile[] = [];
    const scan = await vol.scan({ onFile: (f) => files.push(f) });
    const contents = new Map<string, Buffer>();
    for (const f of files) {
      if (f.directory || f.system) continue;
      const parts: Uint8Array[] = [];
      for await (const p of vol.readContent(f)) parts.push(p);
      contents.set(f.path, Buffer.concat(parts));
    }
    return { start, vol, scan, files, part, contents };
  } finally {
    await chain.close();
  }
}

describe.skipIf(!HAVE_REAL)('NTFS on real Windows disks', () => {
  const dir = tempDir('ntfs-real-');

  const starts: Record<string, number> = {
    'ntfs-parent.vhd': 128, 'ntfs-differential.vhd': 128, 'ntfs-dynamic.vhd': 128, 'ntfs-fixed.vhd': 128, 'dissect-dynamic.vhd': 128,
    'node-vhd-dynamic.vhd.gz': 270464, 'node-vhd-dynamic-dc5d815f.vhd.gz': 475264,
  };
  for (const [name, sector] of Object.entries(starts)) {
    it(`${name}: clean, and every file, stream and free cluster as Sleuth Kit and ntfsinfo see them`, async () => {
      const r = await readFixture(name);
      expect(r.start).toBe(sector * 512);
      expect(r.scan.state).toEqual({ state: 'clean', reasons: [] });
      expect(r.scan.anomalies).toEqual([]);
      expect(r.scan.free.bytes + r.scan.metadata.bytes + r.scan.fileData.bytes).toBe(r.vol.size);
      if (!HAVE_TSK) return;
      const img = path.join(dir, `${name}.part`);
      writeFileSync(img, r.part);
      expect(diffWithTsk(img, r.scan, r.files, r.vol.clusterSize)).toEqual([]);
    });
  }

  it('the differencing child shows the files Windows added over its parent', async () => {
    const parent = await readFixture('ntfs-parent.vhd');
    const child = await readFixture('ntfs-differential.vhd');
    const before = new Set(parent.files.map((f) => f.path));
    const added = child.files.map((f) => f.path).filter((p) => !before.has(p)).sort();
    expect(added).toEqual(['System Volume Information/IndexerVolumeGuid', 'a_directory', 'a_directory/a_file', 'a_directory/another_file', 'a_link', 'passwords.txt']);
    expect(child.contents.get('passwords.txt')?.length).toBe(126);
    expect(child.contents.get('a_directory/a_file')?.toString()).toMatch(/\S/);
    expect(child.vol.label).toBe('TestVolume');
  });
});
