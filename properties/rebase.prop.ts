/**
 * Properties of `rebase` over random scenes: a chain (a base P and one or two
 * children, the leaf A), and another parent Q of the same size (a child of P,
 * or a standalone dynamic or fixed disk), with random data, copies of what is
 * below, zeros over data and over zeros, and tweaked copies; block sizes from
 * 4 KiB to 2 MiB, differing between layers.
 *
 * "Exact" below means: the result reads as A did, and the sectors it stores
 * are exactly those where A's view differs from its new parent's (read from
 * its bitmaps), so no stored sector equals the new parent's and a stored zero
 * sector always hides non-zero data.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../src/io/fsys.js';
import { modelContent, writeSynthChain, writeSynthLayer, type SynthLayer, type SynthWrite } from '../src/synth/build.js';
import { rebase } from '../src/ops/rebase.js';
import { compact } from '../src/ops/compact.js';
import { info } from '../src/ops/info.js';
import { content } from '../test/helpers/hash.js';
import { differingSectors, emptyBlocks, storedSectors } from '../test/helpers/rebase.js';
import { tempDir } from '../test/helpers/tmp.js';
import { chainSpecArb, materialize, type ChainSpec, type WriteSpec } from './arbitraries.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 40);
const S = 512;

interface SceneSpec {
  chain: ChainSpec;
  q: { kind: 'child' | 'dynamic' | 'fixed'; blockSize: number; writes: WriteSpec[] };
  inPlace: boolean;
  threads: number;
}

const writeArb: fc.Arbitrary<WriteSpec> = fc.record({
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  sectors: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 300 })),
  kind: fc.constantFrom('random', 'zero', 'copy', 'fill', 'tweak', 'tweak'),
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
});

const sceneArb: fc.Arbitrary<SceneSpec> = fc.record({
  chain: chainSpecArb(3).filter((c) => c.blockSizes.length >= 2),
  q: fc.record({
    kind: fc.constantFrom('child', 'dynamic', 'fixed'),
    blockSize: fc.constantFrom(4096, 65536, 512 * 1024, 2 * 1024 * 1024),
    writes: fc.array(writeArb, { minLength: 0, maxLength: 12 }),
  }),
  inPlace: fc.boolean(),
  threads: fc.constantFrom(0, 1),
});

/** Clips a layer to `size` bytes (writes past it cut off). */
function clip(l: SynthLayer, size: number): SynthLayer {
  const writes: SynthWrite[] = [];
  for (const w of l.writes) {
    const n = Math.min(w.data.length / S, size / S - w.sector);
    if (n > 0) writes.push({ sector: w.sector, data: w.data.subarray(0, n * S) });
  }
  return { ...l, virtualSize: size, writes };
}

function nonZeroWrites(bytes: Uint8Array): SynthWrite[] {
  const out: SynthWrite[] = [];
  const zero = (s: number) => bytes.subarray(s * S, (s + 1) * S).every((x) => x === 0);
  for (let s = 0; s < bytes.length / S;) {
    if (zero(s)) { s++; continue; }
    let e = s + 1;
    while (e < bytes.length / S && !zero(e)) e++;
    out.push({ sector: s, data: bytes.slice(s * S, e * S) });
    s = e;
  }
  return out;
}

interface Scene {
  dir: string;
  /** Base first: P, then A's layers; `leaf` is A. */
  paths: string[];
  leaf: string;
  p: string;
  q: string;
  viewA: Uint8Array;
}

