/**
 * MFT record headers and the update-sequence fixups that protect them.
 * Pure: works in place on a buffer holding one or more records.
 *
 * Every 512-byte stride of a record (always 512, whatever the sector size:
 * ntfs-3g NTFS_BLOCK_SIZE) ends with the update sequence number; the true
 * last two bytes are kept in the update sequence array. A stride whose last
 * two bytes differ from the number was not written with the rest: the
 * record is torn and must not be trusted.
 */
import { u16, u32, refRecord, refSeq } from './bytes.js';

const STRIDE = 512;
export const MAGIC_FILE = 0x454c4946; // "FILE"
export const MAGIC_BAAD = 0x44414142; // "BAAD": torn, as chkdsk marks it

export const RECORD_IN_USE = 0x0001;
export const RECORD_IS_DIRECTORY = 0x0002;

/** What the fixups found: ok, a torn stride, or a header whose update sequence array cannot be right. */
export type FixupResult = 'ok' | 'torn' | 'bad';

/** Applies the fixups of the multi-sector structure of `size` bytes at `off` in place. */
export function applyFixups(b: Uint8Array, off: number, size: number): FixupResult {
  const usaOfs = u16(b, off + 4);
  const usaCount = u16(b, off + 6);
  if (size % STRIDE !== 0 || usaCount !== size / STRIDE + 1) return 'bad';
  if (usaOfs & 1 || usaOfs < 8 || usaOfs + 2 * usaCount > STRIDE - 2) return 'bad';
  const usn0 = b[off + usaOfs];
  const usn1 = b[off + usaOfs + 1];
  for (let i = 1; i < usaCount; i++) {
    const end = off + i * STRIDE - 2;
    if (b[end] !== usn0 || b[end + 1] !== usn1) return 'torn';
  }
  for (let i = 1; i < usaCount; i++) {
    const end = off + i * STRIDE - 2;
    const saved = off + usaOfs + 2 * i;
    b[end] = b[saved];
    b[end + 1] = b[saved + 1];
  }
  return 'ok';
}

export interface RecordHeader {
  magic: number;
  sequence: number;
  linkCount: number;
  attrsOffset: number;
  flags: number;
  bytesInUse: number;
  bytesAllocated: number;
  baseRecord: number;
  baseSequence: number;
  /** The record's own number (NTFS 3.1 records; -1 on older ones). */
  number: number;
}

export function recordMagic(b: Uint8Array, off: number): number {
  return u32(b, off);
}

export function recordFlags(b: Uint8Array, off: number): number {
  return u16(b, off + 22);
}

export function readHeader(b: Uint8Array, off: number): RecordHeader {
  const h: RecordHeader = { magic: 0, sequence: 0, linkCount: 0, attrsOffset: 0, flags: 0, bytesInUse: 0, bytesAllocated: 0, baseRecord: 0, baseSequence: 0, number: 0 };
  readHeaderInto(b, off, h);
  return h;
}

/** Fills `h` from the record at `off` (the MFT pass reuses one object). */
export function readHeaderInto(b: Uint8Array, off: number, h: RecordHeader): void {
  h.magic = u32(b, off);
  h.sequence = u16(b, off + 16);
  h.linkCount = u16(b, off + 18);
  h.attrsOffset = u16(b, off + 20);
  h.flags = u16(b, off + 22);
  h.bytesInUse = u32(b, off + 24);
  h.bytesAllocated = u32(b, off + 28);
  h.baseRecord = refRecord(b, off + 32);
  h.baseSequence = refSeq(b, off + 32);
  h.number = u16(b, off + 4) >= 0x30 ? u32(b, off + 44) : -1;
}

/**
 * Why a record whose fixups passed still cannot be read (null when it can):
 * the attribute area must lie inside the record.
 */
export function headerProblem(h: RecordHeader, recordSize: number, expected: number): string | null {
  if (h.bytesAllocated !== recordSize) return `allocated size ${h.bytesAllocated} is not the record size ${recordSize}`;
  if (h.bytesInUse > recordSize || h.bytesInUse < h.attrsOffset + 4) return `bytes in use (${h.bytesInUse}) is out of range`;
  if (h.attrsOffset & 7 || h.attrsOffset < 0x2a) return `attribute offset ${h.attrsOffset} is invalid`;
  if (h.number !== -1 && h.number !== expected % 0x100000000) return `it calls itself record ${h.number}`;
  return null;
}
