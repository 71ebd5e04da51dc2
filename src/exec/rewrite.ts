/**
 * The executor of a rewrite: the single writer.
 *
 *   planner (units) --> compare tasks (worker threads) --> executor (in order)
 *
 * Units are planned in output order and dispatched to the task runner, at
 * most one per data slot. Results are consumed strictly in order: the
 * executor decides each unit's output bits, writes kept data straight from
 * the unit's slot (dropped sectors are already zeroed there), and writes a
 * block's bitmap after its last unit. Blocks are stored in the order they are
 * first written, so output offsets follow from the order alone. With no
 * writer (a dry run) it only counts, and the counts give the exact size the
 * real run will produce.
 */
import { VhdToolError } from '../errors.js';
import { setBit, SECTOR } from '../format/index.js';
import { createHash } from 'node:crypto';
import type { ChainResolver } from '../chain/resolve.js';
import type { TaskRunner } from '../parallel/pool.js';
import { planUnits, visitedBlocks, type PlanCounters, type RewriteSpec, type UnitPlan } from '../plan/units.js';
import type { CompareResult } from '../plan/tasks.js';
import { DropTally, REASON_SAME, REASON_ZERO, type DropIndex } from '../plan/dropIndex.js';
import { noopProgress, type ProgressSink } from '../progress.js';
import type { FixedWriter, SparseWriter } from '../vhd/writer.js';
import type { DigestLog } from './digestLog.js';
import type { ContentVerifier } from './verify.js';

/** Bytes written between background fsyncs (VHDTOOL_WRITEBACK_MB; 0 = only the final fsync). */
const WRITEBACK_BYTES = Number(process.env.VHDTOOL_WRITEBACK_MB ?? 32) * 1024 * 1024;

export type OutputType = 'differencing' | 'dynamic' | 'fixed';

export interface RewriteTarget {
  type: OutputType;
  /** Null for a dry run. */
  sparse?: SparseWriter;
  fixed?: FixedWriter;
  /** Bytes of a block bitmap (sparse outputs). */
  bitmapBytes: number;
}

export interface RewriteStats {
  /** Output blocks where a source layer holds data. */
  blocksVisited: number;
  /** Visited blocks with no source sector (allocated but empty bitmaps). */
  emptyBlocks: number;
  /** Blocks stored in the output (sparse outputs). */
  blocksStored: number;
  /** Source sectors examined (set bits and source-supplied zeros). */
  sectorsExamined: number;
  /** Sectors kept in the output. */
  sectorsKept: number;
  /** Sectors dropped: non-zero and equal to the reference. */
  sectorsSameAsParent: number;
  /** Sectors dropped: zero, over a reference that reads zero. */
  sectorsZeroOverZero: number;
  /** Data bytes written (dry run: that would be written). */
  bytesWritten: number;
  /** With a drop plan: every dropped sector by reason and partition (the kernel's reasons included). */
  tally: DropTally | null;
  /** With a drop plan: blocks deallocated where the plan dropped sectors. */
  blocksFreed: number;
  /** With a drop plan: blocks the plan dropped sectors from, that stay stored for their kept sectors. */
  blocksPartlyFreed: number;
  /** Kept sectors holding those blocks. */
  sectorsKeepingPartlyFreed: number;
  /** Source sectors left out unread: the reference reads them from the same file and offset (RewriteSpec.skipShared). */
  sectorsShared: number;
}

export interface RewriteOptions {
  progress?: ProgressSink;
  signal?: AbortSignal;
  /** Real runs: records the bitmaps written, and has each block checked against its source once written. */
  record?: { bitmaps: DigestLog; verifier: ContentVerifier } | null;
}

interface BlockState {
  block: number;
  offset: number | null;
  keptAny: boolean;
  bits: Uint8Array;
  /** Sectors kept, and sectors the drop plan removed. */
  kept: number;
  planned: number;
}

