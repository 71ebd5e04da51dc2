/**
 * merge on the real Windows pairs, a depth-3 chain coalesced at each level and
 * flattened, and layouts other producers write (512 KiB blocks, shuffled
 * blocks, locators before the BAT, the last sector written). qemu-img and
 * libvhdi read every standalone output like vhdtool does.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { merge, convert } from '../../src/ops/merge.js';
import { compact } from '../../src/ops/compact.js';
import { compare } from '../../src/ops/compare.js';
import { info } from '../../src/ops/info.js';
import { modelContent, writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { content, contentHash } from '../helpers/hash.js';
import { expectedHashes, HAVE_REAL, realPath } from '../helpers/real.js';
import { HAVE_PYVHDI, HAVE_QEMU, libvhdiHash, qemuHash } from '../helpers/peers.js';
import { nonMinimal } from '../helpers/minimal.js';
import { tempDir } from '../helpers/tmp.js';
import { createHash } from 'node:crypto';

const hashes = expectedHashes();
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe.skipIf(!HAVE_REAL)('merge on the real Windows pairs', () => {
  for (const [child, parent] of [['fat-differential.vhd', 'fat-parent.vhd'], ['ntfs-differential.vhd', 'ntfs-parent.vhd']]) {
    for (const type of ['dynamic', 'fixed'] as const) {
      it(`${child} over ${parent} -> ${type}: the expected content hash, read identically by qemu-img and libvhdi; inputs untouched`, async () => {
        const dir = tempDir();
        copyFileSync(realPath(parent), path.join(dir, parent));
        copyFileSync(realPath(child), path.join(dir, child));
        const inputs = [readFileSync(path.join(dir, parent)), readFileSync(path.join(dir, child))];
        const out = path.join(dir, 'merged.vhd');
        const r = await merge(path.join(dir, child), path.join(dir, parent), out, { threads: 1, type });
        expect(r.outputType).toBe(type);
        expect(await contentHash(out)).toBe(hashes.get(child));
        expect(readFileSync(path.join(dir, parent)).equals(inputs[0])).toBe(true);
        expect(readFileSync(path.join(dir, child)).equals(inputs[1])).toBe(true);
        expect((await info(out)).uuid).not.toBe((await info(path.join(dir, child))).uuid);
        if (HAVE_QEMU) expect(qemuHash(out)).toBe(hashes.get(child));
        if (HAVE_PYVHDI) expect(libvhdiHash(out).sha256).toBe(hashes.get(child));
        expect((await compare(out, path.join(dir, child), { threads: 0 })).identical).toBe(true);
      });
    }
  }
});

function data(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}

/** A depth-3 chain (base + 3 children) in a given layout. */
function chain3(opts: Partial<SynthLayer>): SynthLayer[] {
  const size = 6 * 1024 * 1024 + 3 * 512; // not a multiple of any block size
  const bs = opts.blockSize ?? 512 * 1024;
  const last = size / 512 - 1;
  const base: SynthLayer = { type: 'dynamic', virtualSize: size, blockSize: bs, writes: [{ sector: 0, data: data(2 << 20, 1) }, { sector: 9000, data: data(64 << 10, 2) }], ...opts };
  const layers: SynthLayer[] = [base];
  const below = () => modelContent(layers);
  const c1: SynthLayer = { type: 'differencing', virtualSize: size, blockSize: bs, ...opts, writes: [
    { sector: 10, data: data(4096, 3) },
    { sector: 100, data: below().slice(100 * 512, 164 * 512) },
    { sector: 2048, data: new Uint8Array(8192) },
  ] };
  layers.push(c1);
  const c2: SynthLayer = { type: 'differencing', virtualSize: size, blockSize: bs, ...opts, writes: [
    { sector: 11, data: data(512, 4) },
    { sector: 5000, data: new Uint8Array(32768) },
    { sector: 9000, data: below().slice(9000 * 512, 9064 * 512) },
  ] };
  layers.push(c2);
  const c3: SynthLayer = { type: 'differencing', virtualSize: size, blockSize: bs, ...opts, writes: [
    { sector: 12, data: data(1024, 5) },
    { sector: last, data: data(512, 6) },
    { sector: 10, data: below().slice(10 * 512, 12 * 512) },
  ] };
  layers.push(c3);
  return layers;
}

const LAYOUTS: Array<[string, Partial<SynthLayer>]> = [
  ['512 KiB blocks', { blockSize: 512 * 1024 }],
  ['2 MiB blocks, shuffled block order', { blockSize: 2 * 1024 * 1024, shuffleSeed: 7 }],
  ['locators before the BAT, packed blocks', { blockSize: 512 * 1024, locatorsFirst: true, align: 512 }],
  ['4 KiB blocks, spare BAT entries', { blockSize: 4096, spareEntries: 37 }],
];

describe('a depth-3 chain coalesces at each level and flattens', () => {
  for (const [name, layout] of LAYOUTS) {
    it(name, async () => {
      const layers = chain3(layout);
      const dir = tempDir();
      const [base, c1, c2, c3] = (await writeSynthChain(nodeFileSystem, dir, layers, ['base.vhd', 'c1.vhd', 'c2.vhd', 'c3.vhd'])).map((b) => b.path);
      const want = modelContent(layers);
      expect(sha(await content(c3))).toBe(sha(want));
      const m23 = path.join(dir, 'm23.vhd');
      const r1 = await merge(c3, c2, m23, { threads: 1 });
      expect(r1.outputType).toBe('differencing');
      expect(r1.linkedTo?.path).toBe(c1);
      expect(sha(await content(m23))).toBe(sha(want));
      expect(await nonMinimal(m23)).toEqual([]);
      const m123 = path.join(dir, 'm123.vhd');
      await merge(m23, c1, m123, { threads: 0 });
      expect((await info(m123)).chain.map((c) => c.path)).toEqual([m123, base]);
      expect(sha(await content(m123))).toBe(sha(want));
      const all = path.join(dir, 'all.vhd');
      await merge(m123, base, all, { threads: 0 });
      const flat = path.join(dir, 'flat.vhd');
      await merge(c3, c2, flat, { threads: 1, flatten: true });
      const fixed = path.join(dir, 'fixed.vhd');
      await convert(c3, fixed, { threads: 0, type: 'fixed' });
      for (const p of [all, flat, fixed]) {
        expect(sha(await content(p))).toBe(sha(want));
        if (HAVE_QEMU) expect(qemuHash(p)).toBe(sha(want));
        if (HAVE_PYVHDI) expect(libvhdiHash(p).sha256).toBe(sha(want));
      }
      // Compacting the leaf in place keeps what every layer shows.
      const before = await Promise.all([c1, c2].map((p) => content(p)));
      await compact(c3, { threads: 1 });
      expect(sha(await content(c3))).toBe(sha(want));
      expect(await nonMinimal(c3)).toEqual([]);
      const after = await Promise.all([c1, c2].map((p) => content(p)));
      after.forEach((a, i) => expect(sha(a)).toBe(sha(before[i])));
    });
  }
});
