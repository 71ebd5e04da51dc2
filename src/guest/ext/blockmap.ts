/**
 * A file's block map: which physical blocks hold which logical blocks.
 * Two on-disk forms, walked in logical order into one sink:
 *
 * - the extent tree (ext4): a 12-byte header (magic 0xf30a, entries, max,
 *   depth) then index entries (logical block, child node) or leaves (logical
 *   block, length, start; a length over 32768 marks an uninitialised extent:
 *   allocated, reads as zeros). The root lives in i_block; depth is at most 5.
 * - the indirect map (ext2/3): 12 direct pointers, then a single, a double
 *   and a triple indirect block; a zero pointer is a hole.
 *
 * Every node is checked (magic, counts, depth, order) and every pointer
 * against the file system's size; a node already claimed (by this file or
 * another) is refused, so a loop or a shared subtree costs one read, never
 * an endless or exponential walk.
 */
import type { BlockDevice } from './blockio.js';

export const EXTENT_MAGIC = 0xf30a;
export const MAX_EXTENT_DEPTH = 5;
/** Logical block numbers are 32-bit. */
const MAX_LOGICAL = 2 ** 32;
const UNINIT_LEN = 32768;

export interface MapSink {
  /** `count` blocks from logical block `logical` lie at physical block `physical`; `uninit`: allocated, read as zeros. */
  run(logical: number, physical: number, count: number, uninit: boolean): void;
  /** A block of the map itself (extent node, indirect block). */
  tree(block: number): void;
  /** A problem in the map; the part concerned is skipped, the rest still walked. */
  bad(message: string): void;
}

export interface MapWalk {
  dev: BlockDevice;
  /** Claims a map block; false when it was already claimed (a loop or a block shared with another file). */
  claim(block: number): boolean;
}

/** True when [block, block + count) can hold data: inside the file system and not block 0. */
function validRun(dev: BlockDevice, block: number, count: number): boolean {
  return block >= 1 && count >= 1 && block + count <= dev.blocksCount;
}

interface Header {
  entries: number;
  max: number;
  depth: number;
}

function readHeader(b: Uint8Array): Header | string {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const magic = dv.getUint16(0, true);
  if (magic !== EXTENT_MAGIC) return `bad extent header magic 0x${magic.toString(16)}`;
  const h = { entries: dv.getUint16(2, true), max: dv.getUint16(4, true), depth: dv.getUint16(6, true) };
  const room = Math.floor((b.length - 12) / 12);
  if (h.max > room) return `extent node claims room for ${h.max} entries in ${b.length} bytes`;
  if (h.entries > h.max) return `extent node has ${h.entries} entries but room for ${h.max}`;
  return h;
}

/**
 * Walks the extent tree whose root is `root` (i_block). A tree of depth 0
 * (up to four extents in the inode: most files) is walked at once and
 * nothing is returned; a deeper one returns the promise of its walk.
 */
export function walkExtents(w: MapWalk, root: Uint8Array, sink: MapSink): void | Promise<void> {
  const h = readHeader(root);
  if (typeof h === 'string') { sink.bad(h); return; }
  if (h.depth > MAX_EXTENT_DEPTH) { sink.bad(`extent tree depth ${h.depth} exceeds ${MAX_EXTENT_DEPTH}`); return; }
  const state = { next: 0 };
  if (h.depth === 0) { walkLeaf(w, root, h, sink, state); return; }
  return walkNode(w, root, h, sink, state);
}

function walkLeaf(w: MapWalk, b: Uint8Array, h: Header, sink: MapSink, state: { next: number }): void {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  for (let k = 0; k < h.entries; k++) {
    const at = 12 + 12 * k;
    const logical = dv.getUint32(at, true);
    const raw = dv.getUint16(at + 4, true);
    const physical = dv.getUint16(at + 6, true) * 2 ** 32 + dv.getUint32(at + 8, true);
    const uninit = raw > UNINIT_LEN;
    const len = uninit ? raw - UNINIT_LEN : raw;
    if (len === 0) { sink.bad(`empty extent at logical block ${logical}`); continue; }
    if (logical < state.next || logical + len > MAX_LOGICAL) {
      sink.bad(`extent at logical block ${logical} (${len} blocks) is out of order or overlaps the previous one`);
      continue;
    }
    if (!validRun(w.dev, physical, len)) {
      sink.bad(`extent at logical block ${logical} points to blocks ${physical}..${physical + len - 1}, outside the file system`);
      continue;
    }
    state.next = logical + len;
    sink.run(logical, physical, len, uninit);
  }
}

