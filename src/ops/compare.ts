/**
 * `compare A B`: do two disks (each resolved through its own parents) show
 * the guest the same bytes? Like `qemu-img compare`: a size difference is
 * fine when the extra area reads zero, unless `strict`.
 *
 * Only units where some layer of either chain holds data are read; the rest
 * are zeros on both sides.
 */
import { SECTOR } from '../format/index.js';
import { openChain } from '../chain/openChain.js';
import { ChainResolver, type Piece } from '../chain/resolve.js';
import type { Chain } from '../chain/chain.js';
import type { DiffResult } from '../plan/tasks.js';
import { assertUnchanged, resolveBase, MAX_UNIT_SECTORS, type OpBase } from './common.js';

export interface CompareOptions extends OpBase {
  parentA?: string;
  parentB?: string;
  /** Sizes must be equal too. */
  strict?: boolean;
  /** Stop after this many differing ranges (default 16). */
  maxRanges?: number;
}

export interface CompareResult {
  a: string;
  b: string;
  identical: boolean;
  sizeA: number;
  sizeB: number;
  /** Byte offset of the first difference, or null. */
  firstDifference: number | null;
  /** Differing byte ranges [start, end), sector granular, in order (at most maxRanges). */
  ranges: Array<[number, number]>;
  /** Bytes actually read and compared (units where either side holds data). */
  bytesCompared: number;
  durationMs: number;
}

/**
 * Ranges [start, end) of unit indices where a layer of the chain holds data.
 * Ranges, not one mark per unit: a header may claim petabytes (2^21 BAT
 * entries of 2 GiB), and memory and time must follow what the files hold.
 */
function unitRanges(chain: Chain, unitBytes: number, units: number, out: Array<[number, number]>): void {
  for (const l of chain.layersLeafFirst) {
    const m = l.meta;
    if (m.type === 'fixed') {
      out.push([0, Math.min(units, Math.ceil(m.virtualSize / unitBytes))]);
      continue;
    }
    const bs = m.blockSize!;
    for (const b of m.bat!.allocated()) {
      const s = Math.floor((b * bs) / unitBytes);
      const e = Math.min(units, Math.ceil(((b + 1) * bs) / unitBytes));
      if (s < e) out.push([s, e]);
    }
  }
}

/** Sorts and merges overlapping or touching ranges. */
function mergeRanges(r: Array<[number, number]>): Array<[number, number]> {
  r.sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [s, e] of r) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/**
 * Units per diff task (64 MiB). A diff needs no data slot (it compares through
 * two small windows), so a task can span many units, gaps included; large
 * tasks keep the per-task cost (resolving, dispatch, a thread round trip)
 * far below the workers' reading and comparing.
 */
const TASK_UNITS = 16;

function runs(pieces: Piece[], unitStart: number, fileBase: number): number[] {
  const r: number[] = [];
  for (const p of pieces) r.push(p.sector - unitStart, p.count, p.layer < 0 ? -1 : fileBase + p.layer, p.fileOffset);
  return r;
}

export async function compare(a: string, b: string, opts: CompareOptions = {}): Promise<CompareResult> {
  const t0 = Date.now();
  const ctx = resolveBase(opts, MAX_UNIT_SECTORS * SECTOR);
  ctx.runner.warm();
  let ca: Chain | null = null;
  let cb: Chain | null = null;
  try {
    ca = await openChain(ctx.fs, a, { parent: opts.parentA, mode: 'strict' });
    cb = await openChain(ctx.fs, b, { parent: opts.parentB, mode: 'strict' });
    const sizeA = ca.layersLeafFirst[0].meta.virtualSize;
    const sizeB = cb.layersLeafFirst[0].meta.virtualSize;
    const size = Math.max(sizeA, sizeB);
    const unitSectors = MAX_UNIT_SECTORS;
    const unitBytes = unitSectors * SECTOR;
    const units = Math.ceil(size / unitBytes);
    const found: Array<[number, number]> = [];
    unitRanges(ca, unitBytes, units, found);
    unitRanges(cb, unitBytes, units, found);
    const marked = mergeRanges(found);
    const ra = new ChainResolver(ca);
    const rb = new ChainResolver(cb);
    const files = [...ca.layersLeafFirst.map((l) => l.path), ...cb.layersLeafFirst.map((l) => l.path)];
    const nA = ca.layersLeafFirst.length;
    const maxRanges = opts.maxRanges ?? 16;
    const ranges: Array<[number, number]> = [];
    let first: number | null = null;
    let bytesCompared = 0;
    const queue: Array<{ start: number; bytes: number; p: Promise<DiffResult> }> = [];
    let done = false;
    const addRange = (s: number, e: number) => {
      const last = ranges[ranges.length - 1];
      if (last && last[1] === s) last[1] = e;
      else if (ranges.length < maxRanges) ranges.push([s, e]);
      else done = true;
    };
    const consume = async () => {
      const q = queue.shift()!;
      const r = await q.p;
      if (r.first >= 0) {
        if (first === null) first = q.start + r.first;
        for (const [s, e] of r.ranges) addRange(q.start + s, q.start + e);
      }
      ctx.progress.advance(q.bytes);
    };
    ctx.progress.start('comparing', Math.min(size, marked.reduce((n, [s, e]) => n + e - s, 0) * unitBytes));
    try {
      // One task per 64 MiB span that holds a marked unit: the span is resolved whole (units where
      // no layer holds data resolve to zeros on both sides, which the kernel skips without reading).
      let k = 0;
      while (k < marked.length && !done) {
        const span = Math.floor(marked[k][0] / TASK_UNITS);
        const spanEnd = (span + 1) * TASK_UNITS;
        let markedBytes = 0;
        while (k < marked.length && marked[k][0] < spanEnd) {
          const e = Math.min(marked[k][1], spanEnd);
          markedBytes += Math.min(e * unitBytes, size) - marked[k][0] * unitBytes;
          if (marked[k][1] > spanEnd) { marked[k][0] = spanEnd; break; }
          k++;
        }
        const s = span * TASK_UNITS * unitSectors;
        const n = Math.min(TASK_UNITS * unitSectors, size / SECTOR - s);
        const pa = ra.resolveRange(0, s, n);
        const pb = rb.resolveRange(0, s, n);
        if (pa.every((p) => p.layer < 0) && pb.every((p) => p.layer < 0)) {
          ctx.progress.advance(markedBytes);
          continue;
        }
        while (queue.length >= ctx.runner.slots) await consume();
        bytesCompared += markedBytes;
        const p = ctx.runner.run<DiffResult>({ kind: 'diff', sectors: n, files, a: runs(pa, s, 0), b: runs(pb, s, nA) });
        p.catch(() => undefined);
        queue.push({ start: s * SECTOR, bytes: markedBytes, p });
      }
      while (queue.length) await consume();
    } catch (e) {
      await Promise.allSettled(queue.map((q) => q.p));
      throw e;
    } finally {
      ctx.progress.done();
    }
    // The workers read the files by path: a verdict over files replaced or written meanwhile is void.
    await assertUnchanged(ctx.fs, [...ca.layersLeafFirst, ...cb.layersLeafFirst], 'the comparison is void');
    const identical = ranges.length === 0 && (!opts.strict || sizeA === sizeB);
    return { a, b, identical, sizeA, sizeB, firstDifference: first, ranges, bytesCompared, durationMs: Date.now() - t0 };
  } finally {
    if (ca) await ca.close();
    if (cb) await cb.close();
    await ctx.close();
  }
}
