/**
 * The DOS (MBR) partition table: four primary entries in sector 0, and, for
 * an extended partition (type 0x05, 0x0F or 0x85), a chain of EBRs inside it.
 *
 * Sector 0, offset 446: four 16-byte entries
 *   +0 status (0x80 bootable, 0x00 not; anything else: not a table)
 *   +1 CHS of the first sector (ignored: every tool writes LBA; many write fake CHS)
 *   +4 type
 *   +5 CHS of the last sector (ignored)
 *   +8 first sector, u32 LE (relative, see below)
 *  +12 number of sectors, u32 LE (0: unused entry, as Linux and libfdisk read it)
 * offset 440: the disk signature (u32 LE); offset 510: 55 AA.
 *
 * An EBR has the same layout. Its first used entry is a logical partition,
 * counted from the EBR's own sector; its link entry (an extended type) gives
 * the next EBR, counted from the start of the extended partition. Logical
 * partitions are numbered 5, 6, ... in chain order, as Linux numbers them.
 *
 * Every number is checked before use: a partition must start after sector
 * 0, end inside the disk, and overlap no other; a logical partition must lie
 * inside its extended partition; the chain must not loop and is at most
 * MAX_EBRS long. Breaking any of these is a GuestError for the whole table.
 */
import { GuestError } from '../errors.js';
import { RangeSetBuilder } from '../ranges.js';
import { hasBootSignature } from '../signatures.js';
import { readChecked, type ByteSource } from '../source.js';
import { refuseOverlaps, type Extent } from './overlaps.js';
import { hexType, isExtendedType, mbrTypeName } from './typeNames.js';
import type { Partition } from './types.js';

/** Longest EBR chain accepted. Linux stops at 256 partitions a disk; no partitioning tool writes more. */
export const MAX_EBRS = 256;

export const FIRST_LOGICAL = 5;

export interface MbrEntry {
  /** 0-3 */
  slot: number;
  status: number;
  type: number;
  /** First sector, relative (to the disk for primaries, to the EBR or the extended partition in a chain). */
  lba: number;
  sectors: number;
}

/** The four entries of an MBR or EBR sector, used or not. */
export function decodeEntries(sector: Uint8Array): MbrEntry[] {
  const v = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
  const out: MbrEntry[] = [];
  for (let slot = 0; slot < 4; slot++) {
    const e = 446 + 16 * slot;
    out.push({ slot, status: sector[e], type: sector[e + 4], lba: v.getUint32(e + 8, true), sectors: v.getUint32(e + 12, true) });
  }
  return out;
}

/** True when the sector ends in 55 AA and every status byte is 0x00 or 0x80 (the Linux kernel's test for a DOS table). */
export function isMbrSector(sector: Uint8Array): boolean {
  return hasBootSignature(sector) && decodeEntries(sector).every((e) => e.status === 0 || e.status === 0x80);
}

/** The disk signature at offset 440, as "0x1234abcd". */
export function diskSignature(sector: Uint8Array): string {
  const v = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
  return `0x${v.getUint32(440, true).toString(16).padStart(8, '0')}`;
}

export interface MbrRead {
  partitions: Partition[];
  tables: RangeSetBuilder;
  warnings: string[];
}

/** Reads the primary entries of `sector0` and every EBR chain. */
export async function readMbr(src: ByteSource, sector0: Uint8Array, sectorSize = 512): Promise<MbrRead> {
  const tables = new RangeSetBuilder().add(0, sectorSize);
  const warnings: string[] = [];
  const diskSectors = Math.floor(src.size / sectorSize);
  const used = decodeEntries(sector0).filter((e) => e.sectors !== 0);
  const primaries: Extent[] = [];
  for (const e of used) {
    const n = e.slot + 1;
    if (e.status !== 0 && e.status !== 0x80) throw new GuestError(`MBR: partition ${n} has status byte ${hexType(e.status)} (0x00 or 0x80 expected)`);
    if (e.lba === 0) throw new GuestError(`MBR: partition ${n} starts at sector 0, over the partition table itself`);
    if (e.lba + e.sectors > diskSectors) {
      throw new GuestError(`MBR: partition ${n} (sectors ${e.lba}-${e.lba + e.sectors - 1}) runs past the end of the disk (${diskSectors} sectors)`);
    }
    if (e.type === 0) warnings.push(`MBR: partition ${n} has type 0x00 but a size; read as a partition, as Linux does`);
    primaries.push({ what: `partition ${n}`, start: e.lba, end: e.lba + e.sectors });
  }
  refuseOverlaps(primaries, 'sectors', 'MBR');

  const partitions: Partition[] = [];
  let nextLogical = FIRST_LOGICAL;
  for (const e of used) {
    if (!isExtendedType(e.type)) {
      partitions.push(mbrPartition(e.slot + 1, e, e.lba, sectorSize));
      continue;
    }
    const logicals = await readEbrChain(src, sectorSize, e, nextLogical, tables, warnings);
    partitions.push(...logicals);
    nextLogical += logicals.length;
  }
  partitions.sort((a, b) => a.index - b.index);
  return { partitions, tables, warnings };
}

