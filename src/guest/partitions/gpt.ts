/**
 * The GUID Partition Table (UEFI specification, chapter 5.3).
 *
 * Header (one logical block at LBA 1; its backup at the disk's last LBA), LE:
 *    0 "EFI PART"           8 revision (0x00010000)   12 header size (92..block)
 *   16 header CRC32 (computed with this field zero, over `header size` bytes)
 *   24 my LBA              32 alternate LBA           40 first usable LBA
 *   48 last usable LBA     56 disk GUID               72 entry array LBA
 *   80 number of entries   84 entry size (128 x 2^n)  88 entry array CRC32
 * Entry: 0 type GUID (zero: unused), 16 partition GUID, 32 first LBA,
 *   40 last LBA (inclusive), 48 attributes, 56 name (36 UTF-16LE units).
 *
 * The primary is used when its header and entry array both check out; else
 * the backup at the last LBA, with a warning; neither is a GuestError. Every
 * header field is validated before it sizes a read: the entry array is at
 * most MAX_ENTRY_ARRAY bytes, lies inside the disk, and overlaps neither its
 * header nor the usable area. Partitions must lie inside the disk and
 * overlap neither each other nor the tables.
 *
 * The logical block size is not written anywhere: the header is looked for
 * at LBA 1 of 512-byte blocks, then 4096 (4Kn disks), 1024 and 2048, and the
 * header's own "my LBA" field confirms the guess.
 */
import { GuestError } from '../errors.js';
import { RangeSetBuilder, type RangeSet } from '../ranges.js';
import { hasAscii } from '../signatures.js';
import { readChecked, type ByteSource } from '../source.js';
import { crc32 } from './crc32.js';
import { refuseOverlaps, type Extent } from './overlaps.js';
import { gptTypeName } from './typeNames.js';
import type { Partition } from './types.js';

export const GPT_SIGNATURE = 'EFI PART';
/** Largest entry array accepted (32,768 entries of 128 bytes; tools write 16 KiB). */
export const MAX_ENTRY_ARRAY = 4 * 1024 * 1024;
/** Largest entry size accepted (the specification allows 128 x 2^n). */
export const MAX_ENTRY_SIZE = 4096;
/** Block sizes tried, in order. */
export const GPT_BLOCK_SIZES = [512, 4096, 1024, 2048];

export interface GptHeader {
  blockSize: number;
  revision: number;
  headerSize: number;
  myLba: number;
  alternateLba: number;
  firstUsable: number;
  lastUsable: number;
  diskGuid: string;
  entriesLba: number;
  entryCount: number;
  entrySize: number;
  entriesCrc: number;
}

export interface GptEntry {
  /** 1-based slot in the array. */
  slot: number;
  type: string;
  guid: string;
  firstLba: number;
  lastLba: number;
  attributes: bigint;
  name: string;
}

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** A u64 LE as a number, or null when it is not a safe integer. */
function u64(v: DataView, off: number): number | null {
  const x = v.getBigUint64(off, true);
  return x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : null;
}

/** A GUID in its mixed-endian on-disk form, as lower-case text. */
export function guidAt(b: Uint8Array, off: number): string {
  const h = (i: number) => b[off + i].toString(16).padStart(2, '0');
  const r = (idx: number[]) => idx.map(h).join('');
  return `${r([3, 2, 1, 0])}-${r([5, 4])}-${r([7, 6])}-${r([8, 9])}-${r([10, 11, 12, 13, 14, 15])}`;
}

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** The number of blocks an entry array of `h` takes. */
export function arrayBlocks(h: Pick<GptHeader, 'entryCount' | 'entrySize' | 'blockSize'>): number {
  return Math.ceil((h.entryCount * h.entrySize) / h.blockSize);
}

/**
 * Decodes the header in `block`, read at LBA `lba` of a disk of `diskBlocks`
 * blocks, and checks every field. Returns the header, or the reason it
 * cannot be used (a sentence for an error message).
 */
