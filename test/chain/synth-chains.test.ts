/**
 * Generated chains of every shape vhdtool must read: for each, `info` reports
 * what the description implies, and the chain reader's content (whole, and
 * at unaligned byte ranges) equals modelContent(layers), computed from the
 * descriptions alone.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain, modelContent, type SynthLayer, type SynthWrite, type BuiltLayer } from '../../src/synth/build.js';
import { openChain, type OpenChainOptions } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';
import { info } from '../../src/ops/info.js';
import { encodeUtf16Le, SECTOR } from '../../src/format/index.js';
import { tempDir } from '../helpers/tmp.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** xorshift bytes, deterministic per seed. */
function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = (x & 0xff) | 1; // never zero, so every written sector is visible
  }
  return b;
}

/** `count` writes of 1..maxSectors sectors at seeded positions within `size` bytes. */
function writes(seed: number, size: number, count: number, maxSectors = 64): SynthWrite[] {
  const total = size / SECTOR;
  const out: SynthWrite[] = [];
  let x = seed;
  const rnd = (m: number) => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return (x >>> 8) % m; };
  for (let i = 0; i < count; i++) {
    const n = Math.min(total, 1 + rnd(maxSectors));
    const at = rnd(total - n + 1);
    out.push({ sector: at, data: bytes(n * SECTOR, seed * 1000 + i) });
  }
  return out;
}

/** Distinct sectors a layer's writes touch. */
function sectorsOf(l: SynthLayer): Set<number> {
  const s = new Set<number>();
  for (const w of l.writes) for (let i = 0; i < w.data.length / SECTOR; i++) s.add(w.sector + i);
  return s;
}

