/**
 * Which partition table a disk has, and its partitions in bytes.
 *
 * Sector 0 decides, in this order:
 *  1. A boot sector of a file system that covers the whole disk (NTFS,
 *     BitLocker, exFAT, ReFS by the name at byte 3; BitLocker To Go by its
 *     GUID; FAT by a sane BIOS parameter block): a superfloppy, scheme 'none', one partition over the
 *     whole disk. A FAT boot sector and an MBR both end in 55 AA; FAT wins
 *     unless sector 0 also carries a sound table whose partitions start
 *     after sector 0 (mkfs.fat --mbr writes a fake entry starting at 0).
 *  2. A DOS table with a type 0xEE entry: GPT (a hybrid MBR is noted).
 *  3. A DOS table with used entries: MBR.
 *  4. No usable table but a volume signature (ext superblock at 1 KiB, swap,
 *     LVM, LUKS, ...): a superfloppy.
 *  5. A GPT header without a protective MBR: GPT, with a warning.
 *  6. An empty DOS table: MBR with no partitions; anything else: 'none'
 *     with no partitions.
 * Content is never judged by a partition's type byte: that is detect.ts's
 * rule, by signatures.
 */
import { GuestError } from '../errors.js';
import { RangeSet } from '../ranges.js';
import { SIGNATURE_BYTES, hasAscii, recognise, type Signature } from '../signatures.js';
import { readChecked, type ByteSource } from '../source.js';
import { GPT_BLOCK_SIZES, readGpt, type GptRead } from './gpt.js';
import { decodeEntries, diskSignature, isMbrSector, readMbr } from './mbr.js';
import { hexType } from './typeNames.js';
import type { Partition, PartitionTable } from './types.js';

export type { Partition, PartitionTable, Scheme } from './types.js';

export interface ReadTableOptions {
  /**
   * The disk's logical sector size when the caller knows it (a VHD: 512; a
   * 4Kn VHDX: 4096). MBR sector numbers count in it, and GPT is looked for at
   * it first. Default 512.
   */
  sectorSize?: number;
}

/** What sector 0 says the disk holds (see the file comment). */
export type Layout = 'superfloppy' | 'gpt' | 'mbr' | 'none';

export interface Classification {
  layout: Layout;
  /** What sector 0 (and the bytes after it) look like as a volume, if anything. */
  signature: Signature | null;
  warnings: string[];
}

/** Boot-sector file systems named at byte 3: their boot code fills the table area. */
const NAMED_BOOT_SECTORS = new Set(['NTFS', 'BitLocker', 'exFAT', 'ReFS']);

/** Decides the layout from the disk's first bytes (`head`, up to SIGNATURE_BYTES). Pure. */
export function classify(head: Uint8Array): Classification {
  const sector0 = head.subarray(0, 512);
  const signature = recognise(head);
  const warnings: string[] = [];
  const table = isMbrSector(sector0);
  const used = table ? decodeEntries(sector0).filter((e) => e.sectors !== 0) : [];
  const gptEntry = used.some((e) => e.type === 0xee);
  if (signature && NAMED_BOOT_SECTORS.has(signature.name)) return { layout: 'superfloppy', signature, warnings };
  if (signature?.family === 'fat') {
    const realTable = used.length > 0 && used.every((e) => e.lba > 0);
    if (!realTable) return { layout: 'superfloppy', signature, warnings };
    warnings.push('sector 0 holds both a FAT boot parameter block and a partition table; read as a partition table');
  }
  if (gptEntry) return { layout: 'gpt', signature, warnings };
  if (used.length > 0) return { layout: 'mbr', signature, warnings };
  if (signature && signature.family !== 'table') return { layout: 'superfloppy', signature, warnings };
  if (hasAscii(head, 512, 'EFI PART') || hasAscii(head, 4096, 'EFI PART')) {
    warnings.push('a GPT header is present but sector 0 holds no protective MBR (type 0xEE)');
    return { layout: 'gpt', signature, warnings };
  }
  if (table) return { layout: 'mbr', signature, warnings };
  if (sector0.some((b) => b !== 0)) warnings.push('sector 0 holds neither a partition table nor a recognised file system');
  return { layout: 'none', signature, warnings };
}

