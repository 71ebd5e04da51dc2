/**
 * What the scan keeps of each inode in use until its path is known: a few
 * numbers in typed arrays (about 45 bytes an inode) and its ranges in one
 * shared pool. Records are appended in inode order, so an inode is found by
 * binary search.
 */
import { RangeSet } from '../ranges.js';
import { Grow } from './grow.js';

export const T_REG = 1;
export const T_DIR = 2;
export const T_LNK = 3;
export const T_OTHER = 4;

/** The file system's own inode (journal, resize inode, quota, orphan file, xattr inode). */
export const F_SYSTEM = 1;
/** On the orphan list (deleted while open; the kernel frees it at the next mount). */
export const F_ORPHAN_LIST = 2;

export class InodeRecords {
  readonly ino = new Grow(Uint32Array);
  readonly type = new Grow(Uint8Array);
  readonly flags = new Grow(Uint8Array);
  readonly size = new Grow(Float64Array);
  readonly gen = new Grow(Uint32Array);
  readonly dataAt = new Grow(Uint32Array);
  readonly dataN = new Grow(Uint32Array);
  readonly metaAt = new Grow(Uint32Array);
  readonly metaN = new Grow(Uint32Array);
  /** A directory's entries: [entStart, entEnd) in DirEntries. */
  readonly entStart = new Grow(Uint32Array);
  readonly entEnd = new Grow(Uint32Array);
  /** Byte ranges [start, end) of every record's data and meta. */
  private readonly pool = new Grow(Float64Array, 4096);

  get count(): number {
    return this.ino.length;
  }

  add(r: { ino: number; type: number; flags: number; size: number; gen: number; data: RangeSet; meta: RangeSet; entStart: number; entEnd: number }): void {
    this.ino.push(r.ino);
    this.type.push(r.type);
    this.flags.push(r.flags);
    this.size.push(r.size);
    this.gen.push(r.gen);
    this.dataAt.push(this.pool.length);
    this.dataN.push(this.store(r.data));
    this.metaAt.push(this.pool.length);
    this.metaN.push(this.store(r.meta));
    this.entStart.push(r.entStart);
    this.entEnd.push(r.entEnd);
  }

  private store(s: RangeSet): number {
    this.pool.reserve(this.pool.length + 2 * s.count);
    for (let i = 0; i < s.count; i++) {
      this.pool.push(s.start(i));
      this.pool.push(s.end(i));
    }
    return s.count;
  }

  /** Index of the record of inode `ino`, or -1. */
  find(ino: number): number {
    const a = this.ino.a;
    let lo = 0;
    let hi = this.ino.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] === ino) return mid;
      if (a[mid] < ino) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  data(r: number): RangeSet {
    return this.set(this.dataAt.a[r], this.dataN.a[r]);
  }

  /** The record's meta ranges, with `extra` [start, end) (its inode's bytes) merged in. */
  meta(r: number, extraStart: number, extraEnd: number): RangeSet {
    const at = this.metaAt.a[r];
    const n = this.metaN.a[r];
    const p = this.pool.a;
    const out = new Float64Array(2 * n + 2);
    let m = 0;
    let pending = true;
    const push = (s: number, e: number) => {
      if (m > 0 && s <= out[m - 1]) { if (e > out[m - 1]) out[m - 1] = e; } else { out[m++] = s; out[m++] = e; }
    };
    for (let k = 0; k < n; k++) {
      const s = p[at + 2 * k];
      if (pending && extraStart <= s) { push(extraStart, extraEnd); pending = false; }
      push(s, p[at + 2 * k + 1]);
    }
    if (pending) push(extraStart, extraEnd);
    return RangeSet.fromCanonical(m === out.length ? out : out.slice(0, m));
  }

  /** Inode numbers whose data or map blocks (meta less the inode itself) hold byte `pos`; a linear search, for messages. */
  claimers(pos: number, max = 4): number[] {
    const out: number[] = [];
    const p = this.pool.a;
    const hit = (at: number, n: number) => {
      for (let k = 0; k < n; k++) if (p[at + 2 * k] <= pos && pos < p[at + 2 * k + 1]) return true;
      return false;
    };
    for (let r = 0; r < this.count && out.length < max; r++) {
      if (hit(this.dataAt.a[r], this.dataN.a[r]) || hit(this.metaAt.a[r], this.metaN.a[r])) out.push(this.ino.a[r]);
    }
    return out;
  }

  private set(at: number, n: number): RangeSet {
    if (n === 0) return RangeSet.EMPTY;
    return RangeSet.fromCanonical(this.pool.a.slice(at, at + 2 * n));
  }
}
