/**
 * Anomalies gathered by kind during a scan: a volume with a million broken
 * chains yields one anomaly per kind that counts them and names the first
 * few, so memory does not follow the damage.
 */
import { RangeSetBuilder, type RangeSet } from '../ranges.js';
import type { Anomaly } from '../volume.js';

/** Problems of each kind listed by name; the rest are counted. */
const LIST = 8;

interface Group {
  count: number;
  examples: string[];
  ranges: RangeSetBuilder | null;
}

export class AnomalyLog {
  private readonly groups = new Map<string, Group>();
  private readonly whole: Anomaly[] = [];

  /** One more problem of `kind`, described in one phrase, with the volume bytes it concerns. */
  add(kind: string, example: string, ranges?: RangeSet): void {
    let g = this.groups.get(kind);
    if (!g) {
      g = { count: 0, examples: [], ranges: null };
      this.groups.set(kind, g);
    }
    g.count++;
    if (g.examples.length < LIST) g.examples.push(example);
    if (ranges && !ranges.isEmpty) (g.ranges ??= new RangeSetBuilder()).addSet(ranges);
  }

  /** An anomaly made whole elsewhere (the ownership check's). */
  push(a: Anomaly): void {
    this.whole.push(a);
  }

  list(): Anomaly[] {
    const out: Anomaly[] = [];
    for (const [kind, g] of this.groups) {
      const more = g.count > g.examples.length ? ` (and ${g.count - g.examples.length} more)` : '';
      const a: Anomaly = { kind, message: `${g.examples.join('; ')}${more}`, count: g.count };
      if (g.ranges) a.ranges = g.ranges.build();
      out.push(a);
    }
    return [...out, ...this.whole];
  }
}
