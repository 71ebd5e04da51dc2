/**
 * Where two guest views differ: every differing sector, as a RangeSet of
 * bytes, found with compare's kernel (diff tasks in the worker threads).
 *
 * What is never read:
 *  - stretches both views read from the same file (device and inode) at the
 *    same offset: the same bytes (a layer both chains share, as rebase's
 *    `skipShared`). With one disk against its own parent chain this leaves
 *    exactly the sectors the leaf holds: everywhere else both views read the
 *    parent's files;
 *  - spans where only layers both chains share hold data (the common tail of
 *    the two chains): they resolve to the same file and offset on both sides;
 *  - stretches that read zeros on both sides.
 * Sizes may differ: past a view's end it reads zeros.
 */
import { VhdToolError } from '../errors.js';
import { SECTOR } from '../format/index.js';
import type { Chain, Layer } from '../chain/chain.js';
import { ChainResolver } from '../chain/resolve.js';
import { layerHoldings } from '../chain/holdings.js';
import { RangeSetBuilder, type RangeSet } from '../guest/ranges.js';
import type { TaskRunner } from '../parallel/pool.js';
import type { DiffResult, DiffTask } from '../plan/tasks.js';
import { noopProgress, type ProgressSink } from '../progress.js';

/** Sectors per diff task (64 MiB, as compare). */
const SPAN_SECTORS = 131072;

export interface DiffRangesOptions {
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Progress label (the phase starts and ends here). */
  label?: string;
}

export interface DiffRanges {
  /** Differing bytes, sector granular, over [0, max(size A, size B)). */
  ranges: RangeSet;
  /** Bytes read and compared (stretches where either side reads a file that the other does not read at the same place). */
  bytesCompared: number;
  /** Layers at the base of both chains (the same files): never read. */
  sharedLayers: number;
}

const fileId = (l: Layer) => `${l.dev}:${l.ino}`;

/** How many layers, counted from the base, both chains share (the same files in the same order). */
export function sharedTail(a: Chain, b: Chain): number {
  const la = a.layersLeafFirst;
  const lb = b.layersLeafFirst;
  let n = 0;
  while (n < la.length && n < lb.length && fileId(la[la.length - 1 - n]) === fileId(lb[lb.length - 1 - n])) n++;
  return n;
}

/**
 * The SPAN_SECTORS-aligned spans where a layer outside the shared tail holds
 * data, ascending, each weighted by the sectors those layers hold in it
 * (the progress measure).
 */
function dataSpans(layers: Layer[], sectors: number): Array<{ start: number; sectors: number; weight: number }> {
  const marks: Array<[number, number]> = [];
  for (const l of layers) {
    const m = l.meta;
    if (m.type === 'fixed') {
      marks.push([0, m.virtualSize / SECTOR]);
      continue;
    }
    const spb = m.blockSize! / SECTOR;
    for (const b of m.bat!.allocated()) marks.push([b * spb, Math.min((b + 1) * spb, m.virtualSize / SECTOR)]);
  }
  marks.sort((x, y) => x[0] - y[0]);
  const out: Array<{ start: number; sectors: number; weight: number }> = [];
  let covered = 0;
  for (const [s0, e0] of marks) {
    let s = Math.max(s0, covered);
    const e = Math.min(e0, sectors);
    covered = Math.max(covered, e);
    while (s < e) {
      const start = Math.floor(s / SPAN_SECTORS) * SPAN_SECTORS;
      const spanEnd = Math.min(sectors, start + SPAN_SECTORS);
      const take = Math.min(e, spanEnd) - s;
      const last = out[out.length - 1];
      if (last && last.start === start) last.weight += take;
      else out.push({ start, sectors: spanEnd - start, weight: take });
      s += take;
    }
  }
  return out;
}

/** Appends a run [at, count, file, offset], extending the last one when it continues it. */
function pushRun(out: number[], at: number, count: number, f: number, off: number): void {
  const n = out.length;
  if (n && out[n - 2] === f && out[n - 4] + out[n - 3] === at && (f < 0 || out[n - 1] + out[n - 3] * SECTOR === off)) {
    out[n - 3] += count;
    return;
  }
  out.push(at, count, f, off);
}

