/**
 * The hard disk footer: 512 bytes at the end of every VHD (511 bytes in files
 * from Virtual PC before 2004), mirrored at offset 0 in dynamic and
 * differencing disks.
 *
 * | off | size | field                  |
 * |-----|------|------------------------|
 * |   0 |    8 | cookie "conectix"      |
 * |   8 |    4 | features               |
 * |  12 |    4 | file format version    |
 * |  16 |    8 | data offset            |
 * |  24 |    4 | time stamp             |
 * |  28 |    4 | creator application    |
 * |  32 |    4 | creator version        |
 * |  36 |    4 | creator host OS        |
 * |  40 |    8 | original size          |
 * |  48 |    8 | current size           |
 * |  56 |    4 | disk geometry (C/H/S)  |
 * |  60 |    4 | disk type              |
 * |  64 |    4 | checksum               |
 * |  68 |   16 | unique id              |
 * |  84 |    1 | saved state            |
 * |  85 |  427 | reserved               |
 */
import { FormatError } from '../errors.js';
import { isAllOnes64, latin1, putAllOnes64, putLatin1, putU16, putU32, putU64, u16, u32, u64 } from './bytes.js';
import { vhdChecksum } from './checksum.js';
import { DISK_TYPE_CODES, FOOTER_SIZE, SHORT_FOOTER_SIZE } from './constants.js';
import type { Geometry } from './geometry.js';
import { decodeUuid, encodeUuid, type Uuid } from './uuid.js';
import type { VhdTime } from './time.js';

export type DiskType = 'fixed' | 'dynamic' | 'differencing';

export interface Footer {
  /** Should be "conectix". */
  cookie: string;
  /** Bit 0x1: temporary disk; bit 0x2: reserved, always set. */
  features: number;
  /** 0x00010000 for every known producer. */
  formatVersion: number;
  /** Absolute byte offset of the dynamic header; null for the all-ones marker (fixed disks). */
  dataOffset: number | null;
  /** Creation time, seconds since 2000-01-01 UTC. */
  timestamp: VhdTime;
  /** Four characters: "win ", "vpc ", "qemu", "tap\0", "d2v\0" ... */
  creatorApplication: string;
  /** major << 16 | minor. */
  creatorVersion: number;
  /** Four characters: "Wi2k" or "Mac ". */
  creatorHostOs: string;
  /** Size in bytes at creation (informational). */
  originalSize: number;
  /** Virtual size in bytes: what the guest sees. */
  currentSize: number;
  geometry: Geometry;
  /** Disk type; an unknown code is kept as its number. */
  diskType: DiskType | number;
  /** Checksum as stored in the file. */
  checksum: number;
  uniqueId: Uuid;
  /** 1 when the virtual machine was saved with this disk attached. */
  savedState: number;
  /** The 427 reserved bytes from offset 85 (blktap keeps a "hidden" flag in the first). */
  reserved: Uint8Array;
}

const TYPE_BY_CODE = new Map<number, DiskType>([
  [DISK_TYPE_CODES.fixed, 'fixed'],
  [DISK_TYPE_CODES.dynamic, 'dynamic'],
  [DISK_TYPE_CODES.differencing, 'differencing'],
]);

export const FOOTER_CHECKSUM_OFFSET = 64;

function safe(v: number | null, field: string): number {
  if (v === null) throw new FormatError(`footer ${field} is larger than 2^53 bytes`);
  return v;
}

/**
 * Decodes a footer from 512 bytes (or 511, for pre-2004 Virtual PC files).
 * It does not validate: see `footerIssues` in check/rules, and `footerChecksumOk`.
 */
export function decodeFooter(bytes: Uint8Array): Footer {
  if (bytes.length !== FOOTER_SIZE && bytes.length !== SHORT_FOOTER_SIZE) {
    throw new FormatError(`footer must be 512 or 511 bytes, got ${bytes.length}`, undefined, 'TRUNCATED');
  }
  const b = bytes.length === FOOTER_SIZE ? bytes : padFooter(bytes);
  const code = u32(b, 60);
  return {
    cookie: latin1(b, 0, 8),
    features: u32(b, 8),
    formatVersion: u32(b, 12),
    dataOffset: isAllOnes64(b, 16) ? null : safe(u64(b, 16), 'data offset'),
    timestamp: u32(b, 24),
    creatorApplication: latin1(b, 28, 4),
    creatorVersion: u32(b, 32),
    creatorHostOs: latin1(b, 36, 4),
    originalSize: safe(u64(b, 40), 'original size'),
    currentSize: safe(u64(b, 48), 'current size'),
    geometry: { cylinders: u16(b, 56), heads: b[58], sectorsPerTrack: b[59] },
    diskType: TYPE_BY_CODE.get(code) ?? code,
    checksum: u32(b, 64),
    uniqueId: decodeUuid(b, 68),
    savedState: b[84],
    reserved: b.slice(85, 512),
  };
}

function padFooter(bytes: Uint8Array): Uint8Array {
  const b = new Uint8Array(FOOTER_SIZE);
  b.set(bytes);
  return b;
}

export function diskTypeCode(t: DiskType | number): number {
  return typeof t === 'number' ? t : DISK_TYPE_CODES[t];
}

/** Encodes a footer into 512 bytes, writing the checksum field as stored in `f`. */
export function encodeFooter(f: Footer): Uint8Array {
  const b = new Uint8Array(FOOTER_SIZE);
  putLatin1(b, 0, 8, f.cookie);
  putU32(b, 8, f.features);
  putU32(b, 12, f.formatVersion);
  if (f.dataOffset === null) putAllOnes64(b, 16);
  else putU64(b, 16, f.dataOffset);
  putU32(b, 24, f.timestamp);
  putLatin1(b, 28, 4, f.creatorApplication);
  putU32(b, 32, f.creatorVersion);
  putLatin1(b, 36, 4, f.creatorHostOs);
  putU64(b, 40, f.originalSize);
  putU64(b, 48, f.currentSize);
  putU16(b, 56, f.geometry.cylinders);
  b[58] = f.geometry.heads;
  b[59] = f.geometry.sectorsPerTrack;
  putU32(b, 60, diskTypeCode(f.diskType));
  putU32(b, 64, f.checksum);
  encodeUuid(f.uniqueId, b, 68);
  b[84] = f.savedState;
  b.set(f.reserved.subarray(0, 427), 85);
  return b;
}

/** The checksum the footer should carry. */
export function computeFooterChecksum(f: Footer): number {
  return vhdChecksum(encodeFooter(f), FOOTER_CHECKSUM_OFFSET);
}

export function footerChecksumOk(f: Footer): boolean {
  return computeFooterChecksum(f) === f.checksum;
}

/** Returns `f` with its checksum recomputed. */
export function sealFooter(f: Footer): Footer {
  return { ...f, checksum: computeFooterChecksum(f) };
}
