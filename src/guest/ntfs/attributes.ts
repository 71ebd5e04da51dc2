/**
 * The attributes of an MFT record, and the values the reader needs from
 * them ($FILE_NAME, $ATTRIBUTE_LIST entries, $VOLUME_INFORMATION). Pure:
 * every offset and length is checked against the record before it is used.
 */
import { u16, u32, u64, refRecord, refSeq, utf16 } from './bytes.js';

export const AT_STANDARD_INFORMATION = 0x10;
export const AT_ATTRIBUTE_LIST = 0x20;
export const AT_FILE_NAME = 0x30;
export const AT_VOLUME_NAME = 0x60;
export const AT_VOLUME_INFORMATION = 0x70;
export const AT_DATA = 0x80;
export const AT_INDEX_ROOT = 0x90;
export const AT_INDEX_ALLOCATION = 0xa0;
const AT_END = 0xffffffff;

export const ATTR_COMPRESSED = 0x0001;
export const ATTR_ENCRYPTED = 0x4000;
export const ATTR_SPARSE = 0x8000;

/** One attribute as the walker sees it; offsets are absolute in the record's buffer. */
export interface Attr {
  type: number;
  offset: number;
  length: number;
  nonResident: boolean;
  nameLength: number;
  nameOffset: number;
  flags: number;
  /** Number of the attribute within its record (creation order). */
  instance: number;
  /** Resident: the value's place. */
  valueOffset: number;
  valueLength: number;
  /** Non-resident: the extent's VCNs, its mapping pairs and sizes. */
  lowestVcn: number;
  highestVcn: number;
  runsOffset: number;
  runsEnd: number;
  allocatedSize: number;
  dataSize: number;
  initializedSize: number;
  compressionUnit: number;
}

export function blankAttr(): Attr {
  return {
    type: 0, offset: 0, length: 0, nonResident: false, nameLength: 0, nameOffset: 0, flags: 0, instance: 0,
    valueOffset: 0, valueLength: 0, lowestVcn: 0, highestVcn: -1, runsOffset: 0, runsEnd: 0,
    allocatedSize: 0, dataSize: 0, initializedSize: 0, compressionUnit: 0,
  };
}

export function attrName(b: Uint8Array, a: Attr): string {
  return a.nameLength ? utf16(b, a.nameOffset, a.nameLength) : '';
}

/**
 * Calls `visit` for each attribute of the record at `rec` whose attributes
 * start at `rec + attrsOffset` and end before `rec + bytesInUse`. The Attr
 * object is reused between calls. Returns null, or what is wrong (the walk
 * stops at the first bad attribute; those before it were visited). `a` may
 * be passed in to be reused across records.
 */
export function walkAttributes(
  b: Uint8Array, rec: number, attrsOffset: number, bytesInUse: number, visit: (a: Attr) => void, a: Attr = blankAttr(),
): string | null {
  const end = rec + bytesInUse;
  let p = rec + attrsOffset;
  for (;;) {
    if (p + 4 > end) return 'attributes run past the bytes in use';
    const type = u32(b, p);
    if (type === AT_END) return null;
    if (p + 16 > end) return 'attribute header runs past the bytes in use';
    const length = u32(b, p + 4);
    if (length < 24 || length & 7 || p + length > end) return `attribute 0x${type.toString(16)} has an invalid length ${length}`;
    a.type = type;
    a.offset = p;
    a.length = length;
    a.nonResident = b[p + 8] !== 0;
    a.nameLength = b[p + 9];
    a.nameOffset = p + u16(b, p + 10);
    a.flags = u16(b, p + 12);
    a.instance = u16(b, p + 14);
    if (a.nameLength && (a.nameOffset < p + 16 || a.nameOffset + 2 * a.nameLength > p + length)) {
      return `attribute 0x${type.toString(16)} has its name outside itself`;
    }
    const problem = a.nonResident ? nonResident(b, p, length, a) : resident(b, p, length, a);
    if (problem) return `attribute 0x${type.toString(16)}: ${problem}`;
    visit(a);
    p += length;
  }
}

