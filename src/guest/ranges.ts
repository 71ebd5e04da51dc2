/**
 * RangeSet: a set of byte positions kept as sorted, disjoint, non-adjacent
 * half-open ranges [start, end). The guest layer's common currency: free
 * space, metadata, a file's clusters, the sectors a chain layer holds.
 *
 * Ranges are stored flat in a Float64Array (16 bytes a range), and every
 * operation between two sets is one linear merge, so combining a chain's
 * allocation with a file system's maps costs O(ranges), never O(bytes).
 */

export class RangeSet {
  /** [s0, e0, s1, e1, ...], sorted, disjoint and non-adjacent. */
  private readonly d: Float64Array;

  private constructor(d: Float64Array) {
    this.d = d;
  }

  static readonly EMPTY = new RangeSet(new Float64Array(0));

  /** @internal Wraps pairs that are already canonical (sorted, disjoint, non-adjacent); the builder's exit. */
  static fromCanonical(d: Float64Array): RangeSet {
    return d.length === 0 ? RangeSet.EMPTY : new RangeSet(d);
  }

  /** A set of one range (empty when end <= start). */
  static of(start: number, end: number): RangeSet {
    return end > start ? new RangeSet(Float64Array.of(start, end)) : RangeSet.EMPTY;
  }

  /** From [start, end) pairs in any order, overlapping or not. */
  static from(pairs: Iterable<readonly [number, number]>): RangeSet {
    const b = new RangeSetBuilder();
    for (const [s, e] of pairs) b.add(s, e);
    return b.build();
  }

  /** Number of ranges. */
  get count(): number {
    return this.d.length / 2;
  }

  get isEmpty(): boolean {
    return this.d.length === 0;
  }

  /** Total length of all ranges. */
  get bytes(): number {
    let n = 0;
    for (let i = 0; i < this.d.length; i += 2) n += this.d[i + 1] - this.d[i];
    return n;
  }

  start(i: number): number {
    return this.d[2 * i];
  }

  end(i: number): number {
    return this.d[2 * i + 1];
  }

  /** Smallest position in the set, or NaN when empty. */
  get first(): number {
    return this.d.length ? this.d[0] : NaN;
  }

  /** One past the largest position, or NaN when empty. */
  get last(): number {
    return this.d.length ? this.d[this.d.length - 1] : NaN;
  }

  *[Symbol.iterator](): IterableIterator<[number, number]> {
    for (let i = 0; i < this.d.length; i += 2) yield [this.d[i], this.d[i + 1]];
  }

  toArray(): Array<[number, number]> {
    return [...this];
  }

  /** Index of the last range whose start is <= pos, or -1. */
  private floor(pos: number): number {
    let lo = 0;
    let hi = this.count - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.d[2 * mid] <= pos) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  has(pos: number): boolean {
    const i = this.floor(pos);
    return i >= 0 && pos < this.d[2 * i + 1];
  }

  /** True when some position of [start, end) is in the set. */
  overlaps(start: number, end: number): boolean {
    if (end <= start) return false;
    const i = this.floor(end - 1);
    return i >= 0 && this.d[2 * i + 1] > start;
  }

  /** True when every position of [start, end) is in the set. */
  covers(start: number, end: number): boolean {
    if (end <= start) return true;
    const i = this.floor(start);
    return i >= 0 && this.d[2 * i + 1] >= end;
  }

  /** Every position moved by `delta` (a partition's ranges onto its disk). */
  shift(delta: number): RangeSet {
    if (delta === 0 || this.isEmpty) return this;
    const d = new Float64Array(this.d.length);
    for (let i = 0; i < d.length; i++) d[i] = this.d[i] + delta;
    return new RangeSet(d);
  }

  /** The part of the set inside [start, end). */
  clip(start: number, end: number): RangeSet {
    return this.intersect(RangeSet.of(start, end));
  }