/** Blocks a layer must have allocated, from its writes alone. */
function blocksOf(l: SynthLayer): Set<number> {
  const spb = (l.blockSize ?? 2 * MiB) / SECTOR;
  return new Set([...sectorsOf(l)].map((s) => Math.floor(s / spb)));
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

/** Where the first difference lies, for a readable failure. */
function firstDiff(a: Uint8Array, b: Uint8Array): string {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return `first difference at byte ${i} (sector ${Math.floor(i / SECTOR)}): ${a[i]} vs ${b[i]}`;
  return a.length === b.length ? 'equal' : `lengths ${a.length} vs ${b.length}`;
}

async function readAll(leaf: string, opts: OpenChainOptions = {}): Promise<{ whole: Uint8Array; streamed: Uint8Array; reader: ChainReader; close: () => Promise<void> }> {
  const chain = await openChain(nodeFileSystem, leaf, opts);
  const reader = new ChainReader(chain);
  const whole = await reader.read(0, reader.size);
  const streamed = new Uint8Array(reader.size);
  await reader.stream((chunk, off) => { streamed.set(chunk, off); }, 192 * KiB);
  return { whole, streamed, reader, close: () => chain.close() };
}

/** Builds, then checks content and info against the model. */
async function verify(layers: SynthLayer[], opts: { names?: string[]; parent?: string; foundBy?: string } = {}): Promise<BuiltLayer[]> {
  const dir = tempDir();
  const built = await writeSynthChain(nodeFileSystem, dir, layers, opts.names);
  const leaf = built[built.length - 1];
  const model = modelContent(layers);
  const chainOpts: OpenChainOptions = opts.parent ? { parent: opts.parent } : {};
  const r = await readAll(leaf.path, chainOpts);
  try {
    expect(r.reader.size).toBe(layers[layers.length - 1].virtualSize);
    expect(same(r.whole, model), firstDiff(r.whole, model)).toBe(true);
    expect(same(r.streamed, model), firstDiff(r.streamed, model)).toBe(true);
    // Unaligned byte ranges, across block and layer boundaries and up to the end.
    const size = model.length;
    const ranges: Array<[number, number]> = [[1, 1], [511, 2], [size - 1, 1], [size - 700, 700], [0, size]];
    for (const l of layers) {
      const bs = l.blockSize ?? 2 * MiB;
      for (let b = bs; b < size; b += bs * 3) ranges.push([b - 300, Math.min(777, size - (b - 300))]);
      if (l.virtualSize < size) ranges.push([l.virtualSize - 100, 300]);
    }
    for (const [off, len] of ranges) {
      const got = await r.reader.read(off, len);
      expect(same(got, model.subarray(off, off + len)), `range ${off}+${len}: ${firstDiff(got, model.subarray(off, off + len))}`).toBe(true);
    }
    // Pieces from the resolver cover the disk exactly, in order.
    const pieces = r.reader.resolver.resolveRange(0, 0, size / SECTOR);
    let next = 0;
    for (const p of pieces) {
      expect(p.sector).toBe(next);
      expect(p.count).toBeGreaterThan(0);
      next += p.count;
    }
    expect(next).toBe(size / SECTOR);
  } finally {
    await r.close();
  }

  const inf = await info(leaf.path, { parent: opts.parent });
  const top = layers[layers.length - 1];
  expect(inf.type).toBe(top.type);
  expect(inf.virtualSize).toBe(top.virtualSize);
  expect(inf.uuid).toBe(leaf.uniqueId);
  expect(inf.parentUuid).toBe(built.length > 1 ? built[built.length - 2].uniqueId : null);
  expect(inf.blockSize).toBe(top.type === 'fixed' ? null : top.blockSize ?? 2 * MiB);
  expect(inf.allocatedBlocks).toBe(top.type === 'fixed' ? 0 : blocksOf(top).size);
  if (top.type === 'differencing' || (top.type === 'dynamic' && top.fullBitmaps === false)) {
    expect(inf.sectorsSet).toBe(sectorsOf(top).size);
  } else if (top.type === 'dynamic') {
    expect(inf.sectorsSet).toBe(blocksOf(top).size * (top.blockSize ?? 2 * MiB) / SECTOR);
  }
  expect(inf.fileSize).toBeGreaterThan(0);
  expect(inf.chain).toEqual([...built].reverse().map((b, i) => ({
    path: b.path,
    type: layers[layers.length - 1 - i].type,
    uuid: b.uniqueId,
    virtualSize: layers[layers.length - 1 - i].virtualSize,
    parentFoundBy: i === built.length - 1 ? null : i === 0 && opts.foundBy ? opts.foundBy : 'W2ru locator',
  })));
  expect(inf.warnings).toEqual([]);
  return built;
}

describe('generated chains: info and content match the model', () => {
  it('512 KiB blocks, dynamic base + differencing child', async () => {
    const size = 5 * MiB;
    await verify([
      { type: 'dynamic', virtualSize: size, blockSize: 512 * KiB, writes: writes(1, size, 30) },
      { type: 'differencing', virtualSize: size, blockSize: 512 * KiB, writes: writes(2, size, 30) },
    ]);
  });

  it('2 MiB blocks, three layers over a fixed base', async () => {
    const size = 8 * MiB;
    await verify([
      { type: 'fixed', virtualSize: size, writes: writes(3, size, 20, 200) },
      { type: 'differencing', virtualSize: size, blockSize: 2 * MiB, writes: writes(4, size, 15) },
      { type: 'differencing', virtualSize: size, blockSize: 2 * MiB, writes: writes(5, size, 15) },
    ]);
  });

  it('4 KiB blocks (8 sectors per block, bitmap padded to a sector)', async () => {
    const size = 256 * KiB;
    await verify([
      { type: 'dynamic', virtualSize: size, blockSize: 4 * KiB, writes: writes(6, size, 25, 20), fullBitmaps: false },
      { type: 'differencing', virtualSize: size, blockSize: 4 * KiB, writes: writes(7, size, 25, 20) },
    ]);
  });

  it('blocks stored in shuffled order, in every layer', async () => {
    const size = 12 * MiB;
    await verify([
      { type: 'dynamic', virtualSize: size, blockSize: 512 * KiB, writes: writes(8, size, 40), shuffleSeed: 11 },
      { type: 'differencing', virtualSize: size, blockSize: 512 * KiB, writes: writes(9, size, 40), shuffleSeed: 12 },
    ]);
  });

  it('locator data placed before the BAT, and packed (512-aligned) blocks', async () => {
    const size = 4 * MiB;
    await verify([
      { type: 'dynamic', virtualSize: size, blockSize: 512 * KiB, writes: writes(10, size, 10), align: 512 },
      { type: 'differencing', virtualSize: size, blockSize: 512 * KiB, writes: writes(11, size, 10), locatorsFirst: true, align: 512 },
    ]);
  });

  it('spare BAT entries beyond what the size needs', async () => {
    const size = 3 * MiB;
    await verify([
      { type: 'dynamic', virtualSize: size, blockSize: 512 * KiB, writes: writes(12, size, 10), spareEntries: 200 },
      { type: 'differencing', virtualSize: size, blockSize: 512 * KiB, writes: writes(13, size, 10), spareEntries: 1000 },
    ]);
  });

  it('sizes that are not a multiple of the block size, with the last sector written in each layer', async () => {
    const size = 5 * MiB + 7 * SECTOR;
    const last = (seed: number): SynthWrite => ({ sector: size / SECTOR - 1, data: bytes(SECTOR, seed) });
    await verify([
      { type: 'dynamic', virtualSize: size, blockSize: 2 * MiB, writes: [...writes(14, size, 10), last(140)] },
      { type: 'differencing', virtualSize: size, blockSize: 2 * MiB, writes: [...writes(15, size, 10), last(150)] },
    ]);
  });

  it('the last sector written only in the parent shows through the child', async () => {
    const size = 3 * MiB - SECTOR;
    await verify([
      { type: 'dynamic', virtualSize: size, blockSize: 2 * MiB, writes: [{ sector: size / SECTOR - 1, data: bytes(SECTOR, 99) }] },
      { type: 'differencing', virtualSize: size, blockSize: 2 * MiB, writes: writes(16, 2 * MiB, 5) },
    ]);
  });

  it('a child larger than its parent reads zeros past the parent\'s end', async () => {
    const small = 2 * MiB + 3 * SECTOR;
    const big = 6 * MiB;
    const layers: SynthLayer[] = [
      { type: 'dynamic', virtualSize: small, blockSize: 512 * KiB, writes: [...writes(17, small, 10), { sector: small / SECTOR - 2, data: bytes(2 * SECTOR, 170) }] },
      { type: 'differencing', virtualSize: big, blockSize: 512 * KiB, writes: [{ sector: small / SECTOR + 50, data: bytes(SECTOR, 171) }] },
    ];
    await verify(layers);
    const model = modelContent(layers);
    // The model itself: the parent's last sectors are visible, then zeros up to the child's own write.
    expect(model.subarray(small - SECTOR, small).some((x) => x !== 0)).toBe(true);
    expect(model.subarray(small, small + 50 * SECTOR).every((x) => x === 0)).toBe(true);
  });

  it('a parent that is larger than the child only shows up to the child\'s size', async () => {
    await verify([
      { type: 'fixed', virtualSize: 4 * MiB, writes: writes(18, 4 * MiB, 10, 500) },
      { type: 'differencing', virtualSize: 3 * MiB, blockSize: 2 * MiB, writes: writes(19, 3 * MiB, 5) },
    ]);
  });

  it('mixed block sizes between layers, dynamic base with exact bitmaps', async () => {
    const size = 4 * MiB;
    await verify([
      { type: 'dynamic', virtualSize: size, blockSize: 2 * MiB, writes: writes(20, size, 20), fullBitmaps: false },
      { type: 'differencing', virtualSize: size, blockSize: 4 * KiB, writes: writes(21, size, 20) },
      { type: 'differencing', virtualSize: size, blockSize: 512 * KiB, writes: writes(22, size, 20) },
    ]);
  });

  it('a single dynamic disk and a single fixed disk', async () => {
    await verify([{ type: 'dynamic', virtualSize: 3 * MiB, blockSize: 2 * MiB, writes: writes(23, 3 * MiB, 10) }]);
    await verify([{ type: 'fixed', virtualSize: 3 * MiB, writes: writes(24, 3 * MiB, 10) }]);
  });
});

describe('generated chains: how the parent is found', () => {
  const size = 2 * MiB;
  const base = (): SynthLayer => ({ type: 'dynamic', virtualSize: size, blockSize: 512 * KiB, writes: writes(30, size, 8) });
  const child = (over: Partial<SynthLayer>): SynthLayer => ({ type: 'differencing', virtualSize: size, blockSize: 512 * KiB, writes: writes(31, size, 8), ...over });

  it('only through the W2ku absolute path\'s file name', async () => {
    await verify([
      base(),
      child({ locators: [{ platform: 'W2ku', data: encodeUtf16Le('C:\\Hyper-V\\Disks\\golden-base.vhd') }], parentName: 'no-such-name.vhd' }),
    ], { names: ['golden-base.vhd', 'child.vhd'], foundBy: 'W2ku locator (file name)' });
  });

  it('only through the header\'s parent unicode name (no locators at all)', async () => {
    await verify([base(), child({ locators: [], parentName: 'base.vhd' })], { foundBy: 'parent name' });
  });

  it('only through --parent, when locators and name lead nowhere', async () => {
    const dir = tempDir();
    const layers = [base(), child({ locators: [{ platform: 'W2ru', data: encodeUtf16Le('.\\moved-away.vhd') }], parentName: 'moved-away.vhd' })];
    const built = await writeSynthChain(nodeFileSystem, dir, layers, ['elsewhere.vhd', 'child.vhd']);
    await expect(openChain(nodeFileSystem, built[1].path)).rejects.toMatchObject({ code: 'PARENT_NOT_FOUND' });
    const r = await readAll(built[1].path, { parent: built[0].path });
    try {
      expect(same(r.whole, modelContent(layers))).toBe(true);
    } finally {
      await r.close();
    }
    const inf = await info(built[1].path, { parent: built[0].path });
    expect(inf.chain.map((c) => [c.path, c.uuid, c.parentFoundBy])).toEqual([
      [built[1].path, built[1].uniqueId, '--parent'],
      [path.resolve(built[0].path), built[0].uniqueId, null],
    ]);
  });

  it('through a Wi2r ASCII locator and a MacX file URL', async () => {
    const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
    await verify([base(), child({ locators: [{ platform: 'Wi2r', data: ascii('.\\base.vhd') }], parentName: 'x.vhd' })], { foundBy: 'Wi2r locator' });
    const dir = tempDir();
    const layers = [base(), child({ parentName: 'x.vhd' })];
    const b0 = await writeSynthChain(nodeFileSystem, dir, [layers[0]], ['p.vhd']);
    const url = 'file://localhost' + encodeURI(path.resolve(b0[0].path));
    const { writeSynthLayer } = await import('../../src/synth/build.js');
    const c = await writeSynthLayer(nodeFileSystem, path.join(dir, 'c.vhd'), { ...layers[1], locators: [{ platform: 'MacX', data: new TextEncoder().encode(url) }] }, b0[0]);
    const inf = await info(c.path);
    expect(inf.chain[0].parentFoundBy).toBe('MacX locator');
    expect(inf.chain[1].uuid).toBe(b0[0].uniqueId);
  });
});
