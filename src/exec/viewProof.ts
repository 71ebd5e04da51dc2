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
import { dataSpans, spanRuns } from '../plan/viewSpans.js';
import type { TaskRunner } from '../parallel/pool.js';
import type { DiffResult, DiffTask } from '../plan/tasks.js';
import { noopProgress, type ProgressSink } from '../progress.js';

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

/** Compares chain `a`'s view with chain `b`'s (zeros when null) over the sectors of `opts`. */
export async function compareViews(runner: TaskRunner, a: Chain, b: Chain | null, opts: ViewCompareOptions): Promise<ViewCompareResult> {
  const progress = opts.progress ?? noopProgress;
  const ra = new ChainResolver(a);
  const rb = b ? new ChainResolver(b) : null;
  const nA = a.layersLeafFirst.length;
  const layers = [...a.layersLeafFirst, ...(b ? b.layersLeafFirst : [])];
  const files = layers.map((l) => l.path);
  const ids = layers.map((l) => `${l.dev}:${l.ino}`);
  const spans = dataSpans(layers, opts.first, opts.end);
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
