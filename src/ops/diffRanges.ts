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
import { dataSpans, spanRuns } from '../plan/viewSpans.js';
import { layerHoldings } from '../chain/holdings.js';
import { RangeSetBuilder, type RangeSet } from '../guest/ranges.js';
import type { TaskRunner } from '../parallel/pool.js';
import type { DiffResult, DiffTask } from '../plan/tasks.js';
import { noopProgress, type ProgressSink } from '../progress.js';

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
  const spans = dataSpans(own, 0, size / SECTOR);
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
      const runs = spanRuns(ra, rb, nA, ids, s, n);
      if (runs.reads === 0) {
        progress.advance(weight * SECTOR);
        continue;
      }
      compared += runs.reads * SECTOR;
      const base = s * SECTOR;
      const task: DiffTask = { kind: 'diff', sectors: n, files, a: runs.a, b: runs.b, maxRanges: n };
      const p: Promise<void> = runner.run<DiffResult>(task).then((r) => {
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
