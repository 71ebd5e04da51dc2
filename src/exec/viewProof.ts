/**
 * Comparing two guest views over a range of sectors with compare's kernel
 * (diff tasks in the worker threads), reading only where some layer holds
 * data: stretches that resolve to zeros on both sides are never read.
 *
 * Rebase uses it twice:
 *  - to prove its output: the new file over the new parent must show DISK's
 *    view. The sectors the new file holds itself (bit 1) were already proven
 *    equal to DISK's view while writing (ContentVerifier), so they are
 *    masked here (`maskLeafOfA`): what is compared is every other sector,
 *    i.e. where the output lets the new parent show through;
 *  - to check that a larger new parent reads zeros past DISK's end (`b` null:
 *    zeros).
 * Stretches both sides read from the same file (device and inode) at the same
 * offset are the same bytes and are not read.
 */
import { VhdToolError } from '../errors.js';
import { SECTOR } from '../format/index.js';
import type { Chain } from '../chain/chain.js';
import { ChainResolver } from '../chain/resolve.js';
import type { TaskRunner } from '../parallel/pool.js';
import type { DiffResult, DiffTask } from '../plan/tasks.js';
import { noopProgress, type ProgressSink } from '../progress.js';

/** Sectors per diff task (64 MiB, as compare). */
const SPAN_SECTORS = 131072;

export interface ViewCompareOptions {
  /** Sectors [first, end) to compare. */
  first: number;
  end: number;
  /** Skip the sectors chain `a`'s leaf supplies itself (proven otherwise). */
  maskLeafOfA?: boolean;
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Progress label (the phase starts and ends here). */
  label?: string;
}

export interface ViewCompareResult {
  /** Byte offset of a differing sector (the first in disk order among those found), or null. */
  difference: number | null;
  /** Bytes read and compared: the sectors, not masked, where either side reads a file rather than zeros. */
  bytesChecked: number;
}

interface Span {
  /** First sector and sector count of the task. */
  start: number;
  sectors: number;
  /** Sectors of the span some layer holds (the progress measure: where the reading is). */
  weight: number;
}

/**
 * The SPAN_SECTORS-aligned spans within [first, end) where some layer of the
 * chains holds data, ascending, each weighted by the sectors layers hold in it.
 */
function dataSpans(chains: Chain[], first: number, end: number): Span[] {
  const marks: Array<[number, number]> = [];
  for (const c of chains) {
    for (const l of c.layersLeafFirst) {
      const m = l.meta;
      if (m.type === 'fixed') {
        marks.push([0, m.virtualSize / SECTOR]);
        continue;
      }
      const spb = m.blockSize! / SECTOR;
      for (const b of m.bat!.allocated()) marks.push([b * spb, (b + 1) * spb]);
    }
  }
  marks.sort((x, y) => x[0] - y[0]);
  const out: Span[] = [];
  let covered = first;
  for (const [s0, e0] of marks) {
    // The part of this mark not yet counted, within [first, end).
    let s = Math.max(s0, covered);
    const e = Math.min(e0, end);
    covered = Math.max(covered, e);
    while (s < e) {
      const start = Math.max(first, Math.floor(s / SPAN_SECTORS) * SPAN_SECTORS);
      const spanEnd = Math.min(end, Math.floor(s / SPAN_SECTORS) * SPAN_SECTORS + SPAN_SECTORS);
      const take = Math.min(e, spanEnd) - s;
      const last = out[out.length - 1];
      if (last && last.start === start) last.weight += take;
      else out.push({ start, sectors: spanEnd - start, weight: take });
      s += take;
    }
  }
  return out;
}

/**
 * Replaces, in both runs lists, the stretches where both read the same file
 * (by `ids`, device and inode) at the same offset with zeros: the same bytes,
 * nothing to read. Both lists cover the same sectors in order.
 */
function withoutShared(a: number[], b: number[], ids: string[]): { a: number[]; b: number[] } {
  const oa: number[] = [];
  const ob: number[] = [];
  const push = (out: number[], at: number, count: number, f: number, off: number) => {
    const n = out.length;
    if (n && out[n - 2] < 0 && f < 0 && out[n - 4] + out[n - 3] === at) out[n - 3] += count;
    else out.push(at, count, f, off);
  };
  let i = 0;
  let j = 0;
  let s = Math.min(a[0] ?? 0, b[0] ?? 0);
  while (i < a.length && j < b.length) {
    const e = Math.min(a[i] + a[i + 1], b[j] + b[j + 1]);
    if (e > s) {
      const fa = a[i + 2];
      const fb = b[j + 2];
      const pa = fa < 0 ? 0 : a[i + 3] + (s - a[i]) * SECTOR;
      const pb = fb < 0 ? 0 : b[j + 3] + (s - b[j]) * SECTOR;
      const same = fa >= 0 && fb >= 0 && ids[fa] === ids[fb] && pa === pb;
      push(oa, s, e - s, same ? -1 : fa, same ? 0 : pa);
      push(ob, s, e - s, same ? -1 : fb, same ? 0 : pb);
      s = e;
    }
    if (a[i] + a[i + 1] <= s) i += 4;
    if (b[j] + b[j + 1] <= s) j += 4;
  }
  return { a: oa, b: ob };
}

