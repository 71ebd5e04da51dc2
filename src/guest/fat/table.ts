/**
 * The file allocation table: what its entries mean, and a compact copy of it
 * for one scan.
 *
 * A FAT32 volume of 2 TiB has 2^28 clusters and a FAT of 1 GiB, too much to
 * hold. `FatMap` keeps two bits a cluster instead (free, next is the
 * following cluster, end of chain, other) plus the value of each "other"
 * entry (a jump to a distant cluster, a bad or reserved value) in a side
 * array found by rank. Contiguous files cost nothing beyond their two bits;
 * the side array grows with fragmentation only.
 *
 * The map also marks clusters as a scan walks them, so that every cluster is
 * walked at most once: chain loops, cross-links and directory loops all end
 * a walk at the first cluster already seen, and the total work of all walks
 * is bounded by the cluster count.
 */
import { GuestError } from '../errors.js';
import type { FatGeometry, FatKind } from './bpb.js';

/** What an entry says about its cluster. */
export const FREE = 0;
/** The chain goes on at the cluster the entry names. */
export const NEXT = 1;
/** The cluster is the last of its chain (0x...F8 to 0x...FF). */
export const END = 2;
/** The cluster is marked bad (0xFF7, 0xFFF7, 0x0FFFFFF7). */
export const BAD = 3;
/** A reserved value (0x...F0 to 0x...F6) where a link should be. */
export const RESERVED = 4;
/** A link to cluster 1, or to a cluster past the last one. */
export const OUT_OF_RANGE = 5;
export type EntryClass = typeof FREE | typeof NEXT | typeof END | typeof BAD | typeof RESERVED | typeof OUT_OF_RANGE;

export function entryBits(kind: FatKind): 12 | 16 | 32 {
  return kind === 'fat12' ? 12 : kind === 'fat16' ? 16 : 32;
}

/** The mask of an entry's meaningful bits (FAT32 ignores its upper 4). */
export function entryMask(kind: FatKind): number {
  return kind === 'fat12' ? 0xfff : kind === 'fat16' ? 0xffff : 0x0fffffff;
}

/** Classifies a (masked) entry value of a volume with `clusterCount` clusters. */
export function classify(v: number, mask: number, clusterCount: number): EntryClass {
  if (v === 0) return FREE;
  if (v >= 2 && v <= clusterCount + 1) return NEXT;
  if (v >= mask - 7) return END;
  if (v === mask - 8) return BAD;
  if (v >= mask - 15) return RESERVED;
  return OUT_OF_RANGE;
}

/** A value for words the FAT cannot hold (FAT32 values are 28 bits). */
const VISITED = 0xffffffff;

/** Codes of the two-bit map. */
const C_FREE = 0;
const C_NEXT = 1;
const C_END = 2;
const C_OTHER = 3;

/** Clusters per rank block (the side array's index has one count per block). */
const BLOCK_SHIFT = 8;

/** Side-array entries a map may hold (64 MiB): a FAT jumping more often is refused. */
export const MAX_JUMPS = 1 << 24;

/** How many of the four two-bit codes in a byte are C_OTHER. */
const OTHERS_IN_BYTE = (() => {
  const t = new Uint8Array(256);
  for (let x = 0; x < 256; x++) {
    let n = 0;
    for (let k = 0; k < 8; k += 2) if (((x >> k) & 3) === C_OTHER) n++;
    t[x] = n;
  }
  return t;
})();

/** The result of taking one cluster during a walk. */
export const TAKEN_FREE = -1;
export const TAKEN_BEFORE = -2;

export class FatMap {
  readonly clusterCount: number;
  readonly mask: number;
  private readonly codes: Uint8Array;
  private readonly rank: Uint32Array;
  private other = new Uint32Array(1024);
  private otherCount = 0;

  constructor(kind: FatKind, clusterCount: number) {
    this.clusterCount = clusterCount;
    this.mask = entryMask(kind);
    const entries = clusterCount + 2;
    this.codes = new Uint8Array(Math.ceil(entries / 4));
    this.rank = new Uint32Array((entries >>> BLOCK_SHIFT) + 1);
  }

