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

/** Appends a run [at, count, file, offset] to `out`, extending the last one when it continues it. */
function pushRun(out: number[], at: number, count: number, f: number, off: number): void {
  const n = out.length;
  if (n && out[n - 2] === f && out[n - 4] + out[n - 3] === at && (f < 0 || out[n - 1] + out[n - 3] * SECTOR === off)) {
    out[n - 3] += count;
    return;
  }
  out.push(at, count, f, off);
}

interface SpanRuns {
  a: number[];
  b: number[];
  /** Sectors the kernel will read (either side reads a file). */
  reads: number;
}

/**
 * The runs of one task over sectors [s, s+n): both views resolved once and
 * walked together. Zeros replace a stretch on both sides where it is masked
 * (chain a's leaf supplies it), and where both sides read the same file
 * (device and inode, `ids`) at the same offset: the same bytes.
 */
function spanRuns(ra: ChainResolver, rb: ChainResolver | null, nA: number, ids: string[], s: number, n: number, mask: boolean): SpanRuns {
  const pa = ra.resolveRange(0, s, n);
  const pb = rb ? rb.resolveRange(0, s, n) : [{ sector: s, count: n, layer: -1, fileOffset: 0 }];
  const out: SpanRuns = { a: [], b: [], reads: 0 };
  let i = 0;
  let j = 0;
  let at = s;
  while (i < pa.length && j < pb.length) {
    const x = pa[i];
    const y = pb[j];
    const e = Math.min(x.sector + x.count, y.sector + y.count);
    const fa = x.layer < 0 ? -1 : x.layer;
    const fb = y.layer < 0 ? -1 : nA + y.layer;
    const offA = fa < 0 ? 0 : x.fileOffset + (at - x.sector) * SECTOR;
    const offB = fb < 0 ? 0 : y.fileOffset + (at - y.sector) * SECTOR;
    const skip = (mask && x.layer === 0) || (fa >= 0 && fb >= 0 && ids[fa] === ids[fb] && offA === offB);
    pushRun(out.a, at - s, e - at, skip ? -1 : fa, skip ? 0 : offA);
    pushRun(out.b, at - s, e - at, skip ? -1 : fb, skip ? 0 : offB);
    if (!skip && (fa >= 0 || fb >= 0)) out.reads += e - at;
    at = e;
    if (x.sector + x.count <= at) i++;
    if (y.sector + y.count <= at) j++;
  }
  return out;
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
      const runs = spanRuns(ra, rb, nA, ids, s, n, opts.maskLeafOfA ?? false);
      if (runs.reads === 0) {
        progress.advance(weight * SECTOR);
        continue;
      }
      checked += runs.reads * SECTOR;
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
