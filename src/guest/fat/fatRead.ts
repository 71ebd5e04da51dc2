/**
 * Reading the FAT from the volume: one pass over the active copy in large
 * windows (building the scan's FatMap, the free and bad clusters, and
 * entry 1 for the dirty bits) with the other copies compared window by
 * window; and a small cached reader of single entries (readContent, and
 * the scan's following of cross-linked tails).
 */
import { VhdToolError } from '../../errors.js';
import { RangeSet, RangeSetBuilder } from '../ranges.js';
import { readChecked, type ByteSource } from '../source.js';
import type { Anomaly } from '../volume.js';
import type { FatGeometry } from './bpb.js';
import { FatMap, decodeEntries, entriesBelow, entryAt, entryByte, entryMask, fatUsedBytes } from './table.js';

/** Bytes read at a time: a multiple of 3 (FAT12 entry pairs), 2 and 4, so no entry straddles two windows. */
export const FAT_WINDOW = 3 * 1024 * 1024;

export interface FatPass {
  map: FatMap;
  /** Free clusters, in cluster numbers. */
  free: RangeSet;
  /** Clusters marked bad, in cluster numbers. */
  bad: RangeSet;
  /** Entry 1 (masked): FAT16/32 keep the clean-shutdown and hard-error bits there. */
  entry1: number;
  /** The copies that differ from the active one, if any. */
  mismatch: Anomaly | null;
}

export function fatCopyStart(g: FatGeometry, copy: number): number {
  return g.fatStart + copy * g.fatBytes;
}

/** Reads the active FAT once, comparing the mirrored copies as it goes. */
export async function readFat(src: ByteSource, g: FatGeometry, signal?: AbortSignal): Promise<FatPass> {
  const map = new FatMap(g.kind, g.clusterCount);
  const free = new RangeSetBuilder();
  const bad = new RangeSetBuilder();
  const mask = entryMask(g.kind);
  const copies = g.mirrored ? [...Array(g.fatCount).keys()].filter((k) => k !== g.activeFat) : [];
  const diff = new CopyDiff(g, copies);
  const used = fatUsedBytes(g);
  const last = g.clusterCount + 1;
  let entry1 = 0;
  let freeStart = -1;
  const badValue = mask - 8;
  const values = new Uint32Array(entriesBelow(g.kind, FAT_WINDOW) + 1);
  for (let off = 0; off < used; off += FAT_WINDOW) {
    if (signal?.aborted) throw interrupted();
    const len = Math.min(FAT_WINDOW, used - off);
    const w = await readChecked(src, fatCopyStart(g, g.activeFat) + off, len, `FAT ${g.activeFat}`);
    const first = off === 0 ? 0 : entriesBelow(g.kind, off);
    const end = Math.min(last + 1, entriesBelow(g.kind, off + len));
    decodeEntries(g.kind, w, off, first, end, values);
    if (first <= 1 && end > 1) entry1 = values[1 - first];
    const from = Math.max(first, 2);
    if (end > from) map.setMany(from, values.subarray(from - first), end - from);
    for (let i = from; i < end; i++) {
      const v = values[i - first];
      if (v === 0) {
        if (freeStart < 0) freeStart = i;
        continue;
      }
      if (freeStart >= 0) free.add(freeStart, i);
      freeStart = -1;
      if (v === badValue) bad.add(i, i + 1);
    }
    await diff.compare(src, w, off, first, end);
  }
  if (freeStart >= 0) free.add(freeStart, last + 1);
  return { map, free: free.build(), bad: bad.build(), entry1, mismatch: diff.anomaly() };
}

/** Counts entries (from 2 on) where a mirrored copy differs from the active FAT. */
class CopyDiff {
  private readonly counts: number[];
  private readonly firsts: number[];
  private readonly ranges = new RangeSetBuilder();

  constructor(private readonly g: FatGeometry, private readonly copies: number[]) {
    this.counts = copies.map(() => 0);
    this.firsts = copies.map(() => -1);
  }

  async compare(src: ByteSource, w: Uint8Array, off: number, first: number, end: number): Promise<void> {
    const g = this.g;
    // Entries 0 and 1 hold the media byte and the dirty bits, not links: compare from entry 2 on.
    const from = Math.max(first, 2);
    const skip = Math.max(0, entryByte(g.kind, from) - off);
    for (let k = 0; k < this.copies.length; k++) {
      const copyStart = fatCopyStart(g, this.copies[k]);
      const o = await readChecked(src, copyStart + off, w.length, `FAT ${this.copies[k]}`);
      if (sameBytes(w, o, skip)) continue;
      for (let i = from; i < end; i++) {
        if (entryAt(g.kind, w, off, i) === entryAt(g.kind, o, off, i)) continue;
        if (this.counts[k]++ === 0) this.firsts[k] = i;
        const at = copyStart + entryByte(g.kind, i);
        this.ranges.add(at, at + (g.kind === 'fat32' ? 4 : 2));
      }
    }
  }

  anomaly(): Anomaly | null {
    const parts: string[] = [];
    for (let k = 0; k < this.copies.length; k++) {
      if (this.counts[k] > 0) parts.push(`FAT ${this.copies[k]} differs from FAT ${this.g.activeFat} in ${this.counts[k]} ${this.counts[k] === 1 ? 'entry' : 'entries'} (first: cluster ${this.firsts[k]})`);
    }
    if (parts.length === 0) return null;
    return { kind: 'fat-mismatch', message: parts.join('; '), ranges: this.ranges.build() };
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array, from: number): boolean {
  return Buffer.from(a.buffer, a.byteOffset + from, a.length - from).equals(Buffer.from(b.buffer, b.byteOffset + from, b.length - from));
}

function interrupted(): Error {
  return new VhdToolError('INTERRUPTED', 'interrupted');
}

/** Size of the windows `FatCursor` keeps (a multiple of 3, 2 and 4). */
const CURSOR_WINDOW = 48 * 1024;

/**
 * Single entries of the active FAT, read through a one-window cache (a
 * chain followed for readContent mostly moves forward through the FAT).
 */
export class FatCursor {
  private window: Uint8Array | null = null;
  private windowStart = -1;
  private readonly used: number;

  constructor(private readonly src: ByteSource, private readonly g: FatGeometry) {
    this.used = fatUsedBytes(g);
  }

  /** Entry of cluster `c` (2 .. clusterCount + 1), masked. */
  async entry(c: number): Promise<number> {
    const byte = entryByte(this.g.kind, c);
    const start = byte - (byte % CURSOR_WINDOW);
    if (this.windowStart !== start || this.window === null) {
      const len = Math.min(CURSOR_WINDOW, this.used - start);
      this.window = await readChecked(this.src, fatCopyStart(this.g, this.g.activeFat) + start, len, `FAT ${this.g.activeFat}`);
      this.windowStart = start;
    }
    return entryAt(this.g.kind, this.window, start, c);
  }
}
