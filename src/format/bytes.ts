/** Big-endian field access over Uint8Array, shared by the codecs. */

export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function u32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) >>> 0) + ((b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]);
}

export function putU32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

export function u16(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}

export function putU16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

/** True when the 8 bytes at `off` are all 0xFF (the "no offset" marker). */
export function isAllOnes64(b: Uint8Array, off: number): boolean {
  for (let i = 0; i < 8; i++) if (b[off + i] !== 0xff) return false;
  return true;
}

/**
 * Reads an unsigned 64-bit big-endian value as a number. Values above
 * Number.MAX_SAFE_INTEGER cannot be represented exactly and yield `null`;
 * callers turn that into a format error naming the field.
 */
export function u64(b: Uint8Array, off: number): number | null {
  const hi = u32(b, off);
  const lo = u32(b, off + 4);
  if (hi > 0x1fffff) return null;
  return hi * 0x100000000 + lo;
}

export function putU64(b: Uint8Array, off: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`cannot encode ${v} as u64`);
  putU32(b, off, Math.floor(v / 0x100000000));
  putU32(b, off + 4, v >>> 0);
}

export function putAllOnes64(b: Uint8Array, off: number): void {
  for (let i = 0; i < 8; i++) b[off + i] = 0xff;
}

/** Reads `len` bytes as a latin1 string (each byte one char; round-trips any bytes). */
export function latin1(b: Uint8Array, off: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(b[off + i]);
  return s;
}

export function putLatin1(b: Uint8Array, off: number, len: number, s: string): void {
  for (let i = 0; i < len; i++) b[off + i] = i < s.length ? s.charCodeAt(i) & 0xff : 0;
}

export function isZero(b: Uint8Array, off = 0, len = b.length - off): boolean {
  for (let i = off; i < off + len; i++) if (b[i] !== 0) return false;
  return true;
}

export function hex32(v: number): string {
  return '0x' + (v >>> 0).toString(16).padStart(8, '0');
}

export function hex(v: number): string {
  return '0x' + v.toString(16);
}

/** Rounds `v` up to a multiple of `m` (m > 0). */
export function roundUp(v: number, m: number): number {
  return Math.ceil(v / m) * m;
}

export function isPowerOfTwo(v: number): boolean {
  if (!Number.isSafeInteger(v) || v <= 0) return false;
  while (v % 2 === 0) v /= 2;
  return v === 1;
}
