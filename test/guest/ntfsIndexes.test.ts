/**
 * NTFS directory indexes ($I30) against the MFT (ScanOptions.indexes): on
 * volumes ntfs-3g and Windows wrote, every index entry names a record in use
 * and every record in use is named, so nothing is reported; an entry whose
 * record is no longer in use is `bad-index` (Sleuth Kit's fls still lists the
 * name, istat finds no record), and an index block that cannot be read is
 * `bad-index` with the files only it named `unindexed`.
 */
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openChain } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';
import { chainSource } from '../../src/chain/guestSource.js';
import { readGuestLayout } from '../../src/guest/layout.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { NtfsVolume } from '../../src/guest/ntfs/volume.js';
import { bufferSource } from '../../src/guest/source.js';
import type { GuestFile } from '../../src/guest/volume.js';
import { HAVE_FUSE, HAVE_TSK, mkntfs, recordOf, withMounted } from '../helpers/ntfsImages.js';
import { run } from '../helpers/guest.js';
import { HAVE_REAL, REAL_DIR } from '../helpers/real.js';
import { tempDir } from '../helpers/tmp.js';

async function scan(img: Uint8Array, indexes = true) {
  const vol = await NtfsVolume.open(bufferSource(img));
  const files: GuestFile[] = [];
  const s = await vol.scan({ indexes, onFile: (f) => files.push(f) });
  return { scan: s, files, by: new Map(files.map((f) => [f.path, f])) };
}

const kinds = (a: Array<{ kind: string }>) => a.map((x) => x.kind);