  /** Bytes this map holds (for the notes on memory). */
  get bytes(): number {
    return this.codes.byteLength + this.rank.byteLength + this.other.byteLength;
  }

  /** Records entry `c` (2 .. clusterCount + 1); entries must come in ascending order. */
  set(c: number, v: number): void {
    if ((c & ((1 << BLOCK_SHIFT) - 1)) === 0) this.rank[c >>> BLOCK_SHIFT] = this.otherCount;
    let code: number;
    if (v === 0) code = C_FREE;
    else if (v === c + 1 && v <= this.clusterCount + 1) code = C_NEXT;
    else if (v >= this.mask - 7) code = C_END;
    else {
      code = C_OTHER;
      if (this.otherCount === this.other.length) this.growOther();
      this.other[this.otherCount++] = v;
    }
    if (code !== C_FREE) this.codes[c >>> 2] |= code << ((c & 3) * 2);
  }

  /** `set` for entries first .. first + n - 1 (values[0 .. n - 1]): the FAT pass's loop, with the fields in locals. */
  setMany(first: number, values: Uint32Array, n: number): void {
    const codes = this.codes;
    const rank = this.rank;
    const last = this.clusterCount + 1;
    const endMin = this.mask - 7;
    let other = this.other;
    let oc = this.otherCount;
    for (let k = 0; k < n; k++) {
      const c = first + k;
      const v = values[k];
      if ((c & ((1 << BLOCK_SHIFT) - 1)) === 0) rank[c >>> BLOCK_SHIFT] = oc;
      if (v === 0) continue;
      let code = C_OTHER;
      if (v === c + 1 && v <= last) code = C_NEXT;
      else if (v >= endMin) code = C_END;
      else {
        if (oc === other.length) {
          this.otherCount = oc;
          this.growOther();
          other = this.other;
        }
        other[oc++] = v;
      }
      codes[c >>> 2] |= code << ((c & 3) * 2);
    }
    this.otherCount = oc;
  }

  private growOther(): void {
    if (this.other.length >= MAX_JUMPS) {
      throw new GuestError(`the FAT has more than ${MAX_JUMPS} entries that are neither free, nor a link to the next cluster, nor an end of chain; this reader holds at most that many`);
    }
    const g = new Uint32Array(Math.min(this.other.length * 2, MAX_JUMPS));
    g.set(this.other);
    this.other = g;
  }

  private code(c: number): number {
    return (this.codes[c >>> 2] >> ((c & 3) * 2)) & 3;
  }

  /** Index in the side array of cluster `c`, whose code is C_OTHER. */
  private otherIndex(c: number): number {
    let i = this.rank[c >>> BLOCK_SHIFT];
    const firstByte = (c >>> BLOCK_SHIFT) << (BLOCK_SHIFT - 2);
    const byte = c >>> 2;
    for (let b = firstByte; b < byte; b++) i += OTHERS_IN_BYTE[this.codes[b]];
    const below = (c & 3) * 2;
    if (below > 0) i += OTHERS_IN_BYTE[this.codes[byte] & ((1 << below) - 1)];
    return i;
  }

  /**
   * Takes cluster `c` for a walk: returns its entry (masked) and marks it
   * walked, or TAKEN_FREE / TAKEN_BEFORE when it is free or was walked
   * already (the two look alike in the map; `isFree` tells them apart).
   */
  take(c: number): number {
    const code = this.code(c);
    if (code === C_NEXT || code === C_END) {
      this.codes[c >>> 2] &= ~(3 << ((c & 3) * 2));
      return code === C_NEXT ? c + 1 : this.mask;
    }
    if (code === C_FREE) return TAKEN_FREE;
    const i = this.otherIndex(c);
    const v = this.other[i];
    if (v === VISITED) return TAKEN_BEFORE;
    this.other[i] = VISITED;
    return v;
  }

