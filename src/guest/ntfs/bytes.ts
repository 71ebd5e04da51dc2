/** Little-endian field readers for NTFS structures (bounds are the caller's to check). */

export function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

export function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16)) + b[o + 3] * 0x1000000;
}

/** An unsigned 64-bit field as a number, or -1 when it is 2^53 or more (no NTFS quantity is). */
export function u64(b: Uint8Array, o: number): number {
  const hi = u32(b, o + 4);
  if (hi >= 0x200000) return -1;
  return hi * 0x100000000 + u32(b, o);
}

/** A 48-bit MFT reference's record number (the low 6 bytes of a file reference). */
export function refRecord(b: Uint8Array, o: number): number {
  return u32(b, o) + u16(b, o + 4) * 0x100000000;
}

/** A file reference's sequence number (its top 2 bytes). */
export function refSeq(b: Uint8Array, o: number): number {
  return u16(b, o + 6);
}

/** Code units of the string being decoded (reused: one string is made per call, not one per character). */
const units: number[] = [];

/** UTF-16LE text of `chars` characters at `o` (code units as they are: a lone surrogate stays one). */
export function utf16(b: Uint8Array, o: number, chars: number): string {
  units.length = chars;
  for (let i = 0; i < chars; i++) units[i] = b[o + 2 * i] | (b[o + 2 * i + 1] << 8);
  return String.fromCharCode.apply(null, units);
}