function resident(b: Uint8Array, p: number, length: number, a: Attr): string | null {
  a.valueLength = u32(b, p + 16);
  a.valueOffset = p + u16(b, p + 20);
  if (a.valueOffset < p + 24 || a.valueOffset + a.valueLength > p + length) return 'its value lies outside itself';
  a.lowestVcn = 0;
  a.highestVcn = -1;
  a.dataSize = a.valueLength;
  a.allocatedSize = a.valueLength;
  a.initializedSize = a.valueLength;
  return null;
}

function nonResident(b: Uint8Array, p: number, length: number, a: Attr): string | null {
  if (length < 64) return 'non-resident header is too short';
  a.lowestVcn = u64(b, p + 16);
  const hv = u32(b, p + 24) === 0xffffffff && u32(b, p + 28) === 0xffffffff ? -1 : u64(b, p + 24);
  a.highestVcn = hv;
  const mp = u16(b, p + 32);
  a.runsOffset = p + mp;
  a.runsEnd = p + length;
  a.compressionUnit = b[p + 34];
  a.allocatedSize = u64(b, p + 40);
  a.dataSize = u64(b, p + 48);
  a.initializedSize = u64(b, p + 56);
  a.valueOffset = 0;
  a.valueLength = 0;
  if (a.lowestVcn < 0 || (hv < 0 && hv !== -1) || hv < a.lowestVcn - 1) return `VCN range ${a.lowestVcn}..${hv} is invalid`;
  if (mp < 64 || mp > length) return 'mapping pairs lie outside the attribute';
  if (a.lowestVcn === 0 && (a.allocatedSize < 0 || a.dataSize < 0 || a.initializedSize < 0 || a.initializedSize > a.dataSize || a.dataSize > a.allocatedSize)) {
    return 'sizes are invalid';
  }
  return null;
}

export interface FileName {
  parentRecord: number;
  parentSeq: number;
  /** 0 POSIX, 1 Win32, 2 DOS, 3 Win32 and DOS. */
  namespace: number;
  name: string;
  flags: number;
}

export const NS_DOS = 2;

/** The $FILE_NAME value at `a` (resident), or null when it does not fit. */
export function fileName(b: Uint8Array, a: Attr): FileName | null {
  if (a.nonResident || a.valueLength < 0x42) return null;
  const v = a.valueOffset;
  const chars = b[v + 0x40];
  if (0x42 + 2 * chars > a.valueLength || chars === 0) return null;
  return {
    parentRecord: refRecord(b, v),
    parentSeq: refSeq(b, v),
    namespace: b[v + 0x41],
    name: utf16(b, v + 0x42, chars),
    flags: u32(b, v + 0x38),
  };
}

export interface ListEntry {
  type: number;
  name: string;
  lowestVcn: number;
  record: number;
  sequence: number;
}

/** The entries of an $ATTRIBUTE_LIST value; stops at the first malformed entry and says so. */
export function listEntries(v: Uint8Array): { entries: ListEntry[]; problem: string | null } {
  const entries: ListEntry[] = [];
  let p = 0;
  while (p + 26 <= v.length) {
    const type = u32(v, p);
    const len = u16(v, p + 4);
    if (len < 26 || p + len > v.length) return { entries, problem: `attribute list entry at +${p} has an invalid length ${len}` };
    const nameLength = v[p + 6];
    const nameOffset = v[p + 7];
    if (nameLength && nameOffset + 2 * nameLength > len) return { entries, problem: `attribute list entry at +${p} has its name outside itself` };
    const lowestVcn = u64(v, p + 8);
    if (lowestVcn < 0) return { entries, problem: `attribute list entry at +${p} has an invalid VCN` };
    entries.push({
      type, lowestVcn,
      name: nameLength ? utf16(v, p + nameOffset, nameLength) : '',
      record: refRecord(v, p + 16),
      sequence: refSeq(v, p + 16),
    });
    p += len;
  }
  return { entries, problem: null };
}

/** $VOLUME_INFORMATION flags (0x0001: dirty), or -1 when the value is too short. */
export function volumeFlags(b: Uint8Array, a: Attr): number {
  if (a.nonResident || a.valueLength < 12) return -1;
  return u16(b, a.valueOffset + 10);
}