/** Writes the scene: every layer (and Q) clipped to one size, so that every parent fits. */
async function build(spec: SceneSpec): Promise<Scene> {
  const a = materialize(spec.chain);
  const qSpec: ChainSpec = {
    ...spec.chain,
    blockSizes: [spec.chain.blockSizes[0], spec.q.blockSize],
    sizes: [spec.chain.sizes[0], spec.chain.sizes[0]],
    writes: [spec.chain.writes[0], spec.q.writes],
    shuffle: [spec.chain.shuffle[0], false],
    lastSector: false,
  };
  const pq = materialize(qSpec);
  const size = Math.min(...a.map((l) => l.virtualSize), ...pq.map((l) => l.virtualSize));
  const layers = a.map((l) => clip(l, size));
  const [, qChild] = pq.map((l) => clip(l, size));
  const dir = tempDir();
  const names = layers.map((_, i) => (i === 0 ? 'p.vhd' : `a${i}.vhd`));
  const built = await writeSynthChain(nodeFileSystem, dir, layers, names);
  const q = path.join(dir, 'q.vhd');
  if (spec.q.kind === 'child') {
    await writeSynthLayer(nodeFileSystem, q, qChild, built[0]);
  } else {
    const qView = modelContent([layers[0], qChild]);
    const blockSize = spec.q.kind === 'fixed' ? undefined : spec.q.blockSize;
    await writeSynthLayer(nodeFileSystem, q, { type: spec.q.kind, virtualSize: size, blockSize, writes: nonZeroWrites(qView) }, null);
  }
  const paths = built.map((b) => b.path);
  return { dir, paths, leaf: paths[paths.length - 1], p: paths[0], q, viewA: modelContent(layers) };
}

const eq = (x: Uint8Array, y: Uint8Array) => Buffer.from(x).equals(Buffer.from(y));

/** Rebases `disk` onto `onto` (in place, or into a new file); checks the result is exact; returns its path. */
async function step(disk: string, onto: string, view: Uint8Array, spec: SceneSpec, tag: string): Promise<string> {
  const out = spec.inPlace ? disk : path.join(path.dirname(disk), `${tag}.vhd`);
  const uuid = (await info(disk)).uuid;
  await rebase(disk, onto, { output: spec.inPlace ? undefined : out, threads: spec.threads });
  expect(eq(await content(out), view), `${tag}: view`).toBe(true);
  const parentView = await content(onto);
  expect(await storedSectors(out), `${tag}: stored sectors`).toEqual(differingSectors(view, parentView));
  expect(await emptyBlocks(out), `${tag}: empty blocks`).toEqual([]);
  expect((await info(out)).uuid === uuid, `${tag}: UUID kept exactly in place`).toBe(spec.inPlace);
  expect((await info(out)).parentUuid).toBe((await info(onto)).uuid);
  return out;
}

describe('rebase', () => {
  it('rebasing A onto P, then onto Q, then back onto P gives the same view, and the result is exact (minimal) at every step; inputs other than A are never written', async () => {
    await fc.assert(fc.asyncProperty(sceneArb, async (spec) => {
      const sc = await build(spec);
      const others = [...sc.paths.slice(0, -1), sc.q].map((p) => [p, readFileSync(p)] as const);
      const r1 = await step(sc.leaf, sc.p, sc.viewA, spec, 'onP');
      const first = { bytes: readFileSync(r1), stored: await storedSectors(r1) };
      const r2 = await step(r1, sc.q, sc.viewA, spec, 'onQ');
      const r3 = await step(r2, sc.p, sc.viewA, spec, 'backOnP');
      // Back on P, the result stores the very sectors it stored the first time; in place, it is the same file to the byte.
      expect(await storedSectors(r3)).toEqual(first.stored);
      if (spec.inPlace) expect(readFileSync(r3).equals(first.bytes), 'in place: byte-identical to the first result').toBe(true);
      for (const [p, bytes] of others) expect(readFileSync(p).equals(bytes), p).toBe(true);
    }), { numRuns: Math.ceil(RUNS / 2) });
  });

  it('rebasing onto its own current parent changes no sector of the view, and stores what compact would keep', async () => {
    await fc.assert(fc.asyncProperty(sceneArb, async (spec) => {
      const sc = await build(spec);
      const parent = sc.paths[sc.paths.length - 2];
      const compacted = path.join(sc.dir, 'compacted.vhd');
      await compact(sc.leaf, { output: compacted, threads: 0 });
      const out = await step(sc.leaf, parent, sc.viewA, spec, 'same');
      expect(await storedSectors(out)).toEqual(await storedSectors(compacted));
    }), { numRuns: RUNS });
  });
});
