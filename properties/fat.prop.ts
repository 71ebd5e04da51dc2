/**
 * FAT volumes shaped by random sequences of creations, renames and
 * deletions made with mtools (seeded, small volumes): the reader's
 * cluster -> file map and free space agree with Sleuth Kit's.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_TSK } from '../test/helpers/guest.js';
import { tempDir } from '../test/helpers/tmp.js';
import { clustersOf, mkfat, mt, partitionProblems, scanImage, tskClusters, tskFiles, tskFree, tskLayout, type FatSpec } from '../test/guest/fatTools.js';

/** Each run spawns dozens of mtools and Sleuth Kit processes: a few runs, with their own knob. */
const RUNS = Number(process.env.VHDTOOL_FAT_PROP_RUNS ?? 10);
const SEED = Number(process.env.VHDTOOL_FAT_PROP_SEED ?? 20261203);

type Op =
  | { op: 'mkdir'; parent: number; name: number }
  | { op: 'create'; parent: number; name: number; clusters: number; extra: number }
  | { op: 'delete'; which: number }
  | { op: 'deltree'; which: number }
  | { op: 'rename'; which: number; name: number };

const NAMES = [
  'README.TXT', 'DATA.BIN', 'x', 'notes.txt', 'MiXeD.CaSe', 'A rather long file name.data', 'two words',
  'report 2026-12-03.csv', 'UPPER LONG NAME WITH SPACES.TXT', 'name.with.many.dots', 'Q', 'a_b-c~d.e',
  'Program Files', 'TEMP', 'cache', 'Deep Directory Name For Testing',
];

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant('mkdir' as const), parent: fc.nat(), name: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('create' as const), parent: fc.nat(), name: fc.nat(), clusters: fc.integer({ min: 0, max: 6 }), extra: fc.integer({ min: -1, max: 300 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deltree' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('rename' as const), which: fc.nat(), name: fc.nat() }) },
);

const SPECS: FatSpec[] = [
  { fat: 12, bytes: 1024 * 1024, sectorsPerCluster: 1 },
  { fat: 12, bytes: 2 * 1024 * 1024, sectorsPerCluster: 4 },
  { fat: 16, bytes: 3 * 1024 * 1024, sectorsPerCluster: 1 },
  { fat: 32, bytes: 34 * 1024 * 1024, sectorsPerCluster: 1 },
];

/** Applies the ops with mtools, keeping a model of the tree (paths, case-insensitively unique) so every op is valid. */
function apply(img: string, dir: string, ops: Op[], cs: number): void {
  const dirs: string[] = [''];
  const files: string[] = [];
  const taken = (p: string) => [...dirs, ...files].some((x) => x.toLowerCase() === p.toLowerCase());
  const join = (d: string, n: string) => (d ? `${d}/${n}` : n);
  const renamed = new Set<string>();
  let serial = 0;
  for (const o of ops) {
    if (o.op === 'mkdir' || o.op === 'create') {
      const parent = dirs[o.parent % dirs.length];
      const p = join(parent, NAMES[o.name % NAMES.length]);
      if (taken(p) || p.split('/').length > 4) continue;
      if (o.op === 'mkdir') {
        mt.mmd(img, p);
        dirs.push(p);
      } else {
        const local = path.join(dir, `f${serial++}`);
        writeFileSync(local, Buffer.alloc(Math.max(0, o.clusters * cs + o.extra), serial & 0xff));
        mt.mcopy(img, local, p);
        files.push(p);
      }
    } else if (o.op === 'delete' && files.length) {
      mt.mdel(img, files.splice(o.which % files.length, 1)[0]);
    } else if (o.op === 'deltree' && dirs.length > 1) {
      const d = dirs[1 + (o.which % (dirs.length - 1))];
      mt.mrd(img, d);
      const inside = (x: string) => x === d || x.startsWith(`${d}/`);
      dirs.splice(0, dirs.length, ...dirs.filter((x) => !inside(x)));
      files.splice(0, files.length, ...files.filter((x) => !inside(x)));
    } else if (o.op === 'rename' && files.length) {
      const i = o.which % files.length;
      const from = files[i];
      // Once per file: mtools 4.0.32's mren trips an assertion (dirCache.c freeDirCacheRange) renaming a file again.
      if (renamed.has(from)) continue;
      const to = join(from.includes('/') ? from.slice(0, from.lastIndexOf('/')) : '', `${NAMES[o.name % NAMES.length]}-${serial++}`);
      if (taken(to)) continue;
      mt.mren(img, from, to);
      files[i] = to;
      renamed.add(to);
    }
  }
}

describe.skipIf(!HAVE_MKFS_FAT || !HAVE_MTOOLS || !HAVE_TSK)('FAT reader against Sleuth Kit on random mtools histories', () => {
  it('after random creations, renames and deletions, every cluster has the owner Sleuth Kit gives it, and free space is blkls\'s', async () => {
    const dir = tempDir();
    let n = 0;
    await fc.assert(fc.asyncProperty(fc.nat({ max: SPECS.length - 1 }), fc.array(arbOp, { minLength: 1, maxLength: 30 }), async (k, ops) => {
      const spec = SPECS[k];
      const cs = spec.sectorsPerCluster * 512;
      const img = mkfat(path.join(dir, `p${n++}.img`), spec);
      apply(img, dir, ops, cs);
      const s = await scanImage(img);
      expect(s.scan.anomalies).toEqual([]);
      expect(partitionProblems(s.scan, s.vol.size)).toEqual([]);
      // Cluster -> owner, both ways.
      const ours = new Map<number, string>();
      for (const f of s.files) for (const c of clustersOf(f.data, s.vol)) ours.set(c, f.path);
      const theirs = new Map<number, string>();
      const layout = tskLayout(img);
      for (const [p, t] of tskFiles(img)) for (const c of tskClusters(img, t.inode, layout)) theirs.set(c, p);
      // Sleuth Kit lists the clusters a file's size needs; the chains of these clean volumes are exactly that long.
      expect([...ours].sort((a, b) => a[0] - b[0])).toEqual([...theirs].sort((a, b) => a[0] - b[0]));
      expect(s.scan.free.toArray()).toEqual(tskFree(img).clip(s.vol.clusterArea.start, s.vol.clusterArea.end).toArray());
    }), { numRuns: RUNS, seed: SEED });
  });
});
