/**
 * map on an NTFS volume written through ntfs-3g (FUSE), in an MBR partition
 * at 1 MiB, turned into a chain whose child owns exactly the sectors the
 * guest changed. Free space and every user file's clusters come from Sleuth
 * Kit (blkls, fls, istat); skipped where FUSE or the tools are missing.
 */
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { map } from '../../src/ops/map.js';
import { RangeSet } from '../../src/guest/ranges.js';
import { mulberry32 } from '../../src/synth/random.js';
import { blankImage, chainFromImages, changedSectors, embed, HAVE_SFDISK, partition } from '../helpers/guest.js';
import { HAVE_FUSE, HAVE_MKNTFS, HAVE_TSK, mkntfs, openImage, tskAttrs, tskFree, tskPaths, withMounted } from '../helpers/ntfsImages.js';
import { VhdToolError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const CS = 4096;

function bytes(n: number, seed: number): Buffer {
  const rnd = mulberry32(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

describe.skipIf(!HAVE_FUSE || !HAVE_TSK || !HAVE_SFDISK)('map on an NTFS volume written by ntfs-3g, checked against Sleuth Kit', () => {
  it('free space, metadata, file data and every user file\'s leaf bytes', async () => {
    const dir = tempDir('vhdtool-map-ntfs-');
    const start = 2048 * 512;
    const size = 40 * MiB;
    const part = mkntfs(path.join(dir, 'part.img'), size, CS);
    await withMounted(part, (m) => {
      for (let i = 0; i < 5; i++) writeFileSync(path.join(m, `old${i}.bin`), bytes(150_000 + i * 20_000, i + 1));
      writeFileSync(path.join(m, 'small.txt'), 'resident content');
    });
    const base = blankImage(path.join(dir, 'base.img'), 48 * MiB);
    partition(base, `label: dos\nstart=2048, size=${size / 512}, type=7\n`);
    embed(base, part, start);
    await withMounted(part, (m) => {
      writeFileSync(path.join(m, 'new.bin'), bytes(3_000_000, 50));
      writeFileSync(path.join(m, 'temp.bin'), bytes(2_000_000, 51));
      rmSync(path.join(m, 'temp.bin'));
      rmSync(path.join(m, 'old2.bin'));
      writeFileSync(path.join(m, 'old3.bin'), bytes(30_000, 52)); // rewritten shorter
    });
    const child = path.join(dir, 'child.img');
    copyFileSync(base, child);
    embed(child, part, start);
    const [, c] = await chainFromImages(dir, [base, child], ['base.vhd', 'child.vhd']);
    const leaf = changedSectors(base, child);
    const r = await map(c.path, { files: true });

    const local = leaf.clip(start, start + size).shift(-start);
    const free = RangeSet.from(tskFree(part).map((n) => [n * CS, (n + 1) * CS] as [number, number]));
    const perFile: Array<{ path: string; leafBytes: number }> = [];
    let user = RangeSet.EMPTY;
    for (const [inode, names] of tskPaths(part)) {
      const name = [...names].sort()[0];
      if (name.startsWith('$') || name.includes(':')) continue;
      const data = tskAttrs(part, inode).filter((a) => a.type === 128 && a.name === null && a.nonResident).flatMap((a) => a.clusters);
      if (data.length === 0) continue;
      const set = RangeSet.from(data.map((n) => [n * CS, (n + 1) * CS] as [number, number]));
      user = user.union(set);
      const n = set.intersectBytes(local);
      if (n > 0) perFile.push({ path: name, leafBytes: n });
    }
    const p = r.partitions[0];
    expect(p).toMatchObject({ index: 1, scheme: 'mbr', fileSystem: 'ntfs', clusterSize: CS, state: 'clean', error: null, anomalies: [] });
    expect(p.leafBytes).toBe(local.bytes);
    expect(p.leafFreeBytes).toBe(local.intersectBytes(free));
    expect(p.leafFileBytes).toBe(local.intersect(user).subtract(free).bytes);
    expect(p.leafMetadataBytes).toBe(p.leafBytes - p.leafFreeBytes - p.leafFileBytes);
    // temp.bin's clusters were freed in the child: a good part of its 2 MB is free space the leaf holds.
    expect(p.leafFreeBytes).toBeGreaterThan(1_000_000);
    expect(p.files!.map((f) => ({ path: f.path, leafBytes: f.leafBytes })).sort((a, b) => (a.path < b.path ? -1 : 1)))
      .toEqual(perFile.sort((a, b) => (a.path < b.path ? -1 : 1)));
    expect(p.files![0].path).toBe('new.bin');
  });
});

describe.skipIf(!HAVE_MKNTFS)('an interrupted NTFS scan', () => {
  it('stops with the INTERRUPTED error every reader gives (exit 130), not the signal\'s own error', async () => {
    const dir = tempDir('vhdtool-map-ntfs-');
    const { vol, close } = await openImage(mkntfs(path.join(dir, 'v.img'), 8 * MiB, CS));
    try {
      const e = await vol.scan({ signal: AbortSignal.abort() }).then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(VhdToolError);
      expect((e as VhdToolError).code).toBe('INTERRUPTED');
      expect((e as VhdToolError).exitCode).toBe(130);
    } finally {
      await close();
    }
  });
});