/** Sectors of [0, n) where either runs list reads a file (not zeros): what the kernel reads. */
function dataSectors(a: number[], b: number[], n: number): number {
  let count = 0;
  let i = 0;
  let j = 0;
  let s = 0;
  while (s < n && i < a.length && j < b.length) {
    const e = Math.min(a[i] + a[i + 1], b[j] + b[j + 1], n);
    if (a[i + 2] >= 0 || b[j + 2] >= 0) count += e - s;
    s = e;
    if (a[i] + a[i + 1] <= s) i += 4;
    if (b[j] + b[j + 1] <= s) j += 4;
  }
  return count;
}

/** Builds the runs of one task over sectors [s, s+n): side a (masked where its leaf holds data) and side b over the same sectors. */
function taskRuns(ra: ChainResolver, rb: ChainResolver | null, nA: number, s: number, n: number, mask: boolean): { a: number[]; b: number[]; any: boolean } {
  const a: number[] = [];
  const b: number[] = [];
  let any = false;
  let pending = -1;
  const flushB = (upTo: number) => {
    if (pending < 0) return;
    if (rb) {
      for (const p of rb.resolveRange(0, pending, upTo - pending)) {
        b.push(p.sector - s, p.count, p.layer < 0 ? -1 : nA + p.layer, p.fileOffset);
        if (p.layer >= 0) any = true;
      }
    } else b.push(pending - s, upTo - pending, -1, 0);
    pending = -1;
  };
  for (const p of ra.resolveRange(0, s, n)) {
    if (mask && p.layer === 0) {
      flushB(p.sector);
      a.push(p.sector - s, p.count, -1, 0);
      b.push(p.sector - s, p.count, -1, 0);
      continue;
    }
    a.push(p.sector - s, p.count, p.layer < 0 ? -1 : p.layer, p.fileOffset);
    if (p.layer >= 0) any = true;
    if (pending < 0) pending = p.sector;
  }
  flushB(s + n);
  return { a, b, any };
}

/** Compares chain `a`'s view with chain `b`'s (zeros when null) over the sectors of `opts`. */
export async function compareViews(runner: TaskRunner, a: Chain, b: Chain | null, opts: ViewCompareOptions): Promise<ViewCompareResult> {
  const progress = opts.progress ?? noopProgress;
  const ra = new ChainResolver(a);
  const rb = b ? new ChainResolver(b) : null;
  const nA = a.layersLeafFirst.length;
  const layers = [...a.layersLeafFirst, ...(b ? b.layersLeafFirst : [])];
  const files = layers.map((l) => l.path);
  const ids = layers.map((l) => `${l.dev}:${l.ino}`);
  const spans = dataSpans(b ? [a, b] : [a], opts.first, opts.end);
  const total = spans.reduce((n, x) => n + x.weight * SECTOR, 0);
  const limit = Math.max(2, runner.threads * 2);
  const inflight: Array<Promise<void>> = [];
  let difference: number | null = null;
  let failure: unknown = null;
  let checked = 0;
  progress.start(opts.label ?? 'comparing', total);
  try {
    for (const { start: s, sectors: n, weight } of spans) {
      if (difference !== null || failure !== null) break;
      if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      const built = taskRuns(ra, rb, nA, s, n, opts.maskLeafOfA ?? false);
      const runs = built.any ? withoutShared(built.a, built.b, ids) : built;
      const reads = built.any ? dataSectors(runs.a, runs.b, n) : 0;
      if (reads === 0) {
        progress.advance(weight * SECTOR);
        continue;
      }
      checked += reads * SECTOR;
      const task: DiffTask = { kind: 'diff', sectors: n, files, a: runs.a, b: runs.b, maxRanges: 0 };
      const p = runner.run<DiffResult>(task).then((r) => {
        if (r.first >= 0) {
          const at = s * SECTOR + r.first;
          difference = difference === null ? at : Math.min(difference, at);
        }
        progress.advance(weight * SECTOR);
      }, (e: unknown) => { failure ??= e; });
      inflight.push(p);
      if (inflight.length >= limit) await inflight.shift();
    }
  } finally {
    await Promise.all(inflight);
    progress.done();
  }
  if (failure !== null) throw failure;
  if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
  return { difference, bytesChecked: checked };
}