function mbrPartition(index: number, e: MbrEntry, firstSector: number, sectorSize: number): Partition {
  return {
    index,
    scheme: 'mbr',
    start: firstSector * sectorSize,
    size: e.sectors * sectorSize,
    type: hexType(e.type),
    typeName: mbrTypeName(e.type),
    bootable: e.status === 0x80,
  };
}

/**
 * Follows the EBR chain of the extended partition `ext`, numbering the
 * logical partitions from `firstIndex`. Adds every EBR sector to `tables`.
 */
async function readEbrChain(
  src: ByteSource,
  sectorSize: number,
  ext: MbrEntry,
  firstIndex: number,
  tables: RangeSetBuilder,
  warnings: string[],
): Promise<Partition[]> {
  const where = `extended partition ${ext.slot + 1}`;
  const extEnd = ext.lba + ext.sectors;
  const seen = new Set<number>();
  const claimed: Extent[] = [];
  const out: Partition[] = [];
  let at = ext.lba;
  for (;;) {
    if (seen.has(at)) throw new GuestError(`${where}: the EBR chain loops back to sector ${at}`);
    if (seen.size >= MAX_EBRS) throw new GuestError(`${where}: the EBR chain is longer than ${MAX_EBRS} links, which no partitioning tool writes`);
    seen.add(at);
    const sector = await readChecked(src, at * sectorSize, sectorSize, `${where}: EBR at sector ${at}`);
    tables.add(at * sectorSize, (at + 1) * sectorSize);
    claimed.push({ what: `the EBR at sector ${at}`, start: at, end: at + 1 });
    if (!hasBootSignature(sector)) {
      warnings.push(`${where}: the EBR at sector ${at} has no 55 AA signature; the chain ends there`);
      break;
    }
    const { logicals, link } = ebrEntries(sector, at, where, warnings);
    for (const e of logicals) {
      const index = firstIndex + out.length;
      const start = at + e.lba;
      if (e.lba === 0) throw new GuestError(`${where}: logical partition ${index} starts on its own EBR (sector ${at})`);
      if (start + e.sectors > extEnd) {
        throw new GuestError(
          `${where}: logical partition ${index} (sectors ${start}-${start + e.sectors - 1}) runs past the end of the extended partition (sector ${extEnd - 1})`,
        );
      }
      claimed.push({ what: `logical partition ${index}`, start, end: start + e.sectors });
      out.push(mbrPartition(index, e, start, sectorSize));
    }
    if (!link) break;
    const next = ext.lba + link.lba;
    if (next + Math.max(link.sectors, 1) > extEnd) {
      throw new GuestError(`${where}: the EBR at sector ${at} links to sectors ${next}-${next + link.sectors - 1}, outside the extended partition (sectors ${ext.lba}-${extEnd - 1})`);
    }
    at = next;
  }
  refuseOverlaps(claimed, 'sectors', where);
  return out;
}

/** The logical-partition entries and the link entry of one EBR (only its first two entries count, as every tool writes them). */
function ebrEntries(sector: Uint8Array, at: number, where: string, warnings: string[]): { logicals: MbrEntry[]; link: MbrEntry | null } {
  const logicals: MbrEntry[] = [];
  let link: MbrEntry | null = null;
  for (const e of decodeEntries(sector)) {
    if (e.sectors === 0) continue;
    if (e.status !== 0 && e.status !== 0x80) warnings.push(`${where}: the EBR at sector ${at} has status byte ${hexType(e.status)} in entry ${e.slot + 1}`);
    if (e.slot >= 2) {
      warnings.push(`${where}: the EBR at sector ${at} has a used entry ${e.slot + 1}; ignored (only the first two entries of an EBR are used)`);
      continue;
    }
    if (!isExtendedType(e.type)) {
      logicals.push(e);
    } else if (link) {
      throw new GuestError(`${where}: the EBR at sector ${at} links to two next EBRs`);
    } else {
      link = e;
    }
  }
  return { logicals, link };
}
