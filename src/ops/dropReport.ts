/**
 * What `compact --free-space` reports: the bytes dropped by reason, overall
 * and per partition, the partitions left as they are and why, the opted-in
 * drops refused, and the blocks that stay allocated for a few used sectors.
 * Built from the drop plan and the executor's tally, so a dry run and the
 * real run report the same figures.
 */
import type { DropKind, DropPlan, DropReason, PartitionDropPlan } from '../plan/dropPlan.js';
import { DROP_REASONS } from '../plan/dropPlan.js';
import type { RewriteStats } from '../exec/rewrite.js';

const SECTOR = 512;

export type ReasonBytes = Record<DropReason, number>;

/** A partition of the drop plan, its ranges summed into bytes. */
export interface PartitionReport extends Omit<PartitionDropPlan, 'ranges'> {
  /** Bytes the leaf held there that are dropped, by reason. */
  bytes: ReasonBytes;
}

export interface FreeSpaceReport {
  drops: DropKind[];
  /** Bytes dropped from the leaf by reason, the whole disk. */
  bytes: ReasonBytes;
  partitions: PartitionReport[];
  /** Bytes dropped outside every partition (only ever the compare kernel's reasons). */
  outside: ReasonBytes;
  /** Why no partition could be listed (the table cannot be trusted), else null. */
  tableError: string | null;
  /** Blocks deallocated where free space or an opted-in file was dropped. */
  blocksFreed: number;
  /** Blocks the plan dropped sectors from that stay allocated for the used sectors left in them. */
  blocksKept: { count: number; usedBytes: number };
}

export function emptyReasons(): ReasonBytes {
  return Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as ReasonBytes;
}

/**
 * The report of a rewrite with a drop plan. For a dynamic disk the compare
 * kernel's reasons are 0, as in compact's own figures: a zero sector there
 * is only reclaimed with its whole block (blocks.zero).
 */
export function freeSpaceReport(plan: DropPlan, stats: RewriteStats, type: 'dynamic' | 'differencing'): FreeSpaceReport {
  const tally = stats.tally!;
  const bytesOf = (slot?: number): ReasonBytes => {
    const out = emptyReasons();
    for (const r of DROP_REASONS) {
      if (type === 'dynamic' && (r === 'sameAsParent' || r === 'zeroOverZero')) continue;
      out[r] = tally.get(r, slot) * SECTOR;
    }
    return out;
  };
  return {
    drops: plan.drops,
    bytes: bytesOf(),
    partitions: plan.partitions.map((p, slot) => ({
      index: p.index, start: p.start, size: p.size, fs: p.fs, label: p.label, status: p.status, reason: p.reason, refused: p.refused,
      bytes: bytesOf(slot),
    })),
    outside: bytesOf(plan.partitions.length),
    tableError: plan.tableError,
    blocksFreed: stats.blocksFreed,
    blocksKept: { count: stats.blocksPartlyFreed, usedBytes: stats.sectorsKeepingPartlyFreed * SECTOR },
  };
}
