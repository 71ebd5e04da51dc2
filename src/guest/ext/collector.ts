/**
 * One inode's block map as the scan keeps it: data runs, map blocks, and a
 * directory's runs in logical order. One collector is reused inode after
 * inode (the scan handles one inode at a time).
 */
import { RangeSet, RangeSetBuilder } from '../ranges.js';
import type { AnomalyLog } from './anomalies.js';
import type { MapSink } from './blockmap.js';

export class MapCollector implements MapSink {
  private runs = new Float64Array(64);
  private n = 0;
  private sorted = true;
  readonly treeBlocks: number[] = [];
  readonly dirRuns: number[] = [];
  first = -1;
  private ino = 0;
  private dir = false;

  constructor(private readonly log: AnomalyLog) {}

  reset(ino: number, dir: boolean): this {
    this.n = 0;
    this.sorted = true;
    this.treeBlocks.length = 0;
    this.dirRuns.length = 0;
    this.first = -1;
    this.ino = ino;
    this.dir = dir;
    return this;
  }

  run(logical: number, physical: number, count: number, uninit: boolean): void {
    if (this.n > 0 && physical < this.runs[this.n - 1]) this.sorted = false;
    if (this.n + 2 > this.runs.length) {
      const g = new Float64Array(this.runs.length * 2);
      g.set(this.runs);
      this.runs = g;
    }
    this.runs[this.n++] = physical;
    this.runs[this.n++] = physical + count;
    if (logical === 0) this.first = physical;
    if (this.dir && !uninit) this.dirRuns.push(logical, physical, count);
  }

  tree(block: number): void {
    this.treeBlocks.push(block);
  }

  bad(message: string): void {
    this.log.add('bad-extent', `inode ${this.ino}: ${message}`);
  }

  /** The data runs as bytes. */
  data(bs: number): RangeSet {
    if (this.n === 0) return RangeSet.EMPTY;
    if (!this.sorted) {
      const b = new RangeSetBuilder(this.n / 2);
      for (let k = 0; k < this.n; k += 2) b.add(this.runs[k] * bs, this.runs[k + 1] * bs);
      return b.build();
    }
    const out = new Float64Array(this.n);
    let m = 0;
    for (let k = 0; k < this.n; k += 2) {
      const s = this.runs[k] * bs;
      const e = this.runs[k + 1] * bs;
      if (m > 0 && s <= out[m - 1]) { if (e > out[m - 1]) out[m - 1] = e; } else { out[m++] = s; out[m++] = e; }
    }
    return RangeSet.fromCanonical(m === out.length ? out : out.slice(0, m));
  }

  /** The map blocks and the xattr block (when not 0) as bytes. */
  treeSet(bs: number, xattr: number): RangeSet {
    const b = new RangeSetBuilder(this.treeBlocks.length + 1);
    for (const t of this.treeBlocks) b.add(t * bs, (t + 1) * bs);
    if (xattr) b.add(xattr * bs, (xattr + 1) * bs);
    return b.build();
  }
}