  union(o: RangeSet): RangeSet {
    if (o.isEmpty) return this;
    if (this.isEmpty) return o;
    const b = new RangeSetBuilder(this.count + o.count);
    let i = 0;
    let j = 0;
    while (i < this.d.length || j < o.d.length) {
      if (j >= o.d.length || (i < this.d.length && this.d[i] <= o.d[j])) {
        b.add(this.d[i], this.d[i + 1]);
        i += 2;
      } else {
        b.add(o.d[j], o.d[j + 1]);
        j += 2;
      }
    }
    return b.build();
  }

  intersect(o: RangeSet): RangeSet {
    const b = new RangeSetBuilder();
    this.walkIntersection(o, (s, e) => b.add(s, e));
    return b.build();
  }

  /** Length of the intersection, without building it. */
  intersectBytes(o: RangeSet): number {
    let n = 0;
    this.walkIntersection(o, (s, e) => { n += e - s; });
    return n;
  }

  /**
   * One merge of both lists, where a run of ranges of one set that ends
   * before the other's current range is skipped by a galloping search: a
   * small set against a large one (a file's few runs against the sectors a
   * disk holds) costs O(small x log large), not O(large).
   */
  private walkIntersection(o: RangeSet, visit: (s: number, e: number) => void): void {
    let i = 0;
    let j = 0;
    const a = this.d;
    const c = o.d;
    while (i < a.length && j < c.length) {
      if (c[j + 1] <= a[i]) {
        j = skipEndingBy(c, j, a[i]);
        continue;
      }
      if (a[i + 1] <= c[j]) {
        i = skipEndingBy(a, i, c[j]);
        continue;
      }
      const s = Math.max(a[i], c[j]);
      const e = Math.min(a[i + 1], c[j + 1]);
      visit(s, e);
      if (a[i + 1] < c[j + 1]) i += 2;
      else j += 2;
    }
  }

  subtract(o: RangeSet): RangeSet {
    if (o.isEmpty || this.isEmpty) return this;
    const b = new RangeSetBuilder(this.count);
    let j = 0;
    const c = o.d;
    for (let i = 0; i < this.d.length; i += 2) {
      let s = this.d[i];
      const e = this.d[i + 1];
      while (j < c.length && c[j + 1] <= s) j += 2;
      let k = j;
      while (s < e && k < c.length && c[k] < e) {
        if (c[k] > s) b.add(s, c[k]);
        s = Math.max(s, c[k + 1]);
        k += 2;
      }
      if (s < e) b.add(s, e);
    }
    return b.build();
  }

  /**
   * Every range widened outward to multiples of `unit` (a set of bytes to the
   * sectors or clusters touching them).
   */
  widen(unit: number): RangeSet {
    const b = new RangeSetBuilder(this.count);
    for (let i = 0; i < this.d.length; i += 2) b.add(Math.floor(this.d[i] / unit) * unit, Math.ceil(this.d[i + 1] / unit) * unit);
    return b.build();
  }

  /** Every range narrowed inward to multiples of `unit`: only whole units the set covers. */
  narrow(unit: number): RangeSet {
    const b = new RangeSetBuilder(this.count);
    for (let i = 0; i < this.d.length; i += 2) b.add(Math.ceil(this.d[i] / unit) * unit, Math.floor(this.d[i + 1] / unit) * unit);
    return b.build();
  }

  equals(o: RangeSet): boolean {
    if (o.d.length !== this.d.length) return false;
    for (let i = 0; i < this.d.length; i++) if (o.d[i] !== this.d[i]) return false;
    return true;
  }

  toJSON(): Array<[number, number]> {
    return this.toArray();
  }
}

/**
 * In canonical pairs `d`, the index (even) of the first range at or after
 * `from` that ends after `pos` (d.length if none): gallops forward, then
 * searches the last step's window.
 */
