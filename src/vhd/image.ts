/**
 * Opening one VHD file: read and decode the footer, its copy, the dynamic
 * header, the BAT and the parent locators, and validate every offset and size
 * before anything follows it.
 *
 * Memory is bounded by what the file holds: the BAT is read only after its
 * whole extent is known to lie inside the file, and only the entries the
 * virtual size needs are kept.
 */
import { FormatError, VhdToolError, asText, fromSystemError } from '../errors.js';
import {
  Bat, batBytes, bitmapBytes, decodeBat, decodeFooter, decodeHeader, decodeLocatorData, footerChecksumOk,
  storedHeaderChecksum, computeFooterChecksum, latin1, encodeFooter, hex, hex32, isPowerOfTwo,
  locatorSpaceBytes, roundUp, describeRegion, findOverlaps,
  FOOTER_COOKIE, FOOTER_SIZE, HEADER_COOKIE, HEADER_SIZE, HEADER_VERSION, FILE_FORMAT_VERSION, FEATURE_RESERVED,
  MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, POISON_COOKIE, SECTOR, SHORT_FOOTER_SIZE,
  type DiskType, type DynamicHeader, type Footer, type LocatorEntry, type LocatorValue, type Region, type Uuid,
} from '../format/index.js';
import { readAt, type FileStat, type FileSystem, type RandomAccessFile } from '../io/fsys.js';
import { zeroExtended } from '../io/zeroExtended.js';
import { journalOverlay, journalPathFor, overlayFile } from '../io/journal.js';
import { IssueList, type Issue } from './issues.js';

/** Longest locator data vhdtool reads (a 32767-character UTF-16 path plus slack). */
export const MAX_LOCATOR_BYTES = 65536 + 1024;

export interface LocatorInfo {
  /** Entry index 0..7 in the header. */
  index: number;
  entry: LocatorEntry;
  /** Reserved bytes by blktap's rule; null when ambiguous. */
  spaceBytes: number | null;
  spaceUnit: 'sectors' | 'bytes' | null;
  /** Raw locator data (dataLength bytes), or null when it could not be read. */
  data: Uint8Array | null;
  value: LocatorValue;
}

/** Everything known about one VHD file after opening it. Plain data. */
export interface VhdMeta {
  path: string;
  fileSize: number;
  type: DiskType;
  footer: Footer;
  /** Byte offset of the footer in use (the end footer, or the copy at 0 in lenient mode). */
  footerOffset: number;
  /** 512, or 511 for files from Virtual PC before 2004. */
  footerLength: number;
  /** The copy at offset 0 (dynamic and differencing disks), when it decodes. */
  footerCopy: Footer | null;
  /** Guest-visible size in bytes (the footer's current size). */
  virtualSize: number;
  header: DynamicHeader | null;
  blockSize: number | null;
  /** Blocks the virtual size needs: ceil(virtualSize / blockSize). */
  blockCount: number;
  /** Bytes of each block's bitmap. */
  bitmapSize: number;
  /** BAT entries for the first `blockCount` blocks. */
  bat: Bat | null;
  locators: LocatorInfo[];
  /** Byte ranges of the structures, for overlap checks and `info`. */
  regions: Region[];
  issues: Issue[];
  /** Lenient mode, a file cut inside its blocks: reads up to here return zeros past the end of the file. */
  zeroFilledTo?: number;
  /**
   * A raw disk image, not a VHD: read as a fixed disk whose data is the whole
   * file (src/vhd/raw.ts; only `rebase` opens these). Its footer is made up
   * and its UUID is null.
   */
  raw?: boolean;
}

export type OpenMode =
  /** Any error is fatal (the default for every command that changes or trusts data). */
  | 'strict'
  /** Checksum, mirror and locator errors become warnings; structure errors stay fatal. */
  | 'lenient'
  /** Nothing but unreadable structure throws; every finding is returned (used by check). */
  | 'collect';

export interface OpenOptions {
  mode?: OpenMode;
}

/** An open VHD: its metadata and a read-only handle. */
export interface Vhd {
  meta: VhdMeta;
  file: RandomAccessFile;
  close(): Promise<void>;
}

