/**
 * The compare kernel: pure CPU work plus positional reads on read-only file
 * descriptors the kernel opens itself. Runs inside a piscina worker, or inline
 * on the main thread (--threads 0); both use this same code.
 *
 * Reads (workers/reader.ts) go into a slot of the shared, page-aligned arena
 * (source data) or into a private aligned buffer (reference data). Comparing is done
 * with native range compares; zero tests first look at one 32-bit word.
 */
import { createRequire } from 'node:module';
import type {
  CompareResult, CompareTask, DiffResult, DiffTask, DigestTask, UnsetZeroResult, UnsetZeroTask, WorkerTask,
} from '../src/plan/tasks.js';
import { TaskReader } from './reader.js';

const SECTOR = 512;
/**
 * node:crypto, loaded on first use: only digest tasks need it, and loading it
 * costs every thread several milliseconds of start-up (a compare has none).
 */
const requireBuiltin = createRequire(import.meta.url);
let crypto: typeof import('node:crypto') | null = null;
const createHash = (algorithm: string) => (crypto ??= requireBuiltin('node:crypto') as typeof import('node:crypto')).createHash(algorithm);

export { TRUNCATED_MARK } from './reader.js';
const ZERO_SECTOR = Buffer.alloc(SECTOR);
const ZERO_CHUNK = Buffer.alloc(1024 * 1024);
/**
 * Bytes read and compared at a time. Both sides (2 MiB) stay in the CPU's
 * cache; 1 MiB rather than 256 KiB means a quarter of the calls, which also
 * keeps the optimizing compiler from spending a 2-core machine's CPU on the
 * read and compare wrappers in every thread (measured: 40 ms less CPU per
 * compare of the benchmark chain, the same throughput).
 */
const WINDOW = 1024 * 1024;

/**
 * Zeroes [start, end) of `buf` by copying from a zero buffer: on shared
 * (WebAssembly) memory Buffer.fill runs at ~1.5 GB/s, a copy at ~20 GB/s.
 */
export function zeroFill(buf: Buffer, start: number, end: number): void {
  for (let at = start; at < end; at += ZERO_CHUNK.length) ZERO_CHUNK.copy(buf, at, 0, Math.min(ZERO_CHUNK.length, end - at));
}
/** Largest read of the bitmap-invariant check (4 MiB). */
const UNSET_CHUNK = 4 * 1024 * 1024;

export class Kernel {
  private readonly reader = new TaskReader();
  private scratch: Buffer;
  private readonly windowA = alignedBuffer(WINDOW);
  private readonly windowB = alignedBuffer(WINDOW);
  private readonly arena: Buffer;

  constructor(arena: SharedArrayBuffer, private readonly slotBytes: number) {
    this.arena = Buffer.from(arena);
    this.scratch = alignedBuffer(slotBytes);
  }

  /** Runs one task. Files are opened read-only for the task and closed after it. */
  run(task: WorkerTask): CompareResult | UnsetZeroResult | string | DiffResult {
    try {
      switch (task.kind) {
        case 'compare': return this.compare(task);
        case 'unsetZero': return this.unsetZero(task);
        case 'digest': return this.digest(task);
        case 'ping': return '';
        case 'diff': return this.diff(task);
      }
    } finally {
      this.closeAll();
    }
  }

  closeAll(): void {
    this.reader.closeAll();
  }

  private readInto(path: string, buf: Buffer, off: number, len: number, pos: number): void {
    this.reader.read(path, buf, off, len, pos);
  }

  /**
   * Fills `buf[0 .. winEnd-winStart)` with the part of the runs that falls in
   * the unit-relative byte window [winStart, winEnd).
   */
  private fillWindow(buf: Buffer, files: string[], runs: number[], winStart: number, winEnd: number): void {
    for (let i = 0; i < runs.length; i += 4) {
      const at = runs[i] * SECTOR;
      const end = at + runs[i + 1] * SECTOR;
      if (end <= winStart || at >= winEnd) continue;
      const from = Math.max(at, winStart);
      const to = Math.min(end, winEnd);
      const f = runs[i + 2];
      if (f < 0) zeroFill(buf, from - winStart, to - winStart);
      else this.readInto(files[f], buf, from - winStart, to - from, runs[i + 3] + (from - at));
    }
  }

  private slot(i: number): Buffer {
    return this.arena.subarray(i * this.slotBytes, (i + 1) * this.slotBytes);
  }