/**
 * Reads the partition table of a disk. Throws a GuestError when the table
 * is there but cannot be trusted (loops, overlaps, partitions past the end,
 * both GPT headers damaged); oddities that leave it readable are warnings.
 */
export async function readPartitionTable(src: ByteSource, opts: ReadTableOptions = {}): Promise<PartitionTable> {
  const sectorSize = opts.sectorSize ?? 512;
  if (![512, 1024, 2048, 4096].includes(sectorSize)) throw new GuestError(`sector size ${sectorSize} is not 512, 1024, 2048 or 4096`);
  if (src.size < 512) {
    return { scheme: 'none', partitions: [], tables: RangeSet.EMPTY, warnings: ['the disk is smaller than one sector'], blockSize: sectorSize };
  }
  const head = await readChecked(src, 0, Math.min(SIGNATURE_BYTES, src.size), 'start of the disk');
  const c = classify(head);
  switch (c.layout) {
    case 'superfloppy':
      return superfloppy(src, c, sectorSize);
    case 'gpt':
      return gptTable(src, head, c.warnings, sectorSize);
    case 'mbr':
      return mbrTable(src, head, c, sectorSize);
    default:
      return { scheme: 'none', partitions: [], tables: RangeSet.EMPTY, warnings: c.warnings, blockSize: sectorSize };
  }
}

function superfloppy(src: ByteSource, c: Classification, sectorSize: number): PartitionTable {
  const partition: Partition = { index: 1, scheme: 'none', start: 0, size: src.size, type: 'none', typeName: null };
  return { scheme: 'none', partitions: [partition], tables: RangeSet.EMPTY, warnings: c.warnings, blockSize: sectorSize };
}

async function mbrTable(src: ByteSource, head: Uint8Array, c: Classification, sectorSize: number): Promise<PartitionTable> {
  const sector0 = await readChecked(src, 0, sectorSize, 'MBR');
  let m;
  try {
    m = await readMbr(src, sector0, sectorSize);
  } catch (e) {
    // A FAT boot sector whose boot code happens to pass for a table: the file system is the sounder reading.
    if (!(e instanceof GuestError) || c.signature?.family !== 'fat') throw e;
    const why = `sector 0 is a FAT boot sector whose table area is no sound partition table (${e.message}); read as a FAT volume over the whole disk`;
    return superfloppy(src, { ...c, warnings: [why] }, sectorSize);
  }
  const warnings = [...c.warnings, ...m.warnings, ...staleGpt(head)];
  return { scheme: 'mbr', partitions: m.partitions, tables: m.tables.build(), warnings, blockSize: sectorSize, diskId: diskSignature(sector0) };
}

async function gptTable(src: ByteSource, head: Uint8Array, warnings: string[], sectorSize: number): Promise<PartitionTable> {
  const order = [sectorSize, ...GPT_BLOCK_SIZES.filter((b) => b !== sectorSize)];
  const g: GptRead | null = await readGpt(src, order);
  if (!g) throw new GuestError('the protective MBR (type 0xEE) announces a GPT, but no GPT header was found at LBA 1 or at the last LBA');
  const all = [...warnings, ...protectiveMbrNotes(head.subarray(0, 512)), ...g.warnings];
  return { scheme: 'gpt', partitions: g.partitions, tables: g.tables.build(), warnings: all, blockSize: g.blockSize, diskId: g.diskGuid };
}

/** Remarks on the protective MBR: a hybrid MBR lists real partitions beside the 0xEE entry. */
function protectiveMbrNotes(sector0: Uint8Array): string[] {
  if (!isMbrSector(sector0)) return [];
  const used = decodeEntries(sector0).filter((e) => e.sectors !== 0);
  const others = used.filter((e) => e.type !== 0xee);
  if (others.length === 0) return [];
  const list = others.map((e) => `${e.slot + 1} (${hexType(e.type)})`).join(', ');
  return [`hybrid MBR: sector 0 also lists partition(s) ${list}; the GPT is read, as EFI firmware and Linux do`];
}

/** A GPT header left behind on an MBR disk (Linux ignores it too). */
function staleGpt(head: Uint8Array): string[] {
  return hasAscii(head, 512, 'EFI PART') ? ['a GPT header at LBA 1 is ignored: sector 0 holds a DOS table without a type 0xEE entry'] : [];
}