export async function openVhd(fs: FileSystem, path: string, opts: OpenOptions = {}): Promise<Vhd> {
  let st;
  try {
    st = await fs.stat(path);
  } catch (e) {
    throw fromSystemError(e, path, false);
  }
  if (st.isDirectory) throw new VhdToolError('NOT_A_FILE', 'is a directory, not a VHD file', path);
  if (!st.isFile) throw new VhdToolError('NOT_A_FILE', 'is not a regular file', path);
  // An in-place relink journals the bytes it rewrites beside the real file (io/journal.ts).
  const real = await fs.realpath(path).catch(() => path);
  for (let attempt = 0; ; attempt++) {
    let file: RandomAccessFile;
    try {
      file = await fs.openRead(path);
    } catch (e) {
      throw fromSystemError(e, path, false);
    }
    const issues = new IssueList();
    try {
      const overlay = await journalOverlay(fs, real, file);
      const view = overlay ? overlayFile(file, overlay) : file;
      const meta = await readMeta(view, path, opts.mode ?? 'strict', issues);
      // A relink that began and ended while the header and locators were read could have shown half
      // of each: read again when a journal appeared, or the file's status changed, meanwhile.
      if (!overlay && attempt < 2 && await changedMeanwhile(fs, path, real, st)) {
        await file.close();
        st = await fs.stat(path).catch(() => st!);
        continue;
      }
      // Lenient reads of a cut file: the bytes past its end read as zeros (each cut block was warned about).
      const readable = meta.zeroFilledTo !== undefined ? zeroExtended(view, meta.fileSize, meta.zeroFilledTo) : view;
      return { meta, file: readable, close: () => file.close() };
    } catch (e) {
      await file.close().catch(() => undefined);
      const err = e instanceof VhdToolError ? e.withPath(path) : fromSystemError(e, path, false);
      // Problems recorded before the one that stopped decoding (collect mode), for check to list them first.
      Object.defineProperty(err, EARLIER, { value: issues.errors, enumerable: false });
      throw err;
    }
  }
}

const EARLIER = Symbol('earlier issues');

/** The errors `openVhd` recorded (collect mode) before the error `e` stopped it, in the order found. */
export function earlierIssues(e: unknown): Issue[] {
  return (e as { [EARLIER]?: Issue[] } | null)?.[EARLIER] ?? [];
}

async function changedMeanwhile(fs: FileSystem, path: string, real: string, before: FileStat): Promise<boolean> {
  if (await fs.lstat(journalPathFor(real)).then(() => true, () => false)) return true;
  const now = await fs.stat(path).catch(() => null);
  return !now || now.ino !== before.ino || now.ctimeMs !== before.ctimeMs;
}

/** Fatal: the structure cannot be followed safely. */
function fatal(message: string, code: 'BAD_FORMAT' | 'TRUNCATED' | 'UNSUPPORTED' | 'BAD_CHECKSUM' = 'BAD_FORMAT'): never {
  throw new FormatError(message, undefined, code);
}