/**
 * Bytes a rewrite goes through, for progress totals: the output blocks where
 * a source layer holds data (what is read, compared and written), never the
 * virtual size (most of which is skipped without reading a byte). The units
 * the executor reports as done add up to exactly this.
 */
export function rewriteTotalBytes(spec: RewriteSpec): number {
  let n = 0;
  for (const b of visitedBlocks(spec)) n += Math.min(spec.blockSize, spec.virtualSize - b * spec.blockSize);
  return n;
}

export async function runRewrite(spec: RewriteSpec, resolver: ChainResolver, runner: TaskRunner, target: RewriteTarget, opts: RewriteOptions = {}): Promise<RewriteStats> {
  const progress = opts.progress ?? noopProgress;
  const record = opts.record ?? null;
  const counters: PlanCounters = { blocksVisited: 0, emptyBlocks: 0 };
  const stats: RewriteStats = {
    blocksVisited: 0, emptyBlocks: 0, blocksStored: 0, sectorsExamined: 0, sectorsKept: 0,
    sectorsSameAsParent: 0, sectorsZeroOverZero: 0, bytesWritten: 0, sectorsShared: 0,
    tally: null, blocksFreed: 0, blocksPartlyFreed: 0, sectorsKeepingPartlyFreed: 0,
  };
  const drops = spec.drops ?? null;
  if (drops) stats.tally = counters.tally = new DropTally(drops.slots);
  const freeSlots = Array.from({ length: runner.slots }, (_, i) => runner.slots - 1 - i);
  const queue: Array<{ u: UnitPlan; p: Promise<CompareResult> | null }> = [];
  let current: BlockState | null = null;
  const dry = !target.sparse && !target.fixed;
  const outFile = target.sparse?.file ?? target.fixed?.file ?? null;
  const flusher = outFile && WRITEBACK_BYTES > 0 ? new Flusher(() => outFile.sync(), WRITEBACK_BYTES) : null;

  const consume = async (item: { u: UnitPlan; p: Promise<CompareResult> | null }) => {
    const { u } = item;
    if (!current || current.block !== u.block) {
      current = { block: u.block, offset: null, keptAny: false, bits: new Uint8Array(target.type === 'fixed' ? 0 : target.bitmapBytes), kept: 0, planned: 0 };
    }
    const st: BlockState = current;
    st.planned += u.planned;
    if (item.p && u.task) {
      const r = await item.p;
      const slot = u.task.slot;
      try {
        stats.sectorsKept += r.kept;
        stats.sectorsSameAsParent += r.sameAsParent;
        stats.sectorsZeroOverZero += r.zeroOverZero;
        st.kept += r.kept;
        for (let i = 0; i < u.task.src.length; i += 4) stats.sectorsExamined += u.task.src[i + 1];
        if (drops) {
          attribute(drops, stats.tally!, u, r);
          if (!dry && r.kept < countRuns(u.task.src)) await record?.verifier.dropped(u.firstSector, u.sectors, u.task.src, u.task.ref, r.drop);
        }
        if (target.type === 'differencing') {
          const src = u.task.src;
          for (let i = 0; i < src.length; i += 4) {
            for (let s = src[i]; s < src[i] + src[i + 1]; s++) {
              if ((r.drop[s >>> 3] & (0x80 >>> (s & 7))) === 0) setBit(st.bits, u.offsetInBlock + s);
            }
          }
        } else if (target.type === 'dynamic') {
          const d = u.dataRuns;
          for (let i = 0; i < d.length; i += 2) for (let s = d[i]; s < d[i] + d[i + 1]; s++) setBit(st.bits, u.offsetInBlock + s);
        }
        if (r.kept > 0) {
          st.keptAny = true;
          // Only the runs holding kept sectors are written: the rest of the unit is zero, and a
          // new file reads zero where nothing was written (holes, as qemu-img convert leaves).
          const runs = writeRuns(r.drop, u.task.src, u.sectors);
          let len = 0;
          for (let i = 0; i < runs.length; i += 2) len += runs[i + 1] * SECTOR;
          stats.bytesWritten += len;
          if (!dry) {
            const base = slot * runner.slotBytes;
            if (target.sparse && st.offset === null) st.offset = target.sparse.reserve(u.block);
            for (let i = 0; i < runs.length; i += 2) {
              const data = runner.arena.subarray(base + runs[i] * SECTOR, base + (runs[i] + runs[i + 1]) * SECTOR);
              if (target.fixed) await target.fixed.write((u.firstSector + runs[i]) * SECTOR, data);
              else await target.sparse!.writeData(st.offset!, (u.offsetInBlock + runs[i]) * SECTOR, data);
            }
            if (runs.length) {
              const end = (runs[runs.length - 2] + runs[runs.length - 1]) * SECTOR;
              await record?.verifier.written(target.fixed ? u.firstSector * SECTOR + end : st.offset! + target.bitmapBytes + u.offsetInBlock * SECTOR + end);
            }
            if (target.fixed) await record?.verifier.fixedUnit(u.firstSector);
            await flusher?.wrote(len);
          }
        }
      } finally {
        freeSlots.push(slot);
      }
    }
    if (u.lastInBlock && st.planned > 0) {
      if (!st.keptAny) stats.blocksFreed++;
      else {
        stats.blocksPartlyFreed++;
        stats.sectorsKeepingPartlyFreed += st.kept;
      }
    }
    if (u.lastInBlock && target.type !== 'fixed' && st.keptAny) {
      stats.blocksStored++;
      if (!dry) {
        if (st.offset === null) st.offset = target.sparse!.reserve(u.block);
        await target.sparse!.writeBitmap(st.offset, st.bits);
        record?.bitmaps.add(st.offset, st.bits.length, createHash('sha1').update(st.bits).digest('hex'));
        await record?.verifier.block(st.block, st.offset, target.bitmapBytes, st.bits);
      }
    }
    progress.advance(u.sectors * SECTOR);
  };

  try {
    for await (const u of planUnits(spec, resolver, counters)) {
      if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      let p: Promise<CompareResult> | null = null;
      if (u.task) {
        while (freeSlots.length === 0) await consume(queue.shift()!);
        u.task.slot = freeSlots.pop()!;
        u.task.write = !dry;
        if (drops && drops.slotRuns(u.firstSector, u.sectors).length > 3) u.task.classify = true;
        p = runner.run<CompareResult>(u.task);
        p.catch(() => undefined);
      }
      queue.push({ u, p });
      if (queue.length > runner.slots * 4) await consume(queue.shift()!);
    }
    while (queue.length) await consume(queue.shift()!);
    await flusher?.drain();
  } catch (e) {
    await flusher?.drain().catch(() => undefined);
    // Let in-flight tasks finish before the slots are reused or the runner closes.
    await Promise.allSettled(queue.map((q) => q.p));
    await record?.verifier.abandon();
    throw e;
  }
  stats.blocksVisited = counters.blocksVisited;
  stats.emptyBlocks = counters.emptyBlocks;
  stats.sectorsExamined += drops ? stats.tally!.planned() : 0;
  stats.sectorsShared = counters.sharedSectors ?? 0;
  return stats;
}

