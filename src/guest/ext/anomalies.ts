/**
 * Anomalies found while reading, gathered per kind: each kind becomes one
 * Anomaly with a count, the first few cases by name and the volume bytes
 * concerned. A hostile volume with a million bad inodes costs a counter,
 * not a million messages.
 */
import { RangeSetBuilder, type RangeSet } from '../ranges.js';
import type { Anomaly } from '../volume.js';

const LIST = 8;

interface Kind {
  count: number;
  messages: string[];
  ranges: RangeSetBuilder | null;
}

export class AnomalyLog {
  private readonly kinds = new Map<string, Kind>();

  /** Records one case of `kind`; `start`/`end` are the volume bytes concerned, when known. */
  add(kind: string, message: string, start?: number, end?: number): void {
    let k = this.kinds.get(kind);
    if (!k) {
      k = { count: 0, messages: [], ranges: null };
      this.kinds.set(kind, k);
    }
    k.count++;
    if (k.messages.length < LIST) k.messages.push(message);
    if (start !== undefined && end !== undefined && end > start) {
      if (!k.ranges) k.ranges = new RangeSetBuilder();
      k.ranges.add(start, end);
    }
  }

  /** Records one case of `kind` concerning the bytes in `ranges`. */
  addSet(kind: string, message: string, ranges: RangeSet): void {
    this.add(kind, message);
    const k = this.kinds.get(kind)!;
    if (!k.ranges) k.ranges = new RangeSetBuilder();
    k.ranges.addSet(ranges);
  }

  count(kind: string): number {
    return this.kinds.get(kind)?.count ?? 0;
  }

  toAnomalies(): Anomaly[] {
    const out: Anomaly[] = [];
    for (const [kind, k] of this.kinds) {
      const more = k.count > k.messages.length ? `; and ${k.count - k.messages.length} more` : '';
      const message = k.count === 1 ? k.messages[0] : `${k.count} cases: ${k.messages.join('; ')}${more}`;
      const a: Anomaly = { kind, message, count: k.count };
      if (k.ranges) a.ranges = k.ranges.build();
      out.push(a);
    }
    return out;
  }
}