  /** Whether cluster `c` is free, taken by a walk, or allocated and not yet taken. Changes nothing. */
  peek(c: number, isFree: (c: number) => boolean): 'free' | 'taken' | 'untaken' {
    const code = this.code(c);
    if (code === C_NEXT || code === C_END) return 'untaken';
    if (code === C_FREE) return isFree(c) ? 'free' : 'taken';
    return this.other[this.otherIndex(c)] === VISITED ? 'taken' : 'untaken';
  }

  /**
   * Calls `visit(first, end)` for each run [first, end) of clusters that the
   * FAT allocates (not free, not bad) and no walk has taken: lost chains.
   */
  forEachUntaken(visit: (first: number, end: number) => void): void {
    const last = this.clusterCount + 1;
    let runStart = -1;
    let oi = 0;
    const flush = (end: number) => {
      if (runStart >= 0) visit(runStart, end);
      runStart = -1;
    };
    for (let byte = 0; byte < this.codes.length; byte++) {
      const x = this.codes[byte];
      if (x === 0) {
        flush(byte * 4);
        continue;
      }
      for (let k = 0; k < 4; k++) {
        const c = byte * 4 + k;
        const code = (x >> (k * 2)) & 3;
        let untaken = code === C_NEXT || code === C_END;
        if (code === C_OTHER) {
          const v = this.other[oi++];
          untaken = v !== VISITED && classify(v, this.mask, this.clusterCount) !== BAD;
        }
        if (untaken && c >= 2 && c <= last) {
          if (runStart < 0) runStart = c;
        } else flush(c);
      }
    }
    flush(last + 1);
  }
}

/** A FAT entry decoder over one window of FAT bytes that starts at byte `base` of the FAT. */
export function entryAt(kind: FatKind, w: Uint8Array, base: number, i: number): number {
  if (kind === 'fat16') {
    const o = i * 2 - base;
    return w[o] | (w[o + 1] << 8);
  }
  if (kind === 'fat32') {
    const o = i * 4 - base;
    return (w[o] | (w[o + 1] << 8) | (w[o + 2] << 16) | (w[o + 3] << 24)) & 0x0fffffff;
  }
  const o = ((i * 3) >>> 1) - base;
  const v = w[o] | (w[o + 1] << 8);
  return i & 1 ? v >> 4 : v & 0xfff;
}

/**
 * Entries [first, end) of a window of FAT bytes that starts at byte `base`
 * of the FAT, into `out` (out[0] is entry `first`): entryAt's loop, one per
 * width, for the one pass over a whole FAT.
 */
export function decodeEntries(kind: FatKind, w: Uint8Array, base: number, first: number, end: number, out: Uint32Array): void {
  const n = end - first;
  if (kind === 'fat32') {
    let o = first * 4 - base;
    for (let k = 0; k < n; k++, o += 4) out[k] = (w[o] | (w[o + 1] << 8) | (w[o + 2] << 16) | (w[o + 3] << 24)) & 0x0fffffff;
  } else if (kind === 'fat16') {
    let o = first * 2 - base;
    for (let k = 0; k < n; k++, o += 2) out[k] = w[o] | (w[o + 1] << 8);
  } else {
    for (let k = 0; k < n; k++) out[k] = entryAt(kind, w, base, first + k);
  }
}

/** Bytes of the FAT that hold entries 0 .. clusterCount + 1. */
export function fatUsedBytes(g: FatGeometry): number {
  return Math.ceil(((g.clusterCount + 2) * entryBits(g.kind)) / 8);
}

/** The first byte of entry `i` (for FAT12, of the byte pair that holds it). */
export function entryByte(kind: FatKind, i: number): number {
  return kind === 'fat12' ? (i * 3) >>> 1 : i * (entryBits(kind) / 8);
}

/** Entries whose bytes lie wholly in FAT bytes [0, end). */
export function entriesBelow(kind: FatKind, end: number): number {
  return Math.floor((end * 8) / entryBits(kind));
}
