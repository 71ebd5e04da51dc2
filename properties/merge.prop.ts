/**
 * Properties of `merge`, `convert` and `compare` over random chains
 * (depth 2-4, blocks 4 KiB-2 MiB, partial child blocks, zeros over data).
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../src/io/fsys.js';
import { modelContent, writeSynthChain } from '../src/synth/build.js';
import { convert, merge } from '../src/ops/merge.js';
import { compare } from '../src/ops/compare.js';
import { checkDisk } from '../src/check/check.js';
import { createRunner } from '../src/parallel/pool.js';
import { content } from '../test/helpers/hash.js';
import { nonMinimal } from '../test/helpers/minimal.js';
import { tempDir } from '../test/helpers/tmp.js';
import { chainSpecArb, materialize } from './arbitraries.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 30);
const names = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? 'base.vhd' : `c${i}.vhd`));
const deepArb = chainSpecArb(4).filter((s) => s.blockSizes.length >= 2);

async function checkOk(p: string): Promise<string[]> {
  const runner = createRunner({ threads: 0, slotBytes: 512 });
  try {
    const r = await checkDisk(nodeFileSystem, p, runner);
    return r.errors.map((e) => e.message);
  } finally {
    await runner.close();
  }
}

describe('merge', () => {
  it('merge and flatten outputs read exactly like the chain they came from, are minimal, pass check, and leave the inputs unchanged', async () => {
    await fc.assert(fc.asyncProperty(deepArb, fc.boolean(), fc.constantFrom<'dynamic' | 'fixed'>('dynamic', 'fixed'), async (spec, flatten, type) => {
      const layers = materialize(spec);
      const dir = tempDir();
      const built = await writeSynthChain(nodeFileSystem, dir, layers, names(layers.length));
      const paths = built.map((b) => b.path);
      const leaf = paths.length - 1;
      const inputs = paths.map((p) => readFileSync(p));
      const out = path.join(dir, 'out.vhd');
      const standalone = flatten || leaf - 1 === 0;
      const r = await merge(paths[leaf], paths[leaf - 1], out, { threads: 0, flatten, type: standalone ? type : undefined });
      expect(Buffer.from(await content(out)).equals(Buffer.from(modelContent(layers)))).toBe(true);
      paths.forEach((p, i) => expect(readFileSync(p).equals(inputs[i]), `input ${i} unchanged`).toBe(true));
      expect(await checkOk(out)).toEqual([]);
      expect(r.outputType).toBe(standalone ? type : 'differencing');
      if (r.outputType !== 'fixed') expect(await nonMinimal(out)).toEqual([]);
    }), { numRuns: RUNS });
  });

  it('merging child2 into child1 and then into the base equals flattening child2', async () => {
    await fc.assert(fc.asyncProperty(chainSpecArb(3).filter((s) => s.blockSizes.length === 3), async (spec) => {
      const layers = materialize(spec);
      const dir = tempDir();
      const [base, c1, c2] = (await writeSynthChain(nodeFileSystem, dir, layers, names(3))).map((b) => b.path);
      const m12 = path.join(dir, 'm12.vhd');
      const all = path.join(dir, 'all.vhd');
      const flat = path.join(dir, 'flat.vhd');
      await merge(c2, c1, m12, { threads: 0 });
      await merge(m12, base, all, { threads: 0 });
      await merge(c2, c1, flat, { threads: 0, flatten: true });
      const a = await content(all);
      expect(Buffer.from(a).equals(Buffer.from(await content(flat)))).toBe(true);
      expect(Buffer.from(a).equals(Buffer.from(modelContent(layers)))).toBe(true);
      expect((await compare(all, flat, { threads: 0 })).identical).toBe(true);
    }), { numRuns: Math.ceil(RUNS / 2) });
  });

  it('convert writes the same guest content as a standalone disk of the requested type', async () => {
    await fc.assert(fc.asyncProperty(chainSpecArb(3), fc.constantFrom<'dynamic' | 'fixed'>('dynamic', 'fixed'), async (spec, type) => {
      const layers = materialize(spec);
      const dir = tempDir();
      const paths = (await writeSynthChain(nodeFileSystem, dir, layers, names(layers.length))).map((b) => b.path);
      const out = path.join(dir, 'conv.vhd');
      const r = await convert(paths[paths.length - 1], out, { threads: 0, type });
      expect(r.outputType).toBe(type);
      expect(Buffer.from(await content(out)).equals(Buffer.from(modelContent(layers)))).toBe(true);
      expect(await checkOk(out)).toEqual([]);
    }), { numRuns: Math.ceil(RUNS / 2) });
  });
});

describe('compare', () => {
  it('agrees with a byte comparison of the two flattened contents, and reports the first differing byte', async () => {
    await fc.assert(fc.asyncProperty(chainSpecArb(3), chainSpecArb(2), fc.constantFrom(0, 2), async (sa, sb, threads) => {
      const la = materialize(sa);
      const lb = materialize(sb);
      const dir = tempDir();
      const da = path.join(dir, 'a');
      const db = path.join(dir, 'b');
      await nodeFileSystem.mkdir(da);
      await nodeFileSystem.mkdir(db);
      const pa = (await writeSynthChain(nodeFileSystem, da, la)).at(-1)!.path;
      // Half of the time, B is a copy of A's chain (identical content through a different layout).
      const same = sa.writes.length % 2 === 0;
      const lbx = same ? la.map((l, i) => ({ ...l, shuffleSeed: 77 + i, align: 512 })) : lb;
      const pb = (await writeSynthChain(nodeFileSystem, db, lbx)).at(-1)!.path;
      const ca = modelContent(la);
      const cb = modelContent(lbx);
      const n = Math.max(ca.length, cb.length);
      let first: number | null = null;
      for (let i = 0; i < n; i++) if ((ca[i] ?? 0) !== (cb[i] ?? 0)) { first = i; break; }
      const r = await compare(pa, pb, { threads });
      expect(r.identical).toBe(first === null);
      expect(r.firstDifference).toBe(first);
      if (same) expect(r.identical).toBe(true);
    }), { numRuns: RUNS });
  });
});
