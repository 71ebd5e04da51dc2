/**
 * Data generators for `npm run bench` (scripts/bench.ts). Everything lands in
 * .bench-cache/<name>-<GEN_VERSION>/ and is built once: a directory counts as
 * complete only when its meta.json exists (written last), so an interrupted
 * generation is wiped and redone on the next run.
 *
 * The writers stream: blocks are produced in virtual order, a few 2 MiB
 * buffers at a time, and go straight to SparseWriter slots reserved up front
 * (the child's slots in a shuffled order, as a guest's writes leave them).
 * Data is incompressible (crypto.randomFillSync) because the disk's write
 * speed depends on the data; the choices of what goes where come from a seeded
 * PRNG, so the layout (not the bytes) is reproducible.
 */
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { bitmapBytes, dateToVhdTime, setRange, SECTOR, type Uuid } from '../src/format/index.js';
import { nodeFileSystem, readExact, type RandomAccessFile } from '../src/io/fsys.js';
import { hyperVLocators, newFooter, newHeader } from '../src/vhd/build.js';
import { openVhd } from '../src/vhd/image.js';
import { SparseWriter } from '../src/vhd/writer.js';
import { mulberry32 } from '../src/synth/random.js';

/** Bump one when its generator below changes what it writes: the cache key of each data set. */
export const GEN_VERSION = { chain: 'g1', scale: 'g2', tree: 'g1', rebase: 'g1' } as const;

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function shuffle<T>(a: T[], rnd: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Returns `n` distinct elements of `pool` (removed from it). */
function take(pool: number[], n: number, rnd: () => number): number[] {
  if (n > pool.length) throw new Error(`bench-gen: need ${n} blocks, only ${pool.length} left`);
  shuffle(pool, rnd);
  return pool.splice(0, n).sort((x, y) => x - y);
}

// ---------------------------------------------------------------------------
// A streaming VHD layer writer.

interface Layer {
  file: string;
  fh: RandomAccessFile;
  w: SparseWriter;
  uniqueId: Uuid;
  offsets: Map<number, number>;
  bitmap: Uint8Array;
  blocks: number;
}

export async function openLayer(file: string, kind: 'dynamic' | 'differencing', virtualSize: number, blockSize: number,
  order: number[], parent: { file: string; uniqueId: Uuid } | null): Promise<Layer> {
  const fh = await nodeFileSystem.createExclusive(file);
  const footer = newFooter({ type: kind, virtualSize });
  const entries = Math.ceil(virtualSize / blockSize);
  const link = parent
    ? { uniqueId: parent.uniqueId, timestamp: dateToVhdTime(new Date()), unicodeName: path.basename(parent.file) }
    : null;
  const locators = parent ? hyperVLocators(file, parent.file) : [];
  const w = new SparseWriter(fh, { footer, header: newHeader(blockSize, entries, link), locators });
  const offsets = new Map<number, number>();
  for (const b of order) offsets.set(b, w.reserve(b));
  return { file, fh, w, uniqueId: footer.uniqueId, offsets, bitmap: new Uint8Array(bitmapBytes(blockSize)), blocks: order.length };
}

export async function putBlock(l: Layer, block: number, bitmap: Uint8Array, data: Uint8Array): Promise<void> {
  const off = l.offsets.get(block);
  if (off === undefined) throw new Error(`bench-gen: block ${block} has no reserved slot in ${l.file}`);
  await l.fh.writev([bitmap, data], off);
}

export async function closeLayer(l: Layer, parentMtime?: number): Promise<void> {
  // The child's parent time stamp is the parent's modification time, as Hyper-V records it.
  if (parentMtime !== undefined) l.w.spec.header.parentTimestamp = dateToVhdTime(new Date(parentMtime));
  await l.w.finish();
  await l.fh.sync();
  await l.fh.close();
}

// ---------------------------------------------------------------------------
// The main benchmark chain: parent (dynamic) <- child (differencing), plus
// flat.vhd, the chain's content written out independently as one dynamic disk
// (what a correct merge must equal; `compare child flat` must say identical).

export interface ChainSpec {
  virtualSize: number;
  blockSize: number;
  /** Blocks allocated in the parent; the first half are contiguous from block 0. */
  parentBlocks: number;
  child: {
    /** Blocks equal to the parent's block, every bit set. */
    identical: number;
    /** Over parent data, every bit set, a mix per sector. */
    mixed: number;
    /** New random data over unallocated parent areas. */
    fresh: number;
    /** All zeros over unallocated parent areas (zero over zero). */
    zero: number;
    /** Partial bitmaps over parent data (written runs use the per-sector mix). */
    partialOverParent: number;
    /** Partial bitmaps over unallocated parent areas (random runs, some zero runs). */
    partialFresh: number;
  };
  seed: number;
}

export const MAIN_CHAIN: ChainSpec = {
  virtualSize: 8 * GiB,
  blockSize: 2 * MiB,
  parentBlocks: 512, // 1 GiB
  child: { identical: 32, mixed: 96, fresh: 64, zero: 32, partialOverParent: 16, partialFresh: 16 }, // 256 blocks: 0.5 GiB
  seed: 0x7e57_0001,
};

/** A 1/8 version for harness smoke tests (`--small`). */
export const SMALL_CHAIN: ChainSpec = {
  virtualSize: 1 * GiB,
  blockSize: 2 * MiB,
  parentBlocks: 64,
  child: { identical: 4, mixed: 12, fresh: 8, zero: 4, partialOverParent: 2, partialFresh: 2 },
  seed: 0x7e57_0002,
};

export interface ChainMeta {
  generator: string;
  spec: ChainSpec;
  parent: string;
  child: string;
  flat: string;
  parentBlocks: number;
  childBlocks: number;
  flatBlocks: number;
  /** Allocated data bytes (blocks x block size). */
  parentDataBytes: number;
  childDataBytes: number;
  flatDataBytes: number;
  parentFileBytes: number;
  childFileBytes: number;
  flatFileBytes: number;
  /** Sectors set in the child's bitmaps, and how compact must classify them. */
  childSectorsSet: number;
  expectKeptSectors: number;
  expectDroppableSectors: number;
  /** Child blocks that keep at least one sector (the compacted child's block count). */
  expectKeptBlocks: number;
  generatedAt: string;
  generateSeconds: number;
}

const sectorEq = (a: Uint8Array, b: Uint8Array, s: number): boolean =>
  Buffer.compare(a.subarray(s * SECTOR, (s + 1) * SECTOR), b.subarray(s * SECTOR, (s + 1) * SECTOR)) === 0;

export async function ensureChain(cacheRoot: string, spec: ChainSpec, name: string, log: (s: string) => void): Promise<ChainMeta> {
  const dir = path.join(cacheRoot, `${name}-${GEN_VERSION.chain}`);
  const metaFile = path.join(dir, 'meta.json');
  if (existsSync(metaFile)) return JSON.parse(readFileSync(metaFile, 'utf8')) as ChainMeta;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const { virtualSize, blockSize } = spec;
  const spb = blockSize / SECTOR;
  const nBlocks = Math.ceil(virtualSize / blockSize);
  const rnd = mulberry32(spec.seed);

  // Which virtual blocks hold what.
  const half = Math.floor(spec.parentBlocks / 2);
  const rest = Array.from({ length: nBlocks - half }, (_, i) => half + i);
  const parentSet = [...Array.from({ length: half }, (_, i) => i), ...take(rest, spec.parentBlocks - half, rnd)].sort((a, b) => a - b);
  const unallocated = rest; // what take() left
  const overParent = [...parentSet];
  const c = spec.child;
  type Kind = 'identical' | 'mixed' | 'fresh' | 'zero' | 'partialOverParent' | 'partialFresh';
  const childKind = new Map<number, Kind>();
  for (const [k, n] of [['identical', c.identical], ['mixed', c.mixed], ['partialOverParent', c.partialOverParent]] as const) {
    for (const b of take(overParent, n, rnd)) childKind.set(b, k);
  }
  for (const [k, n] of [['fresh', c.fresh], ['zero', c.zero], ['partialFresh', c.partialFresh]] as const) {
    for (const b of take(unallocated, n, rnd)) childKind.set(b, k);
  }
  // One parent block in 8 is partly used: its last quarter is zeros.
  const parentPartly = new Set(parentSet.filter(() => rnd() < 0.125));
  const childOrder = shuffle([...childKind.keys()], rnd);
  const flatOrder = [...new Set([...parentSet, ...childKind.keys()])].sort((a, b) => a - b);

  const parentFile = path.join(dir, 'parent.vhd');
  const childFile = path.join(dir, 'child.vhd');
  const flatFile = path.join(dir, 'flat.vhd');
  const P = await openLayer(parentFile, 'dynamic', virtualSize, blockSize, parentSet, null);
  const C = await openLayer(childFile, 'differencing', virtualSize, blockSize, childOrder, { file: parentFile, uniqueId: P.uniqueId });
  const F = await openLayer(flatFile, 'dynamic', virtualSize, blockSize, flatOrder, null);

  const full = new Uint8Array(bitmapBytes(blockSize)).fill(0xff);
  const pData = new Uint8Array(blockSize);
  const cData = new Uint8Array(blockSize);
  const fData = new Uint8Array(blockSize);
  const pool = new Uint8Array(blockSize);
  const cBits = new Uint8Array(bitmapBytes(blockSize));
  const parentSetS = new Set(parentSet);
  let sectorsSet = 0;
  let kept = 0;
  let keptBlocks = 0;
  let done = 0;

  /** One sector of the per-sector mix, from parent sector s (pData) into cData. */
  const mixSector = (s: number) => {
    const o = s * SECTOR;
    const r = rnd();
    if (r < 0.35) cData.set(pData.subarray(o, o + SECTOR), o); // identical to the parent
    else if (r < 0.60) { // one byte changed
      cData.set(pData.subarray(o, o + SECTOR), o);
      cData[o + Math.floor(rnd() * SECTOR)] ^= 1 + Math.floor(rnd() * 255);
    } else if (r < 0.70) cData.fill(0, o, o + SECTOR); // zeros over data (or over a zero tail)
    else cData.set(pool.subarray(o, o + SECTOR), o); // new data
  };
  /** Alternating written / unwritten runs of 8..512 sectors; calls fn for written sectors. */
  const partialRuns = (fn: (s: number, runIndex: number) => void) => {
    cBits.fill(0);
    let s = 0;
    let on = rnd() < 0.5;
    let run = 0;
    while (s < spb) {
      const len = Math.min(spb - s, 8 * (1 + Math.floor(rnd() * 64)));
      if (on) {
        setRange(cBits, s, len);
        for (let i = s; i < s + len; i++) fn(i, run);
        run++;
      }
      s += len;
      on = !on;
    }
  };

  for (const b of flatOrder) {
    const inParent = parentSetS.has(b);
    if (inParent) {
      randomFillSync(pData);
      if (parentPartly.has(b)) pData.fill(0, (blockSize * 3) / 4);
      await putBlock(P, b, full, pData);
    } else pData.fill(0);
    fData.set(pData);
    const kind = childKind.get(b);
    if (kind) {
      cData.fill(0);
      cBits.set(full);
      randomFillSync(pool);
      switch (kind) {
        case 'identical': cData.set(pData); break;
        case 'mixed': for (let s = 0; s < spb; s++) mixSector(s); break;
        case 'fresh': cData.set(pool); break;
        case 'zero': break;
        case 'partialOverParent': partialRuns((s) => mixSector(s)); break;
        case 'partialFresh': {
          const zeroRun = new Set<number>();
          partialRuns((s, r) => {
            if (r % 10 === 9) zeroRun.add(r);
            if (!zeroRun.has(r)) cData.set(pool.subarray(s * SECTOR, (s + 1) * SECTOR), s * SECTOR);
          });
          break;
        }
      }
      await putBlock(C, b, cBits, cData);
      // Expected classification, and the flattened content.
      let blockKept = 0;
      for (let s = 0; s < spb; s++) {
        if (!(cBits[s >> 3] & (0x80 >> (s & 7)))) continue;
        sectorsSet++;
        if (!sectorEq(cData, pData, s)) blockKept++;
        fData.set(cData.subarray(s * SECTOR, (s + 1) * SECTOR), s * SECTOR);
      }
      kept += blockKept;
      if (blockKept > 0) keptBlocks++;
    }
    await putBlock(F, b, full, fData);
    if (++done % 256 === 0) log(`  generating ${name}: ${done}/${flatOrder.length} blocks`);
  }
  await closeLayer(P);
  const pm = statSync(parentFile).mtimeMs;
  await closeLayer(C, pm);
  await closeLayer(F);

  const meta: ChainMeta = {
    generator: GEN_VERSION.chain,
    spec,
    parent: parentFile,
    child: childFile,
    flat: flatFile,
    parentBlocks: parentSet.length,
    childBlocks: childOrder.length,
    flatBlocks: flatOrder.length,
    parentDataBytes: parentSet.length * blockSize,
    childDataBytes: childOrder.length * blockSize,
    flatDataBytes: flatOrder.length * blockSize,
    parentFileBytes: statSync(parentFile).size,
    childFileBytes: statSync(childFile).size,
    flatFileBytes: statSync(flatFile).size,
    childSectorsSet: sectorsSet,
    expectKeptSectors: kept,
    expectDroppableSectors: sectorsSet - kept,
    expectKeptBlocks: keptBlocks,
    generatedAt: new Date().toISOString(),
    generateSeconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(metaFile, JSON.stringify(meta, null, 2) + '\n');
  return meta;
}

// ---------------------------------------------------------------------------
// The updated template for `rebase`: parent-v2.vhd, a standalone dynamic disk
// made from the benchmark chain's parent as a template update makes it: one
// parent block in 8 rewritten, one in 16 removed, and new blocks where the
// parent has none (half of them under the child's own blocks). Rebasing the
// child onto it must give flat.vhd's content.

export interface UpdatedParentMeta {
  generator: string;
  parentV2: string;
  blocks: number;
  dataBytes: number;
  fileBytes: number;
  rewritten: number;
  removed: number;
  added: number;
  generatedAt: string;
}

export async function ensureUpdatedParent(cacheRoot: string, m: ChainMeta, name: string, log: (s: string) => void): Promise<UpdatedParentMeta> {
  const dir = path.join(cacheRoot, `${name}-${GEN_VERSION.rebase}`);
  const metaFile = path.join(dir, 'meta.json');
  if (existsSync(metaFile)) return JSON.parse(readFileSync(metaFile, 'utf8')) as UpdatedParentMeta;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log('  generating the updated parent for rebase');
  const src = await openVhd(nodeFileSystem, m.parent);
  const child = await openVhd(nodeFileSystem, m.child);
  try {
    const { virtualSize, blockSize } = m.spec;
    const pm = src.meta;
    const rnd = mulberry32(m.spec.seed ^ 0x2e_ba5e);
    const parentSet = [...pm.bat!.allocated()].sort((a, b) => a - b);
    const childSet = new Set(child.meta.bat!.allocated());
    const fate = new Map<number, 'rewritten' | 'removed' | 'kept'>(parentSet.map((b) => {
      const r = rnd();
      return [b, r < 0.125 ? 'rewritten' : r < 0.1875 ? 'removed' : 'kept'];
    }));
    const free = Array.from({ length: Math.ceil(virtualSize / blockSize) }, (_, i) => i).filter((b) => !fate.has(b));
    const underChild = take(free.filter((b) => childSet.has(b)), Math.min(16, free.filter((b) => childSet.has(b)).length), rnd);
    const elsewhere = take(free.filter((b) => !childSet.has(b)), 16, rnd);
    const added = new Set([...underChild, ...elsewhere]);
    const order = [...parentSet.filter((b) => fate.get(b) !== 'removed'), ...added].sort((a, b) => a - b);
    const file = path.join(dir, 'parent-v2.vhd');
    const L = await openLayer(file, 'dynamic', virtualSize, blockSize, order, null);
    const full = new Uint8Array(bitmapBytes(blockSize)).fill(0xff);
    const data = new Uint8Array(blockSize);
    for (const b of order) {
      if (fate.get(b) === 'kept') await readExact(src.file, data, 0, blockSize, pm.bat!.get(b)! * SECTOR + pm.bitmapSize);
      else randomFillSync(data);
      await putBlock(L, b, full, data);
    }
    await closeLayer(L);
    const count = (f: string) => [...fate.values()].filter((x) => x === f).length;
    const meta: UpdatedParentMeta = {
      generator: GEN_VERSION.rebase, parentV2: file, blocks: order.length, dataBytes: order.length * blockSize,
      fileBytes: statSync(file).size, rewritten: count('rewritten'), removed: count('removed'), added: added.size,
      generatedAt: new Date().toISOString(),
    };
    writeFileSync(metaFile, JSON.stringify(meta, null, 2) + '\n');
    return meta;
  } finally {
    await src.close();
    await child.close();
  }
}

// ---------------------------------------------------------------------------
// The scale chain: the largest VHD (2040 GiB virtual) with a few dozen blocks
// written. Cost must follow allocated data, not virtual size.

export interface ScaleMeta {
  generator: string;
  parent: string;
  child: string;
  virtualSize: number;
  blockSize: number;
  parentBlocks: number;
  childBlocks: number;
  childDataBytes: number;
  parentFileBytes: number;
  childFileBytes: number;
  /** What compact must keep: 10 mixed blocks (every other sector) and the new blocks. */
  expectKeptSectors: number;
  expectKeptBlocks: number;
  generatedAt: string;
}

export async function ensureScaleChain(cacheRoot: string, log: (s: string) => void): Promise<ScaleMeta> {
  const dir = path.join(cacheRoot, `scale-${GEN_VERSION.scale}`);
  const metaFile = path.join(dir, 'meta.json');
  if (existsSync(metaFile)) return JSON.parse(readFileSync(metaFile, 'utf8')) as ScaleMeta;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log('  generating the 2040 GiB scale chain');
  const virtualSize = 2040 * GiB;
  const blockSize = 2 * MiB;
  const nBlocks = virtualSize / blockSize;
  const rnd = mulberry32(0x7e57_2040);
  const all = Array.from({ length: nBlocks }, (_, i) => i);
  // Spread over the whole disk, including the last block.
  const parentSet = [...take(all, 39, rnd), nBlocks - 1].sort((a, b) => a - b);
  const overParent = take([...parentSet], 20, rnd); // 10 identical, 10 mixed
  const fresh = take(all, 16, rnd);
  const childSet = [...overParent, ...fresh].sort((a, b) => a - b);
  const identical = new Set(overParent.slice(0, 10));
  const parentFile = path.join(dir, 'parent.vhd');
  const childFile = path.join(dir, 'child.vhd');
  const P = await openLayer(parentFile, 'dynamic', virtualSize, blockSize, parentSet, null);
  const C = await openLayer(childFile, 'differencing', virtualSize, blockSize, shuffle([...childSet], rnd), { file: parentFile, uniqueId: P.uniqueId });
  const full = new Uint8Array(bitmapBytes(blockSize)).fill(0xff);
  const pData = new Uint8Array(blockSize);
  const cData = new Uint8Array(blockSize);
  const pSet = new Set(parentSet);
  const cSet = new Set(childSet);
  for (const b of [...new Set([...parentSet, ...childSet])].sort((x, y) => x - y)) {
    if (pSet.has(b)) { randomFillSync(pData); await putBlock(P, b, full, pData); } else pData.fill(0);
    if (!cSet.has(b)) continue;
    if (identical.has(b)) cData.set(pData);
    else if (pSet.has(b)) {
      cData.set(pData);
      for (let s = 0; s < blockSize / SECTOR; s += 2) cData[s * SECTOR + 7] ^= 0x5a; // every other sector changed
    } else randomFillSync(cData);
    await putBlock(C, b, full, cData);
  }
  await closeLayer(P);
  await closeLayer(C, statSync(parentFile).mtimeMs);
  const meta: ScaleMeta = {
    generator: GEN_VERSION.scale, parent: parentFile, child: childFile, virtualSize, blockSize,
    parentBlocks: parentSet.length, childBlocks: childSet.length, childDataBytes: childSet.length * blockSize,
    parentFileBytes: statSync(parentFile).size, childFileBytes: statSync(childFile).size,
    expectKeptSectors: (overParent.length - identical.size) * (blockSize / SECTOR / 2) + fresh.length * (blockSize / SECTOR),
    expectKeptBlocks: childSet.length - identical.size,
    generatedAt: new Date().toISOString(),
  };
  writeFileSync(metaFile, JSON.stringify(meta, null, 2) + '\n');
  return meta;
}

// ---------------------------------------------------------------------------
// The maintain tree: 1000 small disks. 50 folders, each with a golden base,
// 10 children of it and 9 grandchildren (one under each of the first 9
// children): 50 x 20 = 1000 disks, 64 MiB virtual, 512 KiB blocks, about
// 1 MiB of file each. A child's two blocks are either a whole copy of what is
// below (30 %: reclaimable) or partial runs of new data, copies and zeros.

export interface TreeMeta {
  generator: string;
  root: string;
  disks: number;
  folders: number;
  dataBytes: number;
  fileBytes: number;
  generatedAt: string;
  generateSeconds: number;
}

export async function ensureTree(cacheRoot: string, log: (s: string) => void): Promise<TreeMeta> {
  const dir = path.join(cacheRoot, `tree-${GEN_VERSION.tree}`);
  const metaFile = path.join(dir, 'meta.json');
  if (existsSync(metaFile)) return JSON.parse(readFileSync(metaFile, 'utf8')) as TreeMeta;
  rmSync(dir, { recursive: true, force: true });
  const t0 = performance.now();
  const root = path.join(dir, 'disks');
  const virtualSize = 64 * MiB;
  const blockSize = 512 * KiB;
  const spb = blockSize / SECTOR;
  const nBlocks = virtualSize / blockSize;
  const rnd = mulberry32(0x7e57_1000);
  const full = new Uint8Array(bitmapBytes(blockSize)).fill(0xff);
  const bits = new Uint8Array(bitmapBytes(blockSize));
  const data = new Uint8Array(blockSize);
  let disks = 0;
  let dataBytes = 0;
  let fileBytes = 0;

  /** Content of each allocated block of a layer's view, for building the layer above. */
  type View = Map<number, Uint8Array>;
  const writeLayer = async (file: string, parent: { file: string; uniqueId: Uuid; view: View } | null): Promise<{ file: string; uniqueId: Uuid; view: View }> => {
    const view: View = new Map(parent?.view ?? []);
    let blocks: number[];
    if (!parent) blocks = take(Array.from({ length: nBlocks }, (_, i) => i), 4, rnd);
    else blocks = take(Array.from({ length: nBlocks }, (_, i) => i), 2, rnd);
    const L = await openLayer(file, parent ? 'differencing' : 'dynamic', virtualSize, blockSize, blocks, parent);
    for (const b of blocks) {
      const below = view.get(b) ?? new Uint8Array(blockSize);
      if (!parent) { randomFillSync(data); bits.set(full); } else if (rnd() < 0.3) {
        // The guest rewrote a whole block with what it already held: all reclaimable.
        bits.set(full);
        data.set(below);
      } else {
        // Partial: runs of new data, copies of what is below, and zeros.
        bits.fill(0);
        data.fill(0);
        let s = 0;
        while (s < spb) {
          const len = Math.min(spb - s, 8 * (1 + Math.floor(rnd() * 16)));
          const r = rnd();
          if (r < 0.3) { /* unwritten */ } else {
            setRange(bits, s, len);
            const o = s * SECTOR;
            const e = (s + len) * SECTOR;
            if (r < 0.6) randomFillSync(data, o, e - o);
            else if (r < 0.9) data.set(below.subarray(o, e), o);
            // else zeros
          }
          s += len;
        }
      }
      await putBlock(L, b, bits, data);
      const merged = new Uint8Array(below);
      for (let s = 0; s < spb; s++) {
        if (bits[s >> 3] & (0x80 >> (s & 7))) merged.set(data.subarray(s * SECTOR, (s + 1) * SECTOR), s * SECTOR);
      }
      view.set(b, merged);
    }
    await closeLayer(L, parent ? statSync(parent.file).mtimeMs : undefined);
    disks++;
    dataBytes += blocks.length * blockSize;
    fileBytes += statSync(file).size;
    return { file, uniqueId: L.uniqueId, view };
  };

  for (let g = 0; g < 50; g++) {
    const folder = path.join(root, `vm${String(g).padStart(2, '0')}`);
    mkdirSync(folder, { recursive: true });
    const base = await writeLayer(path.join(folder, 'golden.vhd'), null);
    for (let u = 0; u < 10; u++) {
      const child = await writeLayer(path.join(folder, `user${u}.vhd`), base);
      if (u < 9) await writeLayer(path.join(folder, `user${u}-snap.avhd`), child);
    }
    if ((g + 1) % 10 === 0) log(`  generating the maintain tree: ${disks}/1000 disks`);
  }
  const meta: TreeMeta = {
    generator: GEN_VERSION.tree, root, disks, folders: 50, dataBytes, fileBytes,
    generatedAt: new Date().toISOString(), generateSeconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(metaFile, JSON.stringify(meta, null, 2) + '\n');
  return meta;
}