/**
 * The kernel's runs for sectors [s, s+n) of both views, walked together; a
 * stretch both read from the same file at the same offset becomes zeros on
 * both sides (not read). Returns null when nothing is left to read.
 */
function spanTask(ra: ChainResolver, rb: ChainResolver, nA: number, ids: string[], files: string[], s: number, n: number): { task: DiffTask; reads: number } | null {
  const pa = ra.resolveRange(0, s, n);
  const pb = rb.resolveRange(0, s, n);
  const a: number[] = [];
  const b: number[] = [];
  let reads = 0;
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
    const same = fa >= 0 && fb >= 0 && ids[fa] === ids[fb] && offA === offB;
    pushRun(a, at - s, e - at, same ? -1 : fa, same ? 0 : offA);
    pushRun(b, at - s, e - at, same ? -1 : fb, same ? 0 : offB);
    if (!same && (fa >= 0 || fb >= 0)) reads += e - at;
    at = e;
    if (x.sector + x.count <= at) i++;
    if (y.sector + y.count <= at) j++;
  }
  if (reads === 0) return null;
  return { task: { kind: 'diff', sectors: n, files, a, b, maxRanges: n }, reads };
}

/**
 * Bytes of the sectors the layers the two chains do not share hold (their
 * bitmaps): about what differingRanges reads on each side.
 */
export function plannedBytes(a: Chain, b: Chain): number {
  const shared = sharedTail(a, b);
  const own = [...a.layersLeafFirst.slice(0, a.layersLeafFirst.length - shared), ...b.layersLeafFirst.slice(0, b.layersLeafFirst.length - shared)];
  return own.reduce((n, l) => n + layerHoldings(l).sectors.bytes, 0);
}

/** Every sector where chain `a`'s view and chain `b`'s differ. */
export async function differingRanges(runner: TaskRunner, a: Chain, b: Chain, opts: DiffRangesOptions = {}): Promise<DiffRanges> {
  const progress = opts.progress ?? noopProgress;
  const ra = new ChainResolver(a);
  const rb = new ChainResolver(b);
  const nA = a.layersLeafFirst.length;
  const layers = [...a.layersLeafFirst, ...b.layersLeafFirst];
  const files = layers.map((l) => l.path);
  const ids = layers.map(fileId);
  const shared = sharedTail(a, b);
  const own = [...a.layersLeafFirst.slice(0, nA - shared), ...b.layersLeafFirst.slice(0, b.layersLeafFirst.length - shared)];
  const size = Math.max(a.layersLeafFirst[0].meta.virtualSize, b.layersLeafFirst[0].meta.virtualSize);
  const spans = dataSpans(own, size / SECTOR);
  const total = spans.reduce((n, x) => n + x.weight * SECTOR, 0);
  const limit = Math.max(2, runner.threads * 2);
  const inflight = new Set<Promise<void>>();
  const found = new RangeSetBuilder();
  let failure: { e: unknown } | null = null;
  let compared = 0;
  progress.start(opts.label ?? 'finding differing sectors', total);
  try {
    for (const { start: s, sectors: n, weight } of spans) {
      if (failure) break;
      if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      const t = spanTask(ra, rb, nA, ids, files, s, n);
      if (!t) {
        progress.advance(weight * SECTOR);
        continue;
      }
      compared += t.reads * SECTOR;
      const base = s * SECTOR;
      const p: Promise<void> = runner.run<DiffResult>(t.task).then((r) => {
        for (const [x, y] of r.ranges) found.add(base + x, base + y);
        progress.advance(weight * SECTOR);
      }, (e: unknown) => { failure ??= { e }; }).finally(() => { inflight.delete(p); });
      inflight.add(p);
      if (inflight.size >= limit) await Promise.race(inflight);
    }
  } finally {
    await Promise.all(inflight);
    progress.done();
  }
  if (failure) throw (failure as { e: unknown }).e;
  if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
  return { ranges: found.build(), bytesCompared: compared, sharedLayers: shared };
}