export function decodeGptHeader(block: Uint8Array, lba: number, blockSize: number, diskBlocks: number): GptHeader | string {
  if (!hasAscii(block, 0, GPT_SIGNATURE)) return 'no "EFI PART" signature';
  const v = view(block);
  const headerSize = v.getUint32(12, true);
  if (headerSize < 92 || headerSize > blockSize) return `header size ${headerSize} is outside 92..${blockSize}`;
  const stored = v.getUint32(16, true);
  const copy = block.slice(0, headerSize);
  copy.fill(0, 16, 20);
  const computed = crc32(copy);
  if (computed !== stored) return `header CRC32 is 0x${hex(stored)}, the header's bytes give 0x${hex(computed)}`;
  const revision = v.getUint32(8, true);
  if (revision >>> 16 !== 1) return `revision 0x${hex(revision)} is not 1.x`;
  const fields = { myLba: u64(v, 24), alternateLba: u64(v, 32), firstUsable: u64(v, 40), lastUsable: u64(v, 48), entriesLba: u64(v, 72) };
  for (const [k, x] of Object.entries(fields)) if (x === null) return `${k} is beyond 2^53`;
  const h: GptHeader = {
    blockSize,
    revision,
    headerSize,
    myLba: fields.myLba!,
    alternateLba: fields.alternateLba!,
    firstUsable: fields.firstUsable!,
    lastUsable: fields.lastUsable!,
    diskGuid: guidAt(block, 56),
    entriesLba: fields.entriesLba!,
    entryCount: v.getUint32(80, true),
    entrySize: v.getUint32(84, true),
    entriesCrc: v.getUint32(88, true),
  };
  return checkHeaderFields(h, lba, diskBlocks) ?? h;
}

/** The reason the header's layout is impossible, or null when it is sound. */
function checkHeaderFields(h: GptHeader, lba: number, diskBlocks: number): string | null {
  if (h.myLba !== lba) return `it says it sits at LBA ${h.myLba}, but was read at LBA ${lba}`;
  if (h.firstUsable > h.lastUsable) return `first usable LBA ${h.firstUsable} is after last usable LBA ${h.lastUsable}`;
  if (h.lastUsable >= diskBlocks) return `last usable LBA ${h.lastUsable} lies past the disk's end (${diskBlocks} blocks of ${h.blockSize} bytes)`;
  if (lba >= h.firstUsable && lba <= h.lastUsable) return `the header lies inside the usable area (LBAs ${h.firstUsable}-${h.lastUsable})`;
  if (h.entrySize < 128 || h.entrySize > MAX_ENTRY_SIZE || h.entrySize % 128 !== 0 || !isPow2(h.entrySize / 128)) {
    return `entry size ${h.entrySize} is not 128 x 2^n (at most ${MAX_ENTRY_SIZE})`;
  }
  const bytes = h.entryCount * h.entrySize;
  if (bytes > MAX_ENTRY_ARRAY) return `${h.entryCount} entries of ${h.entrySize} bytes (${bytes} bytes) exceed the ${MAX_ENTRY_ARRAY}-byte limit`;
  const first = h.entriesLba;
  const end = first + arrayBlocks(h);
  if (first < 1 || end > diskBlocks) return `entry array (LBAs ${first}-${end - 1}) lies outside the disk`;
  if (lba >= first && lba < end) return `entry array (LBAs ${first}-${end - 1}) overlaps its header`;
  if (first <= h.lastUsable && end > h.firstUsable) return `entry array (LBAs ${first}-${end - 1}) overlaps the usable area (LBAs ${h.firstUsable}-${h.lastUsable})`;
  return null;
}

