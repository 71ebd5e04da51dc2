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
import type { DiffResult, DiffTask } from '../plan/tasks.js';
import { VhdToolError } from '../errors.js';
import { assertUnchanged, resolveBase, MAX_UNIT_SECTORS, type OpBase } from './common.js';
import { createRunner, defaultThreads } from '../parallel/pool.js';
import { compareRunnerOptions, MAX_QUEUED_PER_WORKER } from './compareThreads.js';

/**
 * `threads` counts the threads that compare, the main thread included: the
 * main thread would otherwise only wait, so it takes a share of the tasks and
 * compare starts `threads - 1` worker threads (none for 0 or 1). With
 * `runner`, the main thread joins that runner's workers.
 */
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

/**
 * While the main thread compares a task of its own it cannot hand out more,
 * so each worker holds a queue: about this many bytes of marked units, and
 * at most MAX_QUEUED_PER_WORKER tasks.
 */
const QUEUED_BYTES_PER_WORKER = 128 * 1024 * 1024;
/** Tasks finished out of order are held until the ones before them finish: at most this many. */
const MAX_AHEAD = 64;

interface SpanTask {
  /** Byte offset of the span on the disk. */
  start: number;
  /** Bytes of marked units in the span (the progress measure). */
  bytes: number;
  /** Null when the span resolves to zeros on both sides. */
  task: DiffTask | null;
}

/**
 * One task per 64 MiB span that holds a marked unit, in disk order. The span
 * is resolved whole: units where no layer holds data resolve to zeros on
 * both sides, which the kernel skips without reading.
 */
function* spanTasks(marked: Array<[number, number]>, size: number, ra: ChainResolver, rb: ChainResolver,
  files: string[], nA: number, maxRanges: number): Generator<SpanTask> {
  const unitSectors = MAX_UNIT_SECTORS;
  const unitBytes = unitSectors * SECTOR;
  let k = 0;
  while (k < marked.length) {
    const span = Math.floor(marked[k][0] / TASK_UNITS);
    const spanEnd = (span + 1) * TASK_UNITS;
    let bytes = 0;
    while (k < marked.length && marked[k][0] < spanEnd) {
      const e = Math.min(marked[k][1], spanEnd);
      bytes += Math.min(e * unitBytes, size) - marked[k][0] * unitBytes;
      if (marked[k][1] > spanEnd) { marked[k][0] = spanEnd; break; }
      k++;
    }
    const s = span * TASK_UNITS * unitSectors;
    const n = Math.min(TASK_UNITS * unitSectors, size / SECTOR - s);
    const pa = ra.resolveRange(0, s, n);
    const pb = rb.resolveRange(0, s, n);
    const zeros = pa.every((p) => p.layer < 0) && pb.every((p) => p.layer < 0);
    yield { start: s * SECTOR, bytes, task: zeros ? null : { kind: 'diff', sectors: n, files, a: runs(pa, s, 0), b: runs(pb, s, nA), maxRanges } };
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export async function compare(a: string, b: string, opts: CompareOptions = {}): Promise<CompareResult> {
  const t0 = Date.now();
  const runner = opts.runner ?? createRunner(compareRunnerOptions(opts.threads ?? defaultThreads()));
  const ctx = resolveBase({ ...opts, runner });
  runner.warm();
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
    let done = false;
    const addRange = (s: number, e: number) => {
      const last = ranges[ranges.length - 1];
      if (last && last[1] === s) last[1] = e;
      else if (ranges.length < maxRanges) ranges.push([s, e]);
      else done = true;
    };
    // Results come back out of order (the main thread and the workers each take tasks); they are
    // folded into the verdict in disk order, so `first` and `ranges` do not depend on who ran what.
    const results = new Map<number, { start: number; bytes: number; r: DiffResult }>();
    let folded = 0;
    const fold = () => {
      for (let x = results.get(folded); x; x = results.get(folded)) {
        results.delete(folded++);
        // Once the list is full, later tasks (already running) add nothing to it.
        if (x.r.first >= 0 && !done) {
          if (first === null) first = x.start + x.r.first;
          for (const [s, e] of x.r.ranges) addRange(x.start + s, x.start + e);
          // The task stopped early: ranges after it cannot be listed in order.
          if (x.r.full) done = true;
        }
        ctx.progress.advance(x.bytes);
      }
    };
    const total = marked.reduce((n, [s, e]) => n + Math.min(e * unitBytes, size) - s * unitBytes, 0);
    ctx.progress.start('comparing', total);
    const workers = ctx.runner.threads;
    const pending = new Set<Promise<void>>();
    let pendingBytes = 0;
    let failure: { e: unknown } | null = null;
    let issued = 0;
    let unissuedBytes = total;
    try {
      for (const t of spanTasks(marked, size, ra, rb, files, nA, maxRanges + 1)) {
        unissuedBytes -= t.bytes;
        if (!t.task) {
          ctx.progress.advance(t.bytes);
          continue;
        }
        // Let finished worker tasks in (and a signal, and the progress display).
        await yieldToEventLoop();
        if (failure || done) break;
        if (ctx.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
        const i = issued++;
        bytesCompared += t.bytes;
        // The workers hold their share of what is left; the main thread, which would otherwise
        // only wait, compares the rest. Near the end the share shrinks, so no one idles long.
        const share = Math.min(workers * QUEUED_BYTES_PER_WORKER, ((unissuedBytes + t.bytes) * workers) / (workers + 1));
        if (workers > 0 && pendingBytes < share && pending.size < workers * MAX_QUEUED_PER_WORKER) {
          pendingBytes += t.bytes;
          const p: Promise<void> = ctx.runner.run<DiffResult>(t.task).then(
            (r) => { results.set(i, { start: t.start, bytes: t.bytes, r }); fold(); },
            (e: unknown) => { failure ??= { e }; },
          ).finally(() => { pending.delete(p); pendingBytes -= t.bytes; });
          pending.add(p);
        } else {
          results.set(i, { start: t.start, bytes: t.bytes, r: ctx.runner.runHere<DiffResult>(t.task) });
          fold();
        }
        // Bounded memory: never run far ahead of the oldest unfinished task.
        while (issued - folded > MAX_AHEAD && pending.size) await Promise.race(pending);
      }
      // Interrupted while the last tasks ran: no verdict either.
      await Promise.all(pending);
      if (ctx.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
    } catch (e) {
      failure ??= { e };
    } finally {
      await Promise.all(pending);
      ctx.progress.done();
    }
    // The kernel reads the files by path: a verdict over files replaced or written meanwhile is
    // void, and a read that failed because a file changed (truncated, say) is reported as that.
    const inputs = [...ca.layersLeafFirst, ...cb.layersLeafFirst];
    if (failure) {
      const { e } = failure as { e: unknown };
      if (!(e instanceof VhdToolError && e.code === 'INTERRUPTED')) await assertUnchanged(ctx.fs, inputs, 'the comparison is void');
      throw e;
    }
    await assertUnchanged(ctx.fs, inputs, 'the comparison is void');
    const identical = ranges.length === 0 && (!opts.strict || sizeA === sizeB);
    return { a, b, identical, sizeA, sizeB, firstDifference: first, ranges, bytesCompared, durationMs: Date.now() - t0 };
  } finally {
    if (ca) await ca.close();
    if (cb) await cb.close();
    // A runner the caller gave stays open for the caller.
    if (!opts.runner) await runner.close();
  }
}
