/**
 * Sector bitmaps: one bit per sector of a block, most significant bit first
 * (sector 0 of the block is bit 0x80 of byte 0), padded to a whole sector.
 * In a differencing disk, 1 means "this sector lives in this file" and 0 means
 * "read it from the parent"; in a dynamic disk, 0 means "never written" (zero).
 */
import { SECTOR } from './constants.js';
import { roundUp } from './bytes.js';

/** Sectors in a block of `blockSize` bytes. */
export function sectorsPerBlock(blockSize: number): number {
  return blockSize / SECTOR;
}

/** Bytes of a block's bitmap on disk: one bit per sector, rounded up to a sector. */
export function bitmapBytes(blockSize: number): number {
  return roundUp(Math.ceil(sectorsPerBlock(blockSize) / 8), SECTOR);
}

export function testBit(bm: Uint8Array, i: number): boolean {
  return (bm[i >>> 3] & (0x80 >>> (i & 7))) !== 0;
}

export function setBit(bm: Uint8Array, i: number): void {
  bm[i >>> 3] |= 0x80 >>> (i & 7);
}

export function clearBit(bm: Uint8Array, i: number): void {
  bm[i >>> 3] &= ~(0x80 >>> (i & 7)) & 0xff;
}

/** Sets bits [start, start+count). */
export function setRange(bm: Uint8Array, start: number, count: number): void {
  let i = start;
  const end = start + count;
  while (i < end && (i & 7) !== 0) setBit(bm, i++);
  while (i + 8 <= end) { bm[i >>> 3] = 0xff; i += 8; }
  while (i < end) setBit(bm, i++);
}

const POPCOUNT = new Uint8Array(256);
for (let i = 0; i < 256; i++) POPCOUNT[i] = (i & 1) + POPCOUNT[i >>> 1];

/** Number of bits set among the first `n` bits. */
export function countBits(bm: Uint8Array, n = bm.length * 8): number {
  let c = 0;
  const full = n >>> 3;
  for (let i = 0; i < full; i++) c += POPCOUNT[bm[i]];
  for (let i = full * 8; i < n; i++) if (testBit(bm, i)) c++;
  return c;
}

/** True when any of the first `n` bits is set. */
export function anyBitSet(bm: Uint8Array, n = bm.length * 8): boolean {
  const full = n >>> 3;
  for (let i = 0; i < full; i++) if (bm[i] !== 0) return true;
  for (let i = full * 8; i < n; i++) if (testBit(bm, i)) return true;
  return false;
}

/** True when all of bits [start, start+count) are set. */
export function allBitsSet(bm: Uint8Array, start: number, count: number): boolean {
  for (let i = start; i < start + count; i++) {
    if ((i & 7) === 0 && i + 8 <= start + count) {
      if (bm[i >>> 3] !== 0xff) return false;
      i += 7;
      continue;
    }
    if (!testBit(bm, i)) return false;
  }
  return true;
}

/**
 * End of the run of bits equal to bit `i`, looking no further than `end`:
 * the first j in (i, end] with bit j different (or end). Whole bytes of
 * the run are skipped at once.
 */
export function runEnd(bm: Uint8Array, i: number, end: number): number {
  const v = testBit(bm, i);
  const fill = v ? 0xff : 0;
  let j = i + 1;
  while (j < end) {
    if ((j & 7) === 0) {
      while (j + 8 <= end && bm[j >>> 3] === fill) j += 8;
      if (j >= end) break;
    }
    if (testBit(bm, j) !== v) break;
    j++;
  }
  return Math.min(j, end);
}

/**
 * Calls `fn(start, count, set)` for each maximal run of equal bits within
 * [from, from+n). Runs are reported in order and cover the range exactly.
 */
export function forEachRun(bm: Uint8Array, from: number, n: number, fn: (start: number, count: number, set: boolean) => void): void {
  const end = from + n;
  let i = from;
  while (i < end) {
    const j = runEnd(bm, i, end);
    fn(i, j - i, testBit(bm, i));
    i = j;
  }
}
