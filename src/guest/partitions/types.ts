/**
 * What a disk's partition table says, in bytes: the shape every scheme
 * (MBR, GPT, no table at all) is read into.
 */
import type { RangeSet } from '../ranges.js';

/** mbr: DOS table (primaries and the EBR chain); gpt: GUID Partition Table; none: no table (a "superfloppy", or nothing recognised). */
export type Scheme = 'mbr' | 'gpt' | 'none';

export interface Partition {
  /**
   * The number an operating system gives it: MBR primaries 1-4 by slot,
   * logical partitions from 5 in chain order (as Linux numbers them), GPT
   * the entry's slot number (1-based), a superfloppy 1.
   */
  index: number;
  scheme: Scheme;
  /** Byte offset on the disk. */
  start: number;
  /** Length in bytes. */
  size: number;
  /** MBR: the type byte as "0x07"; GPT: the type GUID in lower case; none: "none". */
  type: string;
  /** A human name for the type ("NTFS/exFAT/HPFS", "EFI System"), or null when unknown. */
  typeName: string | null;
  /** GPT: the partition's name (UTF-16LE in the entry). */
  name?: string;
  /** GPT: the partition's own GUID, in lower case. */
  guid?: string;
  /** MBR: the boot indicator (0x80). */
  bootable?: boolean;
}

export interface PartitionTable {
  scheme: Scheme;
  /** In ascending `index` order. Extended (container) partitions are not listed: their EBRs are in `tables`. */
  partitions: Partition[];
  /** Bytes of the tables themselves: the MBR, every EBR, both GPT headers and entry arrays. Never free. */
  tables: RangeSet;
  /** Things that are odd but readable, one sentence each (a damaged backup GPT, a hybrid MBR). */
  warnings: string[];
  /** The logical block size the table is written in (512, or 4096 on a 4Kn GPT disk). */
  blockSize: number;
  /** MBR disk signature ("0x1234abcd") or GPT disk GUID (lower case), when the table has one. */
  diskId?: string;
}