function countRuns(runs: number[]): number {
  let n = 0;
  for (let i = 0; i < runs.length; i += 4) n += runs[i + 1];
  return n;
}

/** Tallies the kernel's drops of a unit by partition: wholesale when the unit lies in one, else sector by sector. */
function attribute(drops: DropIndex, tally: DropTally, u: UnitPlan, r: CompareResult): void {
  const runs = drops.slotRuns(u.firstSector, u.sectors);
  if (runs.length === 3) {
    tally.add(runs[2], REASON_SAME, r.sameAsParent);
    tally.add(runs[2], REASON_ZERO, r.zeroOverZero);
    return;
  }
  const zero = r.zero!;
  for (let i = 0; i < runs.length; i += 3) {
    let same = 0;
    let zz = 0;
    for (let s = runs[i] - u.firstSector, e = s + runs[i + 1]; s < e; s++) {
      const bit = 0x80 >>> (s & 7);
      if ((r.drop[s >>> 3] & bit) === 0) continue;
      if ((zero[s >>> 3] & bit) !== 0) zz++;
      else same++;
    }
    tally.add(runs[i + 2], REASON_SAME, same);
    tally.add(runs[i + 2], REASON_ZERO, zz);
  }
}

/** Zero stretches shorter than this (64 KiB) are written anyway: fewer, larger writes. */
const HOLE_MIN_SECTORS = 128;
/** Holes start and end on 4 KiB boundaries of the unit, so the file system can leave them unallocated. */
const HOLE_ALIGN = 8;

