/**
 * Compact growable tables the MFT pass fills: per record (typed arrays,
 * about 20 bytes a record) and per run (owner, stream, byte range).
 */

function grow<T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(a: T, need: number, fill = 0): T {
  if (need <= a.length) return a;
  let n = Math.max(1024, a.length);
  while (n < need) n *= 2;
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  if (fill) b.fill(fill, a.length);
  return b;
}

export const F_IN_USE = 1;
export const F_DIR = 2;
export const F_EXTENSION = 4;
export const F_BAD = 8;
/** Flags of a file: in use, and neither an extension record nor torn or malformed (flags & LIVE_MASK === F_IN_USE). */
export const LIVE_MASK = F_IN_USE | F_EXTENSION | F_BAD;

/** Per-record facts, indexed by record number. */
export class RecordTable {
  count = 0;
  flags = new Uint8Array(0);
  sequence = new Uint16Array(0);
  parent = new Uint32Array(0);
  parentSeq = new Uint16Array(0);
  /** Rank of the name kept (0 none, 1 DOS, 2 POSIX, 3 Win32): a better one replaces it. */
  nameRank = new Uint8Array(0);
  /** Attribute instance of the name kept: of equal ranks, the oldest name (lowest instance) is the primary one. */
  nameInstance = new Uint16Array(0);
  /** Unnamed $DATA size. */
  size = new Float64Array(0);
  names: Array<string | undefined> = [];

  /** Makes room for record r. */
  ensure(r: number): void {
    if (r < this.count) return;
    if (r < this.flags.length) {
      this.count = r + 1;
      return;
    }
    this.flags = grow(this.flags, r + 1);
    this.sequence = grow(this.sequence, r + 1);
    this.parent = grow(this.parent, r + 1, 0xffffffff);
    this.parentSeq = grow(this.parentSeq, r + 1);
    this.nameRank = grow(this.nameRank, r + 1);
    this.nameInstance = grow(this.nameInstance, r + 1);
    this.size = grow(this.size, r + 1);
    this.count = r + 1;
  }

  /** Record r is in use, a base record, and not torn or malformed: a file. */
  live(r: number): boolean {
    return r < this.count && (this.flags[r] & LIVE_MASK) === F_IN_USE;
  }

  /** A copy (its own arrays; the name strings are shared). */
  clone(): RecordTable {
    const c = new RecordTable();
    c.count = this.count;
    c.flags = this.flags.slice();
    c.sequence = this.sequence.slice();
    c.parent = this.parent.slice();
    c.parentSeq = this.parentSeq.slice();
    c.nameRank = this.nameRank.slice();
    c.nameInstance = this.nameInstance.slice();
    c.size = this.size.slice();
    c.names = this.names.slice();
    return c;
  }

  /** Forgets record r: its slot as a record never seen (not in use, no name, no parent). */
  blank(r: number): void {
    if (r >= this.flags.length) return;
    this.flags[r] = 0;
    this.sequence[r] = 0;
    this.parent[r] = NO_PARENT_SLOT;
    this.parentSeq[r] = 0;
    this.nameRank[r] = 0;
    this.nameInstance[r] = 0;
    this.size[r] = 0;
    if (r < this.names.length) this.names[r] = undefined;
  }
}

/** Stream number of a record's metadata attributes ($INDEX_ALLOCATION, non-resident lists, $EA...). */
export const META_STREAM = 0xffff;
/** Parent slot meaning "no usable parent reference" (also any reference of 2^32 or more). */
export const NO_PARENT_SLOT = 0xffffffff;

/** Runs claimed during the pass: owner record, stream (0 unnamed $DATA, k named, META_STREAM), bytes. */
export class RunTable {
  n = 0;
  owner = new Uint32Array(0);
  stream = new Uint16Array(0);
  start = new Float64Array(0);
  end = new Float64Array(0);

  add(owner: number, stream: number, start: number, end: number): void {
    const i = this.n;
    if (i === this.owner.length) {
      this.owner = grow(this.owner, i + 1);
      this.stream = grow(this.stream, i + 1);
      this.start = grow(this.start, i + 1);
      this.end = grow(this.end, i + 1);
    }
    // Adjacent runs of one stream merge (a fragmented file's contiguous extents).
    if (i > 0 && this.owner[i - 1] === owner && this.stream[i - 1] === stream && this.end[i - 1] === start) {
      this.end[i - 1] = end;
      return;
    }
    this.owner[i] = owner;
    this.stream[i] = stream;
    this.start[i] = start;
    this.end[i] = end;
    this.n++;
  }

  /** Entry indices sorted by owner, then stream (stable). */
  order(): Uint32Array {
    const idx = new Uint32Array(this.n);
    let sorted = true;
    for (let i = 0; i < this.n; i++) {
      idx[i] = i;
      if (i > 0 && (this.owner[i] < this.owner[i - 1] || (this.owner[i] === this.owner[i - 1] && this.stream[i] < this.stream[i - 1]))) sorted = false;
    }
    if (sorted) return idx;
    const o = this.owner;
    const s = this.stream;
    return idx.sort((a, b) => o[a] - o[b] || s[a] - s[b] || a - b);
  }
}

/**
 * A RunTable's entries by owner: `order` sorts them by owner then stream
 * (RunTable.order), and `span(r)` finds owner r's entries in it.
 */
export class RunIndex {
  readonly order: Uint32Array;

  constructor(readonly runs: RunTable) {
    this.order = runs.order();
  }

  /** Owner r's entries: order[from..to). */
  span(r: number): { from: number; to: number } {
    const o = this.order;
    const owner = this.runs.owner;
    let lo = 0;
    let hi = o.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (owner[o[mid]] < r) lo = mid + 1;
      else hi = mid;
    }
    let to = lo;
    while (to < o.length && owner[o[to]] === r) to++;
    return { from: lo, to };
  }
}