function skipEndingBy(d: Float64Array, from: number, pos: number): number {
  let lo = from;
  let step = 2;
  let hi = from + step;
  while (hi < d.length && d[hi + 1] <= pos) {
    lo = hi;
    step *= 2;
    hi = from + step;
  }
  if (hi > d.length) hi = d.length;
  // d[lo + 1] <= pos (or lo === from, which the caller checked); d[hi + 1] > pos or hi === d.length.
  while (hi - lo > 2) {
    const mid = lo + (((hi - lo) >>> 2) << 1);
    if (d[mid + 1] <= pos) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Collects ranges in any order and builds a RangeSet. Ranges added in
 * ascending order (the usual case: runlists, bitmaps, extents walked in
 * order) are merged on the fly; anything else is sorted once at build().
 * `overlapBytes` counts bytes added more than once (two owners of one
 * cluster), for the consistency checks.
 */
export class RangeSetBuilder {
  private d: Float64Array;
  private n = 0;
  private sorted = true;

  constructor(capacity = 16) {
    this.d = new Float64Array(Math.max(2, capacity * 2));
  }

  /** Adds [start, end); empty ranges are ignored. */
  add(start: number, end: number): this {
    if (!(end > start)) return this;
    if (this.n > 0) {
      const lastStart = this.d[this.n - 2];
      const lastEnd = this.d[this.n - 1];
      if (start >= lastStart && start <= lastEnd) {
        if (end > lastEnd) this.d[this.n - 1] = end;
        return this;
      }
      if (start < lastStart) this.sorted = false;
    }
    if (this.n + 2 > this.d.length) {
      const g = new Float64Array(this.d.length * 2);
      g.set(this.d);
      this.d = g;
    }
    this.d[this.n++] = start;
    this.d[this.n++] = end;
    return this;
  }

  addSet(s: RangeSet): this {
    for (let i = 0; i < s.count; i++) this.add(s.start(i), s.end(i));
    return this;
  }

  get rangeCount(): number {
    return this.n / 2;
  }

  build(): RangeSet {
    if (this.sorted) return fromSortedPairs(this.d.subarray(0, this.n));
    const count = this.n / 2;
    const starts = new Float64Array(count);
    const ends = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      starts[i] = this.d[2 * i];
      ends[i] = this.d[2 * i + 1];
    }
    return unionOfSorted(starts.sort(), ends.sort(), 1).set;
  }
}

/**
 * A sweep over interval starts and ends, each sorted on its own (typed-array
 * sorts, no comparator): the union of the intervals, and the positions
 * covered by `depth` or more of them. At a tie a start comes first, so
 * adjacent intervals merge.
 */
export function unionOfSorted(starts: Float64Array, ends: Float64Array, depth: number): { set: RangeSet; deep: RangeSet } {
  const count = starts.length;
  const out = new Float64Array(2 * count);
  let n = 0;
  const deep = new RangeSetBuilder();
  let deepFrom = -1;
  let level = 0;
  let i = 0;
  let j = 0;
  while (j < count) {
    if (i < count && starts[i] <= ends[j]) {
      const x = starts[i++];
      if (level === 0) {
        out[n++] = x;
        out[n++] = x;
      }
      level++;
      if (level === depth) deepFrom = x;
    } else {
      const x = ends[j++];
      if (level === depth && depth > 1) deep.add(deepFrom, x);
      level--;
      if (level === 0) out[n - 1] = x;
    }
  }
  return { set: RangeSet.fromCanonical(out.slice(0, n)), deep: deep.build() };
}

/** Merges sorted (by start) pairs into a RangeSet. */
function fromSortedPairs(p: Float64Array): RangeSet {
  const out = new Float64Array(p.length);
  let n = 0;
  for (let i = 0; i < p.length; i += 2) {
    const s = p[i];
    const e = p[i + 1];
    if (n > 0 && s <= out[n - 1]) {
      if (e > out[n - 1]) out[n - 1] = e;
    } else {
      out[n++] = s;
      out[n++] = e;
    }
  }
  return RangeSet.fromCanonical(out.slice(0, n));
}
