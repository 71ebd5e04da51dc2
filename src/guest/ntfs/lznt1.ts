/**
 * LZNT1, the compression of NTFS compressed attributes. Pure.
 *
 * A compressed attribute is cut into compression units (usually 16
 * clusters). A unit whose clusters are all allocated is stored as is; a unit
 * wholly sparse is zeros; a unit with allocated clusters followed by sparse
 * ones holds LZNT1 data in the allocated part. LZNT1 data is a series of
 * chunks, each of at most 4096 bytes when decompressed: a 2-byte header
 * (bit 15: compressed; bits 12..14: 3; bits 0..11: the chunk's size with its header, less 3; 0 ends the data), then
 * either the 4096 raw bytes or groups of a flag byte and eight items, each a
 * literal byte (flag bit 0) or a 2-byte back-reference (flag bit 1) whose
 * split between offset and length depends on how far into the chunk it is.
 */
import { GuestError } from '../errors.js';

const CHUNK = 4096;

/** Decompresses `src` into `out` (the unit's size); returns the bytes produced (the rest of `out` is zeros). */
export function lznt1(src: Uint8Array, out: Uint8Array): number {
  let p = 0;
  let o = 0;
  while (p + 2 <= src.length && o < out.length) {
    const h = src[p] | (src[p + 1] << 8);
    if (h === 0) break;
    const size = (h & 0x0fff) + 1;
    const start = p + 2;
    const end = start + size;
    if (end > src.length) throw new GuestError('compressed data: a chunk runs past its compression unit');
    const chunkEnd = Math.min(out.length, o + CHUNK);
    if (!(h & 0x8000)) {
      const n = Math.min(size, chunkEnd - o);
      out.set(src.subarray(start, start + n), o);
      o += n;
    } else {
      o = chunk(src, start, end, out, o, chunkEnd);
    }
    p = end;
  }
  return o;
}

/** One compressed chunk from src[p, end) into out[o, limit); returns the new end of output. */
function chunk(src: Uint8Array, p: number, end: number, out: Uint8Array, o: number, limit: number): number {
  const base = o;
  while (p < end && o < limit) {
    const flags = src[p++];
    for (let bit = 0; bit < 8 && p < end && o < limit; bit++) {
      if (!(flags & (1 << bit))) {
        out[o++] = src[p++];
        continue;
      }
      if (p + 2 > end) throw new GuestError('compressed data: a back-reference runs past its chunk');
      const token = src[p] | (src[p + 1] << 8);
      p += 2;
      let lengthBits = 12;
      for (let i = o - base - 1; i >= 0x10; i >>= 1) lengthBits--;
      const length = (token & ((1 << lengthBits) - 1)) + 3;
      const offset = (token >> lengthBits) + 1;
      if (offset > o - base) throw new GuestError('compressed data: a back-reference points before its chunk');
      for (let k = 0; k < length && o < limit; k++, o++) out[o] = out[o - offset];
    }
  }
  return o;
}
