/**
 * Planning the comparison of two guest views with compare's kernel (diff
 * tasks): the 64 MiB spans where some layer holds data, and each span's runs
 * on both sides, resolved once and walked together. Used by diff's
 * differing sectors (ops/diffRanges.ts) and rebase's proof (exec/viewProof.ts).
 */
import { SECTOR } from '../format/index.js';
import type { Layer } from '../chain/chain.js';
import type { ChainResolver } from '../chain/resolve.js';

/** Sectors per diff task (64 MiB, as compare). */
export const SPAN_SECTORS = 131072;

export interface ViewSpan {
  /** First sector and sector count of the task. */
  start: number;
  sectors: number;
  /** Sectors of the span the layers hold (the progress measure: where the reading is). */
  weight: number;
}

/**
 * The SPAN_SECTORS-aligned spans within sectors [first, end) where one of
 * `layers` holds data, ascending, each weighted by the sectors they hold in it.
 */
export function dataSpans(layers: Layer[], first: number, end: number): ViewSpan[] {
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
  const out: ViewSpan[] = [];
  let covered = first;
  for (const [s0, e0] of marks) {
    // The part of this mark not yet counted, within [first, end).
    let s = Math.max(s0, covered);
    const e = Math.min(e0, end);
    covered = Math.max(covered, e);
    while (s < e) {
      const aligned = Math.floor(s / SPAN_SECTORS) * SPAN_SECTORS;
      const start = Math.max(first, aligned);
      const spanEnd = Math.min(end, aligned + SPAN_SECTORS);
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

export interface SpanRuns {
  /** The kernel's runs of each side: [at, count, file, offset]..., file -1 = zeros. */
  a: number[];
  b: number[];
  /** Sectors the kernel will read (either side reads a file). */
  reads: number;
}

/**
 * The runs of one task over sectors [s, s+n): both views resolved once and
 * walked together. Files are numbered a's layers first, then b's (`nA` is
 * a's count); `ids` names each file (device and inode). Zeros replace a
 * stretch on both sides where both read the same file at the same offset
 * (the same bytes), and where `maskLeafOfA` and a's leaf supplies it. A null
 * `rb` reads zeros.
 */
export function spanRuns(ra: ChainResolver, rb: ChainResolver | null, nA: number, ids: string[], s: number, n: number, maskLeafOfA = false): SpanRuns {
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
    const skip = (maskLeafOfA && x.layer === 0) || (fa >= 0 && fb >= 0 && ids[fa] === ids[fb] && offA === offB);
    pushRun(out.a, at - s, e - at, skip ? -1 : fa, skip ? 0 : offA);
    pushRun(out.b, at - s, e - at, skip ? -1 : fb, skip ? 0 : offB);
    if (!skip && (fa >= 0 || fb >= 0)) out.reads += e - at;
    at = e;
    if (x.sector + x.count <= at) i++;
    if (y.sector + y.count <= at) j++;
  }
  return out;
}
