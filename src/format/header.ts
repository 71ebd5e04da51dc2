/**
 * The dynamic disk header: 1024 bytes at the footer's data offset, present in
 * dynamic and differencing disks.
 *
 * | off | size | field                                   |
 * |-----|------|-----------------------------------------|
 * |   0 |    8 | cookie "cxsparse"                       |
 * |   8 |    8 | data offset (unused, all ones)          |
 * |  16 |    8 | table offset: byte offset of the BAT    |
 * |  24 |    4 | header version                          |
 * |  28 |    4 | max table entries                       |
 * |  32 |    4 | block size (data bytes per block)       |
 * |  36 |    4 | checksum                                |
 * |  40 |   16 | parent unique id                        |
 * |  56 |    4 | parent time stamp                       |
 * |  60 |    4 | reserved                                |
 * |  64 |  512 | parent unicode name (UTF-16BE)          |
 * | 576 | 8x24 | parent locator entries                  |
 * | 768 |  256 | reserved                                |
 */
import { FormatError } from '../errors.js';
import { isAllOnes64, latin1, putAllOnes64, putLatin1, putU32, putU64, u32, u64 } from './bytes.js';
import { vhdChecksum } from './checksum.js';
import { HEADER_SIZE, LOCATOR_COUNT, LOCATOR_ENTRY_SIZE, PARENT_NAME_SIZE } from './constants.js';
import { decodeLocatorEntry, encodeLocatorEntry, type LocatorEntry } from './locator.js';
import { decodeUuid, encodeUuid, NULL_UUID, type Uuid } from './uuid.js';
import type { VhdTime } from './time.js';

export interface DynamicHeader {
  /** Should be "cxsparse". */
  cookie: string;
  /** Unused by the format; all ones (null) in every valid file. */
  dataOffset: number | null;
  /** Absolute byte offset of the block allocation table. */
  tableOffset: number;
  /** 0x00010000. */
  headerVersion: number;
  /** Number of BAT entries; at least ceil(currentSize / blockSize). */
  maxTableEntries: number;
  /** Data bytes per block, excluding the sector bitmap; a power of two. */
  blockSize: number;
  /** Checksum as stored in the file. */
  checksum: number;
  /** UUID of the parent disk; null when all zero (dynamic disks). */
  parentUniqueId: Uuid | null;
  /** Parent's modification time, seconds since 2000-01-01 UTC. */
  parentTimestamp: VhdTime;
  /** The reserved u32 at offset 60. */
  reserved1: number;
  /** The parent's file name, decoded from UTF-16BE up to the first NUL. */
  parentUnicodeName: string;
  /** Always eight entries; unused ones have platform null. */
  locators: LocatorEntry[];
  /** The 256 reserved bytes at offset 768. */
  reserved2: Uint8Array;
}

export const HEADER_CHECKSUM_OFFSET = 36;

/** Decodes a dynamic header from 1024 bytes. It does not validate. */
export function decodeHeader(b: Uint8Array): DynamicHeader {
  if (b.length !== HEADER_SIZE) throw new FormatError(`dynamic header must be 1024 bytes, got ${b.length}`, undefined, 'TRUNCATED');
  const tableOffset = u64(b, 16);
  if (tableOffset === null) throw new FormatError('dynamic header table offset is larger than 2^53');
  let dataOffset: number | null = null;
  if (!isAllOnes64(b, 8)) {
    dataOffset = u64(b, 8);
    if (dataOffset === null) throw new FormatError('dynamic header data offset is larger than 2^53 and not all ones');
  }
  const parentId = decodeUuid(b, 40);
  const locators: LocatorEntry[] = [];
  for (let i = 0; i < LOCATOR_COUNT; i++) locators.push(decodeLocatorEntry(b, 576 + i * LOCATOR_ENTRY_SIZE));
  return {
    cookie: latin1(b, 0, 8),
    dataOffset,
    tableOffset,
    headerVersion: u32(b, 24),
    maxTableEntries: u32(b, 28),
    blockSize: u32(b, 32),
    checksum: u32(b, 36),
    parentUniqueId: parentId === NULL_UUID ? null : parentId,
    parentTimestamp: u32(b, 56),
    reserved1: u32(b, 60),
    parentUnicodeName: decodeUtf16BeName(b.subarray(64, 64 + PARENT_NAME_SIZE)),
    locators,
    reserved2: b.slice(768, 1024),
  };
}

/** Encodes a header into 1024 bytes, writing the checksum field as stored in `h`. */
export function encodeHeader(h: DynamicHeader): Uint8Array {
  const b = new Uint8Array(HEADER_SIZE);
  putLatin1(b, 0, 8, h.cookie);
  if (h.dataOffset === null) putAllOnes64(b, 8);
  else putU64(b, 8, h.dataOffset);
  putU64(b, 16, h.tableOffset);
  putU32(b, 24, h.headerVersion);
  putU32(b, 28, h.maxTableEntries);
  putU32(b, 32, h.blockSize);
  putU32(b, 36, h.checksum);
  encodeUuid(h.parentUniqueId ?? NULL_UUID, b, 40);
  putU32(b, 56, h.parentTimestamp);
  putU32(b, 60, h.reserved1);
  b.set(encodeUtf16BeName(h.parentUnicodeName), 64);
  if (h.locators.length !== LOCATOR_COUNT) throw new RangeError('a header has exactly 8 locator entries');
  h.locators.forEach((l, i) => encodeLocatorEntry(l, b, 576 + i * LOCATOR_ENTRY_SIZE));
  b.set(h.reserved2.subarray(0, 256), 768);
  return b;
}

export function computeHeaderChecksum(h: DynamicHeader): number {
  return vhdChecksum(encodeHeader(h), HEADER_CHECKSUM_OFFSET);
}

/**
 * The checksum of a header as stored: over the raw bytes, which may hold what
 * decoding does not keep (bytes after the NUL that ends the parent name).
 */
export function storedHeaderChecksum(b: Uint8Array): number {
  return vhdChecksum(b, HEADER_CHECKSUM_OFFSET, 1024);
}

export function headerChecksumOk(h: DynamicHeader): boolean {
  return computeHeaderChecksum(h) === h.checksum;
}

export function sealHeader(h: DynamicHeader): DynamicHeader {
  return { ...h, checksum: computeHeaderChecksum(h) };
}

/** Decodes UTF-16BE code units up to the first NUL. Unpaired surrogates are kept. */
export function decodeUtf16BeName(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i + 1 < b.length; i += 2) {
    const c = (b[i] << 8) | b[i + 1];
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

/** Encodes a name as UTF-16BE into the 512-byte field (at most 256 code units). */
export function encodeUtf16BeName(s: string): Uint8Array {
  if (s.length > PARENT_NAME_SIZE / 2) throw new RangeError(`parent name longer than ${PARENT_NAME_SIZE / 2} UTF-16 code units`);
  const b = new Uint8Array(PARENT_NAME_SIZE);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    b[i * 2] = c >>> 8;
    b[i * 2 + 1] = c & 0xff;
  }
  return b;
}