  compare(t: CompareTask): CompareResult {
    const src = this.slot(t.slot);
    // Sectors outside the source runs are not part of the output: keep them zero.
    zeroGaps(src, t.src, t.sectors);
    const ref = t.ref ? this.windowB : null;
    const drop = new Uint8Array(Math.ceil(t.sectors / 8));
    const zero = t.classify ? new Uint8Array(drop.length) : null;
    const c = { kept: 0, same: 0, zz: 0 };
    const len = t.sectors * SECTOR;
    // Window by window, so the data just read is still in the CPU cache when compared:
    // the source goes straight into its slot (it may be written), the reference into a small buffer.
    for (let w = 0; w < len; w += WINDOW) {
      const n = Math.min(WINDOW, len - w);
      this.fillWindow(src.subarray(w, w + n), t.files, t.src, w, w + n);
      if (ref && t.ref) this.fillWindow(ref, t.files, t.ref, w, w + n);
      for (let i = 0; i < t.src.length; i += 4) {
        const start = Math.max(t.src[i] * SECTOR, w);
        const end = Math.min((t.src[i] + t.src[i + 1]) * SECTOR, w + n);
        if (end <= start) continue;
        compareSegment(src, ref, start, end, w, t.src[i + 2] < 0, drop, c, zero);
      }
    }
    // Dropped sectors must hold zeros in the output (spec); only written units need it.
    if (c.kept > 0 && t.write) zeroDropped(src, drop, t.src);
    const r: CompareResult = { drop, kept: c.kept, sameAsParent: c.same, zeroOverZero: c.zz };
    if (zero) r.zero = zero;
    return r;
  }

  unsetZero(t: UnsetZeroTask): UnsetZeroResult {
    // Runs of clear bits are read in chunks of at most UNSET_CHUNK bytes, so memory stays bounded
    // whatever the block size (a 2 GiB block must not mean a 2 GiB buffer).
    const want = Math.min(t.sectors * SECTOR, UNSET_CHUNK);
    const buf = this.scratch.length >= want ? this.scratch : (this.scratch = alignedBuffer(want));
    const chunkSectors = Math.floor(buf.length / SECTOR);
    const dirty: number[] = [];
    let dirtyCount = 0;
    // Read only the runs of clear bits.
    let s = 0;
    while (s < t.sectors) {
      const set = (t.bitmap[s >>> 3] & (0x80 >>> (s & 7))) !== 0;
      let e = s + 1;
      while (e < t.sectors && ((t.bitmap[e >>> 3] & (0x80 >>> (e & 7))) !== 0) === set) e++;
      for (let c = s; !set && c < e; c += chunkSectors) {
        const n = Math.min(chunkSectors, e - c);
        this.readInto(t.file, buf, 0, n * SECTOR, t.dataOffset + c * SECTOR);
        if (!isZeroRange(buf, 0, n * SECTOR)) {
          for (let k = c; k < c + n; k++) {
            if (!isZeroSector(buf, (k - c) * SECTOR)) {
              dirtyCount++;
              if (dirty.length < 16) dirty.push(k);
            }
          }
        }
      }
      s = e;
    }
    return { dirty, dirtyCount };
  }

  digest(t: DigestTask): string {
    const h = createHash('sha1');
    let done = 0;
    const buf = this.scratch;
    while (done < t.length) {
      const n = Math.min(buf.length, t.length - done);
      this.readInto(t.file, buf, 0, n, t.offset + done);
      h.update(buf.subarray(0, n));
      done += n;
    }
    return h.digest('hex');
  }

  diff(t: DiffTask): DiffResult {
    // Walk both runs lists together. Each stretch where both sides stay in one run is compared
    // window by window through two buffers that stay in the CPU cache. A stretch that is
    // zeros on both sides is not touched; one that is zeros on one side only is read once and
    // tested for zeros, never filled and compared.
    const out: DiffResult = { first: -1, ranges: [], full: false };
    const { a: ra, b: rb } = t;
    let i = 0;
    let j = 0;
    let s = 0;
    while (i < ra.length && j < rb.length) {
      const endA = ra[i] + ra[i + 1];
      const endB = rb[j] + rb[j + 1];
      const e = Math.min(endA, endB, t.sectors);
      if (e > s) {
        const fa = ra[i + 2];
        const fb = rb[j + 2];
        if ((fa >= 0 || fb >= 0) && !this.diffStretch(t.files, fa, ra[i + 3] + (s - ra[i]) * SECTOR, fb,
          rb[j + 3] + (s - rb[j]) * SECTOR, s * SECTOR, (e - s) * SECTOR, t.maxRanges, out)) {
          out.full = true;
          return out;
        }
        s = e;
      }
      if (endA <= s) i += 4;
      if (endB <= s) j += 4;
    }
    return out;
  }

  /**
   * Compares `len` bytes of file `fa` at `posA` (zeros when fa < 0) with file
   * `fb` at `posB`; `at` is the stretch's byte offset in the unit. Returns
   * false at a difference that would start range maxRanges + 1 (the
   * caller marks the result full).
   */
  private diffStretch(files: string[], fa: number, posA: number, fb: number, posB: number, at: number, len: number,
    maxRanges: number, out: DiffResult): boolean {
    const a = this.windowA;
    const b = this.windowB;
    for (let w = 0; w < len; w += WINDOW) {
      const n = Math.min(WINDOW, len - w);
      if (fa >= 0) this.readInto(files[fa], a, 0, n, posA + w);
      if (fb >= 0) this.readInto(files[fb], b, 0, n, posB + w);
      // One side zeros: test the other for zeros.
      const one = fa < 0 ? b : a;
      if (fa >= 0 && fb >= 0 ? a.compare(b, 0, n, 0, n) === 0 : isZeroRange(one, 0, n)) continue;
      for (let o = 0; o < n; o += SECTOR) {
        const same = fa >= 0 && fb >= 0 ? a.compare(b, o, o + SECTOR, o, o + SECTOR) === 0 : isZeroSector(one, o);
        if (same) continue;
        const u = at + w + o;
        if (out.first < 0) {
          for (let k = o; k < o + SECTOR; k++) {
            const x = fa >= 0 ? a[k] : 0;
            const y = fb >= 0 ? b[k] : 0;
            if (x !== y) { out.first = u + k - o; break; }
          }
        }
        const last = out.ranges[out.ranges.length - 1];
        if (last && last[1] === u) last[1] = u + SECTOR;
        else if (out.ranges.length < maxRanges) out.ranges.push([u, u + SECTOR]);
        else return false;
      }
    }
    return true;
  }
}

