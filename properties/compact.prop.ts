/**
 * Properties of `compact` over random chains (depth 1-4, blocks 4 KiB-2 MiB,
 * random data, zeros over data and over zeros, copies of the parent's data).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../src/io/fsys.js';
import { modelContent, writeSynthChain } from '../src/synth/build.js';
import { compact } from '../src/ops/compact.js';
import { info } from '../src/ops/info.js';
import { content } from '../test/helpers/hash.js';
import { nonMinimal } from '../test/helpers/minimal.js';
import { tempDir } from '../test/helpers/tmp.js';
import { chainSpecArb, materialize } from './arbitraries.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 40);

function names(n: number): string[] {
  return Array.from({ length: n }, (_, i) => (i === 0 ? 'base.vhd' : `c${i}.vhd`));
}

describe('compact', () => {
  it('keeps every layer\'s guest content byte-identical, leaves a minimal file, never grows it, keeps the UUID and never writes a parent', async () => {
    await fc.assert(fc.asyncProperty(chainSpecArb(4), fc.nat(), fc.constantFrom(0, 1), async (spec, pick, threads) => {
      const layers = materialize(spec);
      const dir = tempDir();
      const built = await writeSynthChain(nodeFileSystem, dir, layers, names(layers.length));
      const paths = built.map((b) => b.path);
      // Compact any sparse layer: the leaf, a middle layer or a dynamic base.
      const candidates = layers.map((l, i) => i).filter((i) => layers[i].type !== 'fixed');
      if (candidates.length === 0) return;
      const target = candidates[pick % candidates.length];
      const before = await Promise.all(paths.map((p) => content(p)));
      const parentBytes = paths.slice(0, target).map((p) => readFileSync(p));
      const sizeBefore = readFileSync(paths[target]).length;
      const uuidBefore = (await info(paths[target])).uuid;

      const r = await compact(paths[target], { threads });

      for (let i = 0; i < paths.length; i++) {
        const now = await content(paths[i]);
        expect(Buffer.from(now).equals(Buffer.from(before[i])), `layer ${i} content`).toBe(true);
        expect(Buffer.from(now).equals(Buffer.from(modelContent(layers, i))), `layer ${i} model`).toBe(true);
      }
      parentBytes.forEach((b, i) => expect(readFileSync(paths[i]).equals(b), `parent ${i} bytes`).toBe(true));
      const sizeAfter = readFileSync(paths[target]).length;
      expect(sizeAfter).toBeLessThanOrEqual(sizeBefore);
      expect(sizeBefore - sizeAfter).toBe(r.reclaimedBytes);
      expect((await info(paths[target])).uuid).toBe(uuidBefore);
      expect(await nonMinimal(paths[target])).toEqual([]);
    }), { numRuns: RUNS });
  });

  it('is idempotent: compacting twice gives a byte-identical file, and the dry run predicts the reduction exactly', async () => {
    await fc.assert(fc.asyncProperty(chainSpecArb(3), async (spec) => {
      const layers = materialize(spec);
      if (layers[layers.length - 1].type === 'fixed') return;
      const dir = tempDir();
      const built = await writeSynthChain(nodeFileSystem, dir, layers, names(layers.length));
      const leaf = built[built.length - 1].path;
      const dry = await compact(leaf, { threads: 0, dryRun: true });
      const size0 = readFileSync(leaf).length;
      const r1 = await compact(leaf, { threads: 0 });
      expect(size0 - readFileSync(leaf).length).toBe(dry.reclaimableBytes);
      expect(r1.reclaimedBytes).toBe(dry.reclaimableBytes);
      const once = readFileSync(leaf);
      const r2 = await compact(leaf, { threads: 0 });
      expect(r2.changed).toBe(false);
      expect(readFileSync(leaf).equals(once)).toBe(true);
      expect(readFileSync(path.join(dir, path.basename(leaf))).length).toBe(once.length);
    }), { numRuns: Math.ceil(RUNS / 2) });
  });
});
