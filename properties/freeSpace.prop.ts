/**
 * compact --free-space over random histories of creations and deletions
 * (mtools on a partitioned FAT disk; the history split between a base and a
 * child at a random point; seeded): the invariants the feature promises,
 * checked with the file system's own tools on the composed view.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compact } from '../src/ops/compact.js';
import { chainFromImages, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_SFDISK, HAVE_TSK } from '../test/helpers/guest.js';
import { tempDir } from '../test/helpers/tmp.js';
import { drive, mkfat, mt, tskFree } from '../test/guest/fatTools.js';
import { heldBytes, makeDisk, noise, rawOf, step } from '../test/helpers/freeSpace.js';

/** Each run spawns dozens of mtools processes: a few runs, with their own knob. */
const RUNS = Number(process.env.VHDTOOL_FREESPACE_PROP_RUNS ?? 8);
const SEED = Number(process.env.VHDTOOL_FREESPACE_PROP_SEED ?? 20261207);

type Op = { op: 'create'; name: number; bytes: number } | { op: 'delete'; which: number };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('create' as const), name: fc.nat(40), bytes: fc.integer({ min: 0, max: 400_000 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), which: fc.nat() }) },
);

/** Applies ops with mtools and keeps the model: name -> content. */
function apply(img: string, offset: number, dir: string, ops: Op[], model: Map<string, Buffer>, seed: { n: number }): void {
  const d = drive(img, offset);
  for (const o of ops) {
    if (o.op === 'create') {
      const name = `F${o.name}.BIN`;
      if (model.has(name)) continue;
      const data = noise(o.bytes, ++seed.n);
      const local = path.join(dir, 'src.bin');
      writeFileSync(local, data);
      try {
        mt.mcopy(d, local, name);
      } catch {
        continue; // volume full: the op did nothing
      }
      model.set(name, data);
    } else if (model.size > 0) {
      const name = [...model.keys()].sort()[o.which % model.size];
      mt.mdel(d, name);
      model.delete(name);
    }
  }
}

describe.skipIf(!(HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_SFDISK && HAVE_TSK))('compact --free-space, property', () => {
  it('over random create/delete histories, compaction never changes a live file\'s content and leaves no leaf sector wholly in free clusters', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(arbOp, { minLength: 4, maxLength: 24 }), fc.nat(), fc.constantFrom(63, 2048), fc.constantFrom<[12 | 16, number]>([16, 1], [16, 2], [16, 8], [12, 32]),
      async (ops, cut, start, [fat, spc]) => {
        const dir = tempDir();
        const bytes = 16 * 1024 * 1024;
        const vol = mkfat(path.join(dir, 'vol.img'), { fat, bytes, sectorsPerCluster: spc });
        const base = makeDisk(path.join(dir, 'base.img'), { size: start * 512 + bytes + 1024 * 1024, label: 'dos', parts: [{ start, sectors: bytes / 512, type: '06', image: vol }] });
        const model = new Map<string, Buffer>();
        const seed = { n: 0 };
        const k = cut % (ops.length + 1);
        apply(base, start * 512, dir, ops.slice(0, k), model, seed);
        const child = step(base, dir, 'child.img');
        apply(child, start * 512, dir, ops.slice(k), model, seed);
        const [, leaf] = await chainFromImages(dir, [base, child]);
        const r = await compact(leaf.path, { freeSpace: true, threads: 0 });
        expect(r.freeSpace!.partitions[0].status).toBe('planned');
        const after = await rawOf(leaf.path, path.join(dir, 'after.raw'));
        const d = drive(after, start * 512);
        expect(mt.list(d).sort()).toEqual([...model.keys()].sort());
        for (const [name, data] of model) expect(Buffer.from(mt.cat(d, name)).equals(data), name).toBe(true);
        const free = tskFree(after, start).shift(start * 512);
        expect((await heldBytes(leaf.path)).intersectBytes(free)).toBe(0);
      },
    ), { numRuns: RUNS, seed: SEED });
  });
});