export async function readMeta(file: RandomAccessFile, path: string, mode: OpenMode, issues = new IssueList()): Promise<VhdMeta> {
  /** An error that strict mode refuses, lenient mode downgrades and collect mode records. */
  const problem = (rule: string, message: string, code: 'BAD_FORMAT' | 'BAD_CHECKSUM' = 'BAD_FORMAT') => {
    if (mode === 'strict') fatal(message, code);
    if (mode === 'lenient') issues.warn(rule, message);
    else issues.error(rule, message);
  };

  const fileSize = await file.size();
  if (fileSize === 0) fatal('file is empty, not a VHD', 'TRUNCATED');
  if (fileSize < SHORT_FOOTER_SIZE) fatal(`file is ${fileSize} bytes, too small to hold a VHD footer`, 'TRUNCATED');

  // --- Footer ------------------------------------------------------------
  const footerLength = fileSize % SECTOR === SHORT_FOOTER_SIZE ? SHORT_FOOTER_SIZE : FOOTER_SIZE;
  let footerOffset = fileSize - footerLength;
  const endBytes = await readAt(file, footerOffset, footerLength);
  // Decode the end footer only when it is one: a text file or a cut file is "not a VHD", not "a VHD with a bad field".
  const endCookie = latin1(endBytes, 0, 8);
  const endFooter = endCookie === FOOTER_COOKIE || endCookie === POISON_COOKIE ? decodeFooter(endBytes) : null;
  if (footerLength === SHORT_FOOTER_SIZE) issues.warn('footer-511', 'footer is 511 bytes (Virtual PC before 2004)');

  let footerCopy: Footer | null = null;
  let copyBytes: Uint8Array | null = null;
  if (fileSize >= FOOTER_SIZE * 2) {
    copyBytes = await readAt(file, 0, FOOTER_SIZE);
    const c = tryDecodeFooter(copyBytes);
    if (c && c.cookie === FOOTER_COOKIE) footerCopy = c;
  }

  if (endCookie === POISON_COOKIE) fatal('disk is marked busy by a journaled blktap operation (cookie "v_poison")', 'UNSUPPORTED');
  let footer: Footer;
  if (endFooter && endCookie === FOOTER_COOKIE) {
    footer = endFooter;
  } else {
    if (footerCopy && footerCopy.diskType !== 'fixed' && footerChecksumOk(footerCopy)) {
      if (mode !== 'lenient') fatal(`end footer is missing or corrupt (cookie ${asText(endCookie)}); the copy at offset 0 is intact`);
      issues.warn('footer-missing', 'end footer is missing or corrupt; using the copy at offset 0');
      footer = footerCopy;
      footerOffset = fileSize;
    } else {
      fatal(`not a VHD file: no "conectix" footer at offset ${footerOffset}`);
    }
  }

  if (!footerChecksumOk(footer)) {
    const computed = computeFooterChecksum(footer);
    if (isTapHiddenQuirk(footer)) {
      issues.warn('footer-checksum-tap-hidden', 'footer checksum ignores the blktap "hidden" byte (old tapdisk quirk)');
    } else {
      problem('footer-checksum', `footer checksum mismatch: stored ${hex32(footer.checksum)}, computed ${hex32(computed)}`, 'BAD_CHECKSUM');
    }
  }
  if (footer.formatVersion !== FILE_FORMAT_VERSION) problem('footer-version', `footer format version ${hex32(footer.formatVersion)}, expected 0x00010000`);
  if ((footer.features & FEATURE_RESERVED) === 0) issues.warn('footer-features', `footer features ${hex32(footer.features)} lack the reserved bit 0x2`);
  if ((footer.features & ~0x3) !== 0) issues.warn('footer-features', `footer features ${hex32(footer.features)} has unknown bits`);
  if (footer.savedState > 1) problem('saved-state', `saved state byte is ${footer.savedState}, expected 0 or 1`);
  if (footer.savedState === 1) issues.warn('saved-state', 'disk is in saved state (a virtual machine was saved with it attached)');
  if (typeof footer.diskType === 'number') fatal(`unsupported disk type ${footer.diskType} (expected 2 fixed, 3 dynamic or 4 differencing)`, 'UNSUPPORTED');
  const type = footer.diskType;
  if (footer.uniqueId === '00000000-0000-0000-0000-000000000000') issues.warn('footer-uuid-null', 'unique id is all zero');
  const virtualSize = footer.currentSize;
  if (virtualSize % SECTOR !== 0) fatal(`current size ${virtualSize} is not a multiple of 512`);

  const regions: Region[] = [{ name: 'footer', start: footerOffset, end: Math.min(fileSize, footerOffset + footerLength) }];

  // --- Fixed disks ---------------------------------------------------------
  if (type === 'fixed') {
    if (footer.dataOffset !== null) issues.warn('footer-data-offset', `fixed disk data offset is ${hex(footer.dataOffset)}, expected all ones`);
    if (virtualSize > footerOffset) fatal(`fixed disk is truncated: current size ${virtualSize} but only ${footerOffset} bytes of data`, 'TRUNCATED');
    if (virtualSize < footerOffset) issues.warn('fixed-extra-data', `${footerOffset - virtualSize} bytes between the data and the footer`);
    regions.push({ name: 'data', start: 0, end: virtualSize });
    return {
      path, fileSize, type, footer, footerOffset, footerLength, footerCopy: null, virtualSize,
      header: null, blockSize: null, blockCount: 0, bitmapSize: 0, bat: null, locators: [], regions, issues: issues.items,
    };
  }

  // --- Footer copy ---------------------------------------------------------
  if (footerOffset !== fileSize) {
    regions.push({ name: 'footer copy', start: 0, end: FOOTER_SIZE });
    if (!copyBytes) fatal('file too small for a dynamic disk', 'TRUNCATED');
    if (!sameFooterBytes(copyBytes, endBytes, footerLength)) {
      problem('footer-copy', 'footer copy at offset 0 differs from the end footer');
    }
  }

  // --- Dynamic header -------------------------------------------------------
  const dataOffset = footer.dataOffset;
  if (dataOffset === null) fatal('dynamic disk footer has no data offset (all ones)');
  if (dataOffset % SECTOR !== 0) problem('header-offset', `dynamic header offset ${hex(dataOffset)} is not sector aligned`);
  if (dataOffset < FOOTER_SIZE || dataOffset + HEADER_SIZE > Math.min(footerOffset, fileSize)) {
    fatal(`dynamic header at ${hex(dataOffset)} lies outside the file (size ${fileSize})`, 'TRUNCATED');
  }
  const headerBytes = await readAt(file, dataOffset, HEADER_SIZE);
  const header = decodeHeader(headerBytes);
  regions.push({ name: 'header', start: dataOffset, end: dataOffset + HEADER_SIZE });
  if (header.cookie !== HEADER_COOKIE) fatal(`dynamic header cookie is ${asText(header.cookie)}, expected "cxsparse"`);
  const headerSum = storedHeaderChecksum(headerBytes);
  if (headerSum !== header.checksum) {
    problem('header-checksum', `dynamic header checksum mismatch: stored ${hex32(header.checksum)}, computed ${hex32(headerSum)}`, 'BAD_CHECKSUM');
  }
  if (header.headerVersion !== HEADER_VERSION) problem('header-version', `header version ${hex32(header.headerVersion)}, expected 0x00010000`);
  // vhd-util check rejects it too: every producer writes all ones.
  if (header.dataOffset !== null) problem('header-data-offset', `dynamic header data offset is ${hex(header.dataOffset)}, expected 0xffffffffffffffff`);
  const blockSize = header.blockSize;
  if (!isPowerOfTwo(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    fatal(`block size ${blockSize} is not a power of two between 512 and 2 GiB`, 'UNSUPPORTED');
  }
  if (blockSize > 2 * 1024 * 1024) issues.warn('block-size-large', `block size ${blockSize} is above 2 MiB (blktap and Hyper-V refuse it)`);
  const blockCount = Math.ceil(virtualSize / blockSize);
  if (header.maxTableEntries < blockCount) {
    fatal(`BAT has ${header.maxTableEntries} entries, too few for ${virtualSize} bytes in ${blockSize}-byte blocks (needs ${blockCount})`);
  }
  const tableOffset = header.tableOffset;
  const tableBytes = batBytes(header.maxTableEntries);
  if (tableOffset % SECTOR !== 0) problem('bat-offset', `BAT offset ${hex(tableOffset)} is not sector aligned`);
  if (tableOffset < FOOTER_SIZE || tableOffset + header.maxTableEntries * 4 > footerOffset) {
    fatal(`BAT of ${header.maxTableEntries} entries at ${hex(tableOffset)} extends past the end of the file (data ends at ${hex(footerOffset)})`, 'TRUNCATED');
  }
  regions.push({ name: 'BAT', start: tableOffset, end: Math.min(tableOffset + tableBytes, footerOffset) });

  if (type === 'dynamic') {
    if (header.parentUniqueId !== null) issues.warn('dynamic-parent', 'dynamic disk has a parent UUID set');
  } else if (header.parentUniqueId === null) {
    fatal('differencing disk has no parent UUID', 'UNSUPPORTED');
  }

  // --- BAT ---------------------------------------------------------------
  const bat = decodeBat(await readAt(file, tableOffset, blockCount * 4), blockCount);
  const bmSize = bitmapBytes(blockSize);
  const lastUsable = footerOffset;
  // A file cut inside its last block(s) has lost its end footer too (lenient mode then reads with the copy).
  const cutFile = mode === 'lenient' && footerOffset === fileSize;
  let zeroFilledTo: number | undefined;
  for (let i = 0; i < blockCount; i++) {
    const s = bat.get(i);
    if (s === null) continue;
    const start = s * SECTOR;
    const end = start + bmSize + blockSize;
    if (start < FOOTER_SIZE) fatal(`BAT entry ${i} points into the footer copy (sector ${s})`);
    if (end > lastUsable && cutFile && start < fileSize) {
      issues.warn('block-cut', `block ${i}: bytes ${fileSize}..${end - 1} (${end - fileSize}) lie past the end of the file (cut); read as zeros`);
      zeroFilledTo = Math.max(zeroFilledTo ?? 0, end);
    } else if (end > lastUsable) {
      fatal(`block ${i} at ${hex(start)} + ${bmSize + blockSize} bytes extends past the end of the data (${hex(lastUsable)})`, 'TRUNCATED');
    }
    regions.push({ name: `block ${i}`, start, end: Math.min(end, Math.max(lastUsable, start)) });
  }

  // --- Parent locators ------------------------------------------------------
  const locators: LocatorInfo[] = [];
  const seen = new Set<string>();
  for (let index = 0; index < header.locators.length; index++) {
    const entry = header.locators[index];
    if (entry.platform === null) {
      if (entry.dataLength !== 0 || entry.dataOffset !== 0 || entry.dataSpace !== 0) issues.warn('locator-unused', `locator ${index} is unused but not zeroed`);
      continue;
    }
    const name = typeof entry.platform === 'number' ? hex32(entry.platform) : entry.platform;
    if (type === 'dynamic') issues.warn('dynamic-locator', `dynamic disk has a parent locator (${name})`);
    if (seen.has(name)) issues.warn('locator-duplicate', `more than one ${name} locator`);
    seen.add(name);
    const space = locatorSpaceBytes(entry.dataSpace);
    const info: LocatorInfo = { index, entry, spaceBytes: space?.bytes ?? null, spaceUnit: space?.unit ?? null, data: null, value: { ok: false, reason: 'not read' } };
    locators.push(info);
    const label = `locator ${index} (${name})`;
    if (!space) issues.warn('locator-space', `${label} data space ${entry.dataSpace} is neither a sector count nor a multiple of 512 bytes`);
    if (typeof entry.platform === 'number') {
      problem('locator-platform', `${label} has an unknown platform code`);
      info.value = { ok: false, reason: 'unknown platform code' };
      continue;
    }
    if (entry.dataLength === 0) {
      problem('locator-length', `${label} has no data`);
      info.value = { ok: false, reason: 'empty' };
      continue;
    }
    if (space && entry.dataLength > space.bytes) {
      problem('locator-length', `${label} data length ${entry.dataLength} exceeds its space of ${space.bytes} bytes`);
    }
    if (entry.dataLength > MAX_LOCATOR_BYTES) {
      problem('locator-length', `${label} data length ${entry.dataLength} is implausibly large`);
      info.value = { ok: false, reason: 'too long' };
      continue;
    }
    if (entry.dataOffset < FOOTER_SIZE || entry.dataOffset + entry.dataLength > footerOffset) {
      problem('locator-range', `${label} data at ${hex(entry.dataOffset)} + ${entry.dataLength} lies outside the file`);
      info.value = { ok: false, reason: 'outside the file' };
      continue;
    }
    if (entry.dataOffset % SECTOR !== 0) issues.warn('locator-align', `${label} data offset ${hex(entry.dataOffset)} is not sector aligned`);
    info.data = await readAt(file, entry.dataOffset, entry.dataLength);
    info.value = decodeLocatorData(entry.platform, info.data);
    if (!info.value.ok) problem('locator-data', `${label}: ${info.value.reason}`);
    const spaceEnd = entry.dataOffset + Math.max(entry.dataLength, space?.bytes ?? 0);
    regions.push({ name: label, start: entry.dataOffset, end: Math.min(entry.dataOffset + roundUp(entry.dataLength, SECTOR), footerOffset) });
    if (spaceEnd > footerOffset) issues.warn('locator-space', `${label} reserved space runs past the end of the data`);
  }

  // --- Overlaps -----------------------------------------------------------
  for (const [a, b] of findOverlaps(regions)) {
    problem('overlap', `${describeRegion(a)} overlaps ${describeRegion(b)}`);
  }

  return {
    path, fileSize, type, footer, footerOffset, footerLength, footerCopy, virtualSize,
    header, blockSize, blockCount, bitmapSize: bmSize, bat, locators, regions, issues: issues.items, zeroFilledTo,
  };
}

function tryDecodeFooter(b: Uint8Array): Footer | null {
  try {
    return decodeFooter(b);
  } catch {
    return null;
  }
}

function sameFooterBytes(copy: Uint8Array, end: Uint8Array, len: number): boolean {
  for (let i = 0; i < len; i++) if (copy[i] !== end[i]) return false;
  return true;
}

/** Old tapdisk set the "hidden" byte (footer offset 85) without updating the checksum. */
function isTapHiddenQuirk(f: Footer): boolean {
  if (f.creatorApplication !== 'tap\0' || f.reserved[0] === 0) return false;
  const r = f.reserved.slice();
  r[0] = 0;
  return footerChecksumOk({ ...f, reserved: r });
}

/** The footer as it should be stored (for comparisons in tests and check). */
export function footerBytes(f: Footer): Uint8Array {
  return encodeFooter(f);
}

export type { Uuid };