/** The used entries of an array already checked against the header's CRC. */
export function decodeGptEntries(array: Uint8Array, h: GptHeader): GptEntry[] {
  const v = view(array);
  const out: GptEntry[] = [];
  const utf16 = new TextDecoder('utf-16le');
  for (let i = 0; i < h.entryCount; i++) {
    const at = i * h.entrySize;
    const type = guidAt(array, at);
    if (type === '00000000-0000-0000-0000-000000000000') continue;
    const firstLba = u64(v, at + 32);
    const lastLba = u64(v, at + 40);
    if (firstLba === null || lastLba === null) throw new GuestError(`GPT: partition ${i + 1} has an LBA beyond 2^53`);
    let nameEnd = at + 56;
    while (nameEnd < at + 128 && (array[nameEnd] | array[nameEnd + 1]) !== 0) nameEnd += 2;
    out.push({
      slot: i + 1,
      type,
      guid: guidAt(array, at + 16),
      firstLba,
      lastLba,
      attributes: v.getBigUint64(at + 48, true),
      name: utf16.decode(array.subarray(at + 56, nameEnd)),
    });
  }
  return out;
}

/** A header and its array, checked; or why not. */
type Attempt = { ok: true; header: GptHeader; array: Uint8Array } | { ok: false; present: boolean; problem: string };

/** Reads and checks the header at `lba` and then its entry array (CRC included). */
async function attempt(src: ByteSource, blockSize: number, lba: number, diskBlocks: number): Promise<Attempt> {
  const block = await readChecked(src, lba * blockSize, blockSize, `GPT header at LBA ${lba}`);
  const h = decodeGptHeader(block, lba, blockSize, diskBlocks);
  if (typeof h === 'string') return { ok: false, present: hasAscii(block, 0, GPT_SIGNATURE), problem: h };
  const array = await readChecked(src, h.entriesLba * blockSize, h.entryCount * h.entrySize, `GPT entry array at LBA ${h.entriesLba}`);
  const crc = crc32(array);
  if (crc !== h.entriesCrc) {
    return { ok: false, present: true, problem: `its entry array's CRC32 is 0x${hex(crc)}, the header says 0x${hex(h.entriesCrc)}` };
  }
  return { ok: true, header: h, array };
}

export interface GptRead {
  partitions: Partition[];
  tables: RangeSetBuilder;
  warnings: string[];
  blockSize: number;
  diskGuid: string;
}

/**
 * Reads the GPT of `src`: primary if sound, else backup. Returns null when
 * no "EFI PART" header is found at any block size (not a GPT disk).
 */
export async function readGpt(src: ByteSource, blockSizes = GPT_BLOCK_SIZES): Promise<GptRead | null> {
  const problems: string[] = [];
  for (const bs of blockSizes) {
    const diskBlocks = Math.floor(src.size / bs);
    if (diskBlocks < 3) continue;
    const lastLba = diskBlocks - 1;
    const primary = await attempt(src, bs, 1, diskBlocks);
    if (primary.ok) return fromPrimary(src, primary.header, primary.array, diskBlocks);
    const backup = await attempt(src, bs, lastLba, diskBlocks);
    if (backup.ok) {
      const why = `GPT: the primary header at LBA 1 is damaged (${primary.problem}); read from the backup at LBA ${lastLba}`;
      return fromBackup(backup.header, backup.array, diskBlocks, why);
    }
    if (primary.present || backup.present) {
      problems.push(`with ${bs}-byte blocks, the primary header at LBA 1: ${primary.problem}; the backup at LBA ${lastLba}: ${backup.problem}`);
    }
  }
  if (problems.length) throw new GuestError(`GPT: neither header can be used (${problems.join('; ')})`);
  return null;
}