async function walkNode(w: MapWalk, b: Uint8Array, h: Header, sink: MapSink, state: { next: number }): Promise<void> {
  if (h.depth === 0) { walkLeaf(w, b, h, sink, state); return; }
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  let prev = -1;
  for (let k = 0; k < h.entries; k++) {
    const at = 12 + 12 * k;
    const logical = dv.getUint32(at, true);
    const child = dv.getUint16(at + 8, true) * 2 ** 32 + dv.getUint32(at + 4, true);
    if (logical <= prev && k > 0) { sink.bad(`extent index at logical block ${logical} is out of order`); continue; }
    prev = logical;
    if (!validRun(w.dev, child, 1)) { sink.bad(`extent index points to block ${child}, outside the file system`); continue; }
    if (!w.claim(child)) { sink.bad(`extent node block ${child} is reached twice (a loop, or shared with another file)`); continue; }
    sink.tree(child);
    const cb = await w.dev.read(child, 1, `extent node at block ${child}`);
    const ch = readHeader(cb);
    if (typeof ch === 'string') { sink.bad(`${ch} in block ${child}`); continue; }
    if (ch.depth !== h.depth - 1) { sink.bad(`extent node at block ${child} has depth ${ch.depth}, expected ${h.depth - 1}`); continue; }
    await walkNode(w, cb, ch, sink, state);
  }
}

/**
 * Walks the indirect block map in `iblock` (15 little-endian pointers): at
 * once when it has direct pointers only, else through the promise returned.
 */
export function walkIndirect(w: MapWalk, iblock: Uint8Array, sink: MapSink): void | Promise<void> {
  const dv = new DataView(iblock.buffer, iblock.byteOffset, 60);
  const merge = new RunMerger(sink);
  for (let k = 0; k < 12; k++) merge.add(w, k, dv.getUint32(4 * k, true));
  if (dv.getUint32(48, true) === 0 && dv.getUint32(52, true) === 0 && dv.getUint32(56, true) === 0) {
    merge.flush();
    return;
  }
  return walkIndirectLevels(w, dv, merge, sink);
}

async function walkIndirectLevels(w: MapWalk, dv: DataView, merge: RunMerger, sink: MapSink): Promise<void> {
  const p = w.dev.blockSize / 4;
  let base = 12;
  for (let level = 1; level <= 3; level++) {
    await walkIndirectBlock(w, dv.getUint32(4 * (11 + level), true), level, base, merge, sink);
    base += p ** level;
    if (base >= MAX_LOGICAL) break;
  }
  merge.flush();
}

async function walkIndirectBlock(w: MapWalk, ptr: number, level: number, base: number, merge: RunMerger, sink: MapSink): Promise<void> {
  if (ptr === 0 || base >= MAX_LOGICAL) return;
  if (!validRun(w.dev, ptr, 1)) { sink.bad(`indirect block pointer ${ptr} (logical block ${base}) lies outside the file system`); return; }
  if (!w.claim(ptr)) { sink.bad(`indirect block ${ptr} is reached twice (a loop, or shared with another file)`); return; }
  sink.tree(ptr);
  const b = await w.dev.read(ptr, 1, `indirect block ${ptr}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  const p = b.length / 4;
  const span = p ** (level - 1);
  for (let k = 0; k < p; k++) {
    const child = dv.getUint32(4 * k, true);
    if (child === 0) continue;
    const logical = base + k * span;
    if (logical >= MAX_LOGICAL) break;
    if (level === 1) merge.add(w, logical, child);
    else await walkIndirectBlock(w, child, level - 1, logical, merge, sink);
  }
}

/** Joins block-by-block pointers into runs (logically and physically consecutive). */
class RunMerger {
  private logical = -1;
  private physical = 0;
  private count = 0;

  constructor(private readonly sink: MapSink) {}

  add(w: MapWalk, logical: number, physical: number): void {
    if (physical === 0) return;
    if (!validRun(w.dev, physical, 1)) {
      this.sink.bad(`block pointer ${physical} (logical block ${logical}) lies outside the file system`);
      return;
    }
    if (this.count > 0 && logical === this.logical + this.count && physical === this.physical + this.count) {
      this.count++;
      return;
    }
    this.flush();
    this.logical = logical;
    this.physical = physical;
    this.count = 1;
  }

  flush(): void {
    if (this.count > 0) this.sink.run(this.logical, this.physical, this.count, false);
    this.count = 0;
  }
}