describe.skipIf(!HAVE_FUSE || !HAVE_TSK)('NTFS directory indexes written by ntfs-3g', () => {
  const dir = tempDir('ntfs-idx-');
  let img: Uint8Array;

  it('a tree with a directory of 300 files in index blocks, hard links across folders, named streams, deletions and renames: no anomaly', async () => {
    const file = mkntfs(path.join(dir, 'tree.img'), 24 << 20, 4096);
    await withMounted(file, (m) => {
      mkdirSync(path.join(m, 'big'));
      mkdirSync(path.join(m, 'docs/deep'), { recursive: true });
      for (let i = 0; i < 300; i++) writeFileSync(path.join(m, 'big', `file-with-a-long-name-${i}.dat`), randomBytes(50 + i));
      for (let i = 0; i < 300; i += 7) rmSync(path.join(m, 'big', `file-with-a-long-name-${i}.dat`));
      writeFileSync(path.join(m, 'docs/deep/a.txt'), 'a');
      writeFileSync(path.join(m, 'docs/deep/a.txt:stream'), randomBytes(9000));
      linkSync(path.join(m, 'docs/deep/a.txt'), path.join(m, 'big/link-to-a.txt'));
      renameSync(path.join(m, 'big/file-with-a-long-name-1.dat'), path.join(m, 'docs/moved.dat'));
    });
    img = new Uint8Array(readFileSync(file));
    const { scan: s, by } = await scan(img);
    expect(s.anomalies).toEqual([]);
    // The big directory really has index blocks (Sleuth Kit: an $INDEX_ALLOCATION attribute).
    expect(run('istat', [file, String(recordOf(by.get('big')!))])).toMatch(/\$INDEX_ALLOCATION/);
    // The check is asked for: without it, the same scan reads no index.
    expect(kinds((await scan(img, false)).scan.anomalies)).toEqual([]);
  });

  it('a file record no longer in use while its directory still names it: bad-index (fls lists the name, istat finds the record unallocated)', async () => {
    const b = img.slice();
    const { by } = await scan(b);
    const f = by.get('docs/moved.dat')!;
    const at = f.meta.first;
    b[at + 22] &= ~1; // the record's in-use flag (first stride: the fixups are untouched)
    const r = await scan(b);
    const bad = r.scan.anomalies.find((a) => a.kind === 'bad-index')!;
    expect(bad.message).toBe(`directory 'docs' (MFT record ${recordOf(by.get('docs')!)}) names MFT record ${recordOf(f)} ('moved.dat'), which is not in use`);
    expect(bad.count).toBe(1);
    expect(bad.ranges!.first).toBe(by.get('docs')!.meta.first);
    const file = path.join(dir, 'unused.img');
    writeFileSync(file, b);
    expect(run('fls', ['-r', '-p', file])).toMatch(new RegExp(`${recordOf(f)}[^\\n]*:\\tdocs/moved\\.dat`));
    expect(run('istat', [file, String(recordOf(f))])).toMatch(/Not Allocated/);
    // Without the check, nothing tells (the file simply is not there).
    expect(kinds((await scan(b, false)).scan.anomalies)).not.toContain('bad-index');
  });

  it('an index block whose signature is destroyed: bad-index for the block, and the files only it named are unindexed', async () => {
    const b = img.slice();
    const { by, files } = await scan(b);
    const big = by.get('big')!;
    const block = big.data.first; // its $INDEX_ALLOCATION's first cluster: index block 0
    expect(Buffer.from(b.subarray(block, block + 4)).toString()).toBe('INDX');
    b.set([0x58, 0x58, 0x58, 0x58], block);
    const r = await scan(b);
    const bad = r.scan.anomalies.find((a) => a.kind === 'bad-index')!;
    expect(bad.message).toBe(`directory 'big' (MFT record ${recordOf(big)}): index block 0 has no INDX signature`);
    expect(bad.ranges!.first).toBe(block);
    const un = r.scan.anomalies.find((a) => a.kind === 'unindexed')!;
    expect(un.count).toBeGreaterThan(0);
    const inBig = new Set(files.filter((f) => f.path.startsWith('big/')).map((f) => recordOf(f)));
    for (const m of un.message.matchAll(/MFT record (\d+) \('[^']*'\) is in use, but the index of its directory \(MFT record (\d+)\)/g)) {
      expect(inBig.has(Number(m[1])), m[0]).toBe(true);
      expect(Number(m[2])).toBe(recordOf(big));
    }
  });
});

describe.skipIf(!HAVE_FUSE || !HAVE_TSK)('NTFS directory indexes, damaged at random', () => {
  it('random bytes in a directory\'s record and index blocks: the scan either reports anomalies or refuses the volume (GuestError), never crashes or hangs', async () => {
    const file = mkntfs(path.join(tempDir('ntfs-idx-fuzz-'), 'f.img'), 8 << 20, 1024);
    await withMounted(file, (m) => {
      mkdirSync(path.join(m, 'd'));
      for (let i = 0; i < 80; i++) writeFileSync(path.join(m, 'd', `name-${i}.txt`), `${i}`);
    });
    const base = new Uint8Array(readFileSync(file));
    const { by } = await scan(base);
    const d = by.get('d')!;
    const targets = [...d.meta.toArray(), ...d.data.toArray()];
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    const seen = new Set<string>();
    for (let round = 0; round < 150; round++) {
      const b = base.slice();
      for (let k = 0; k < 1 + rnd(6); k++) {
        const [s, e] = targets[rnd(targets.length)];
        b[s + rnd(e - s)] = rnd(256);
      }
      try {
        const r = await scan(b);
        for (const a of r.scan.anomalies) seen.add(a.kind);
      } catch (e) {
        expect((e as Error).name, String(e)).toBe('GuestError');
      }
    }
    expect(seen.has('bad-index') || seen.has('torn-record')).toBe(true);
  });
});

describe.skipIf(!HAVE_REAL)('NTFS directory indexes on volumes Windows wrote', () => {
  it('the dfvfs Windows disks (dynamic, fixed, a differencing child over its parent): no anomaly', async () => {
    for (const n of ['ntfs-dynamic.vhd', 'ntfs-fixed.vhd', 'ntfs-differential.vhd']) {
      const c = await openChain(nodeFileSystem, path.join(REAL_DIR, n), n === 'ntfs-differential.vhd' ? { parent: path.join(REAL_DIR, 'ntfs-parent.vhd') } : {});
      try {
        const l = await readGuestLayout(chainSource(new ChainReader(c)));
        const v = l.partitions[0].volume!;
        expect(v.kind, n).toBe('ntfs');
        const s = await (v as NtfsVolume).scan({ indexes: true });
        expect(s.files, n).toBeGreaterThan(20);
        expect(s.anomalies, n).toEqual([]);
      } finally {
        await c.close();
      }
    }
  });
});