/** The primary is sound: the backup is checked only to warn. */
async function fromPrimary(src: ByteSource, h: GptHeader, array: Uint8Array, diskBlocks: number): Promise<GptRead> {
  const warnings: string[] = [];
  const tables = tableRanges(h);
  const alt = h.alternateLba;
  if (alt >= diskBlocks || alt <= h.lastUsable) {
    const where = alt >= diskBlocks ? 'past the end of the disk' : alt <= h.myLba ? 'at or before the primary' : 'inside the usable area';
    warnings.push(`GPT: the primary header puts the backup at LBA ${alt}, ${where}; the backup is not checked`);
  } else {
    const backup = await attempt(src, h.blockSize, alt, diskBlocks);
    if (!backup.ok) {
      warnings.push(`GPT: the backup header at LBA ${alt} is ${backup.present ? 'damaged' : 'missing'} (${backup.problem})`);
      tables.add(alt * h.blockSize, (alt + 1) * h.blockSize);
      const guessed = alt - arrayBlocks(h);
      if (guessed > h.lastUsable) tables.add(guessed * h.blockSize, alt * h.blockSize);
    } else {
      tables.addSet(tableRanges(backup.header).build());
      if (backup.header.entriesCrc !== h.entriesCrc || backup.header.alternateLba !== 1) {
        warnings.push(`GPT: the backup at LBA ${alt} differs from the primary; the primary is read`);
      }
    }
    if (alt !== diskBlocks - 1) {
      warnings.push(`GPT: the backup header is at LBA ${alt}, not at the disk's last LBA ${diskBlocks - 1} (the disk was enlarged after partitioning?)`);
    }
  }
  return { partitions: toPartitions(h, array, diskBlocks, tables.build(), warnings), tables, warnings, blockSize: h.blockSize, diskGuid: h.diskGuid };
}

/** The primary is damaged: read the backup, and keep the primary's place among the tables. */
function fromBackup(h: GptHeader, array: Uint8Array, diskBlocks: number, why: string): GptRead {
  const warnings = [why];
  const tables = tableRanges(h);
  const bs = h.blockSize;
  tables.add(bs, 2 * bs);
  const primaryArrayEnd = Math.min(2 + arrayBlocks(h), h.firstUsable);
  tables.add(2 * bs, primaryArrayEnd * bs);
  return { partitions: toPartitions(h, array, diskBlocks, tables.build(), warnings), tables, warnings, blockSize: bs, diskGuid: h.diskGuid };
}

/** The header block and entry array of `h`, in bytes. */
function tableRanges(h: GptHeader): RangeSetBuilder {
  const bs = h.blockSize;
  return new RangeSetBuilder()
    .add(0, bs)
    .add(h.myLba * bs, (h.myLba + 1) * bs)
    .add(h.entriesLba * bs, (h.entriesLba + arrayBlocks(h)) * bs);
}

/** The partitions of a sound header and array; `tables` (bytes: both headers, both arrays, the protective MBR) must not overlap any. */
function toPartitions(h: GptHeader, array: Uint8Array, diskBlocks: number, tables: RangeSet, warnings: string[]): Partition[] {
  const bs = h.blockSize;
  const extents: Extent[] = [];
  const out: Partition[] = [];
  for (const e of decodeGptEntries(array, h)) {
    const what = `partition ${e.slot}`;
    if (e.firstLba > e.lastLba) throw new GuestError(`GPT: ${what} ends (LBA ${e.lastLba}) before it starts (LBA ${e.firstLba})`);
    if (e.lastLba >= diskBlocks) {
      throw new GuestError(`GPT: ${what} (LBAs ${e.firstLba}-${e.lastLba}) runs past the end of the disk (${diskBlocks} blocks of ${bs} bytes)`);
    }
    if (e.firstLba < h.firstUsable || e.lastLba > h.lastUsable) {
      warnings.push(`GPT: ${what} (LBAs ${e.firstLba}-${e.lastLba}) lies outside the usable area (LBAs ${h.firstUsable}-${h.lastUsable})`);
    }
    extents.push({ what, start: e.firstLba, end: e.lastLba + 1 });
    const p: Partition = {
      index: e.slot,
      scheme: 'gpt',
      start: e.firstLba * bs,
      size: (e.lastLba - e.firstLba + 1) * bs,
      type: e.type,
      typeName: gptTypeName(e.type),
      guid: e.guid,
    };
    if (e.name) p.name = e.name;
    out.push(p);
  }
  for (const [s, e] of tables) extents.push({ what: 'the partition table', start: Math.floor(s / bs), end: Math.ceil(e / bs) });
  refuseOverlaps(extents, 'LBAs', 'GPT');
  return out;
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