/**
 * The sector runs of a unit to write, as [first, count] pairs: every kept
 * sector (in the source runs `src`, not marked in `drop`) is covered, and the
 * zero stretches between them are left out when they span at least
 * HOLE_MIN_SECTORS once aligned. Everything outside the runs is zero in the
 * slot and in the output alike.
 */
export function writeRuns(drop: Uint8Array, src: number[], sectors: number): number[] {
  const out: number[] = [];
  let runStart = -1;
  let runEnd = -1;
  const add = (s: number, e: number) => {
    if (runStart < 0) {
      runStart = Math.floor(s / HOLE_ALIGN) * HOLE_ALIGN;
      runEnd = e;
      return;
    }
    const holeStart = Math.ceil(runEnd / HOLE_ALIGN) * HOLE_ALIGN;
    const holeEnd = Math.floor(s / HOLE_ALIGN) * HOLE_ALIGN;
    if (holeEnd - holeStart < HOLE_MIN_SECTORS) {
      runEnd = e;
      return;
    }
    out.push(runStart, holeStart - runStart);
    runStart = holeEnd;
    runEnd = e;
  };
  for (let i = 0; i < src.length; i += 4) {
    const end = src[i] + src[i + 1];
    let s = src[i];
    while (s < end) {
      // Skip dropped sectors, a whole byte of the drop map at a time where possible.
      if ((s & 7) === 0 && s + 8 <= end && drop[s >>> 3] === 0xff) { s += 8; continue; }
      if ((drop[s >>> 3] & (0x80 >>> (s & 7))) !== 0) { s++; continue; }
      let e = s + 1;
      while (e < end && (drop[e >>> 3] & (0x80 >>> (e & 7))) === 0) {
        if ((e & 7) === 0 && e + 8 <= end && drop[e >>> 3] === 0) e += 8;
        else e++;
      }
      add(s, e);
      s = e;
    }
  }
  if (runStart >= 0) out.push(runStart, Math.min(sectors, Math.ceil(runEnd / HOLE_ALIGN) * HOLE_ALIGN) - runStart);
  return out;
}

/**
 * Starts writeback early: after every `every` bytes written, an fsync runs in
 * the background while the pipeline goes on, so the final fsync has little
 * left to do and disk writes overlap reading and comparing. At most one is in
 * flight; its error surfaces at the next write or at the end.
 */
export class Flusher {
  private pending = 0;
  private inflight: Promise<void> | null = null;
  private failure: unknown = null;

  constructor(private readonly sync: () => Promise<void>, private readonly every = 32 * 1024 * 1024) {}

  async wrote(bytes: number): Promise<void> {
    if (this.failure) throw this.failure;
    this.pending += bytes;
    if (this.pending < this.every || this.inflight) return;
    this.pending = 0;
    this.inflight = this.sync().catch((e) => { this.failure = e; }).finally(() => { this.inflight = null; });
  }

  async drain(): Promise<void> {
    if (this.inflight) await this.inflight;
    if (this.failure) throw this.failure;
  }
}