/**
 * Classifies source bytes [start, end) of the slot (the reference at the same
 * unit offset minus `w` in `ref`, or zeros when there is no reference).
 * `zero`, when given, marks the sectors dropped as zero over zero.
 */
function compareSegment(src: Buffer, ref: Buffer | null, start: number, end: number, w: number, zeroRun: boolean,
  drop: Uint8Array, c: { kept: number; same: number; zz: number }, zero: Uint8Array | null): void {
  const first = start / SECTOR;
  const count = (end - start) / SECTOR;
  // Whole-segment fast path: equal to the reference (or zero) everywhere.
  if (ref ? src.compare(ref, start - w, end - w, start, end) === 0 : isZeroRange(src, start, end)) {
    setRun(drop, first, count);
    if (zeroRun || !ref || isZeroRange(src, start, end)) {
      c.zz += count;
      if (zero) setRun(zero, first, count);
      return;
    }
    for (let s = first, o = start; o < end; s++, o += SECTOR) {
      if (!isZeroSector(src, o)) { c.same++; continue; }
      c.zz++;
      if (zero) zero[s >>> 3] |= 0x80 >>> (s & 7);
    }
    return;
  }
  for (let s = first, o = start; o < end; s++, o += SECTOR) {
    const equal = ref ? src.compare(ref, o - w, o - w + SECTOR, o, o + SECTOR) === 0 : isZeroSector(src, o);
    if (!equal) { c.kept++; continue; }
    drop[s >>> 3] |= 0x80 >>> (s & 7);
    if (ref && !isZeroSector(src, o)) { c.same++; continue; }
    c.zz++;
    if (zero) zero[s >>> 3] |= 0x80 >>> (s & 7);
  }
}

function setRun(bm: Uint8Array, first: number, count: number): void {
  for (let s = first; s < first + count; s++) bm[s >>> 3] |= 0x80 >>> (s & 7);
}

/** Zeroes, within the source runs, every sector marked in `drop`, one fill per run of drops. */
function zeroDropped(buf: Buffer, drop: Uint8Array, runs: number[]): void {
  for (let i = 0; i < runs.length; i += 4) {
    const end = runs[i] + runs[i + 1];
    let s = runs[i];
    while (s < end) {
      if ((drop[s >>> 3] & (0x80 >>> (s & 7))) === 0) { s++; continue; }
      let e = s + 1;
      while (e < end && (drop[e >>> 3] & (0x80 >>> (e & 7))) !== 0) e++;
      zeroFill(buf, s * SECTOR, e * SECTOR);
      s = e;
    }
  }
}

/** Zero-fills the parts of the unit not covered by runs. */
function zeroGaps(buf: Buffer, runs: number[], sectors: number): void {
  let pos = 0;
  for (let i = 0; i < runs.length; i += 4) {
    const first = runs[i];
    if (first > pos) zeroFill(buf, pos * SECTOR, first * SECTOR);
    pos = first + runs[i + 1];
  }
  if (pos < sectors) zeroFill(buf, pos * SECTOR, sectors * SECTOR);
}

/** Is the 512-byte sector at `o` all zero? One word first, then a native compare. */
export function isZeroSector(b: Buffer, o: number): boolean {
  if (b[o] !== 0 || b[o + 511] !== 0) return false;
  return b.compare(ZERO_SECTOR, 0, SECTOR, o, o + SECTOR) === 0;
}

/** Is [start, end) all zero? Self-shift compare: b[start]==0 and b[start+1..] == b[start..end-1]. */
export function isZeroRange(b: Buffer, start: number, end: number): boolean {
  if (end <= start) return true;
  if (b[start] !== 0 || b[end - 1] !== 0) return false;
  return b.compare(b, start + 1, end, start, end - 1) === 0;
}

/** A page-aligned buffer (WebAssembly memory is page aligned), for fast page-cache copies. */
export function alignedBuffer(bytes: number): Buffer {
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  const WA = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared?: boolean }) => { buffer: ArrayBuffer } } }).WebAssembly;
  const mem = new WA.Memory({ initial: pages, maximum: pages });
  return Buffer.from(mem.buffer, 0, bytes);
}
