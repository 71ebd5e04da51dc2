/**
 * The drop plan as the rewrite planner uses it: sorted sector segments, each
 * with its reason and partition, looked up with a cursor that only moves
 * forward (units are planned in ascending order); and a tally of dropped
 * sectors by reason and by partition ("slot": a partition's position in the
 * plan, the last slot standing for the bytes outside every partition).
 */
import type { Piece } from '../chain/resolve.js';
import { DROP_REASONS, PLAN_REASONS, type DropPlan, type DropReason } from './dropPlan.js';

const SECTOR = 512;

export class DropTally {
  /** Sectors, [slot * reasons + reason]. */
  readonly sectors: Float64Array;

  constructor(readonly slots: number) {
    this.sectors = new Float64Array((slots + 1) * DROP_REASONS.length);
  }

  add(slot: number, reason: number, n: number): void {
    this.sectors[slot * DROP_REASONS.length + reason] += n;
  }

  /** Sectors the drop plan removed (every reason but the kernel's). */
  planned(): number {
    let n = 0;
    for (let i = 0; i < this.sectors.length; i++) {
      const r = i % DROP_REASONS.length;
      if (r !== REASON_SAME && r !== REASON_ZERO) n += this.sectors[i];
    }
    return n;
  }

  /** Sectors dropped for `reason` in `slot` (slots = outside partitions), or in all slots when slot is undefined. */
  get(reason: DropReason, slot?: number): number {
    const r = DROP_REASONS.indexOf(reason);
    if (slot !== undefined) return this.sectors[slot * DROP_REASONS.length + r];
    let n = 0;
    for (let s = 0; s <= this.slots; s++) n += this.sectors[s * DROP_REASONS.length + r];
    return n;
  }
}

export const REASON_SAME = DROP_REASONS.indexOf('sameAsParent');
export const REASON_ZERO = DROP_REASONS.indexOf('zeroOverZero');

export class DropIndex {
  /** Segments in sectors: start, end, reason index (into DROP_REASONS), slot. */
  private readonly seg: Float64Array;
  private readonly n: number;
  /** Partition bounds in sectors, sorted: start, end, slot. */
  private readonly parts: Float64Array;
  private at = 0;
  readonly slots: number;

  constructor(plan: DropPlan) {
    const rows: Array<[number, number, number, number]> = [];
    plan.partitions.forEach((p, slot) => {
      for (const r of PLAN_REASONS) {
        const set = p.ranges[r];
        if (set) for (const [s, e] of set) rows.push([s / SECTOR, e / SECTOR, DROP_REASONS.indexOf(r), slot]);
      }
    });
    rows.sort((a, b) => a[0] - b[0]);
    this.seg = Float64Array.from(rows.flat());
    this.n = rows.length;
    const parts = plan.partitions.map((p, slot) => [p.start / SECTOR, (p.start + p.size) / SECTOR, slot]).sort((a, b) => a[0] - b[0]);
    this.parts = Float64Array.from(parts.flat());
    this.slots = plan.partitions.length;
  }

  /** Planned sectors in all. */
  get sectors(): number {
    let n = 0;
    for (let i = 0; i < this.n; i++) n += this.seg[4 * i + 1] - this.seg[4 * i];
    return n;
  }

  /** Rewinds the cursors (a new pass over the disk). */
  reset(): void {
    this.at = 0;
  }

  /**
   * Removes the planned sectors from `pieces` (source pieces, ascending, and
   * not before any range asked for earlier), tallying them by reason and
   * partition.
   * Returns the pieces that remain and the number of sectors removed.
   */
  cut(pieces: Piece[], tally: DropTally): { pieces: Piece[]; removed: number } {
    const out: Piece[] = [];
    let removed = 0;
    for (const p of pieces) {
      let s = p.sector;
      const end = p.sector + p.count;
      while (this.at < this.n && this.seg[4 * this.at + 1] <= s) this.at++;
      let i = this.at;
      while (s < end) {
        if (i >= this.n || this.seg[4 * i] >= end) {
          out.push(sub(p, s, end));
          break;
        }
        const a = Math.max(s, this.seg[4 * i]);
        const b = Math.min(end, this.seg[4 * i + 1]);
        if (a > s) out.push(sub(p, s, a));
        tally.add(this.seg[4 * i + 3], this.seg[4 * i + 2], b - a);
        removed += b - a;
        s = b;
        i++;
      }
    }
    return { pieces: out, removed };
  }

  /**
   * The slot of every sector of [first, first + count), as runs
   * [start, count, slot] (the last slot = outside partitions).
   */
  slotRuns(first: number, count: number): number[] {
    const out: number[] = [];
    const end = first + count;
    const p = this.parts;
    const np = p.length / 3;
    // The first partition ending after `first` (partitions are few and sorted).
    let i = 0;
    while (i < np && p[3 * i + 1] <= first) i++;
    let s = first;
    while (s < end) {
      if (i >= np || p[3 * i] >= end) {
        out.push(s, end - s, this.slots);
        break;
      }
      const a = Math.max(s, p[3 * i]);
      const b = Math.min(end, p[3 * i + 1]);
      if (a > s) out.push(s, a - s, this.slots);
      out.push(a, b - a, p[3 * i + 2]);
      s = b;
      i++;
    }
    return out;
  }
}

function sub(p: Piece, from: number, to: number): Piece {
  return { sector: from, count: to - from, layer: p.layer, fileOffset: p.layer >= 0 ? p.fileOffset + (from - p.sector) * SECTOR : 0 };
}
