/**
 * A disk as the guest sees it, in one walk: the partition table, each
 * partition's volume (or why it could not be opened), and the bytes outside
 * every partition. The operations (map, compact --free-space, diff) start
 * here; one bad partition never stops the walk, it is reported with the
 * partition (`inPartition`). A table that cannot be trusted at all is a
 * GuestError for the disk.
 */
import { detect, readHead, unknownVolume } from './detect.js';
import { inPartition } from './errors.js';
import type { VhdToolError } from '../errors.js';
import { readPartitionTable, type ReadTableOptions } from './partitions/index.js';
import type { Partition, PartitionTable } from './partitions/types.js';
import { RangeSet, RangeSetBuilder } from './ranges.js';
import { READERS, type VolumeReader } from './readers.js';
import { sliceSource, type ByteSource } from './source.js';
import type { UnknownVolume, Volume } from './volume.js';

export interface PartitionView {
  partition: Partition;
  /** The partition's bytes as a source of their own. */
  source: ByteSource;
  /** The reader that claimed it ("ntfs", "swap"), or null when none did. */
  reader: string | null;
  /** The opened volume; an UnknownVolume when no reader claims it; null when opening failed. */
  volume: Volume | UnknownVolume | null;
  /** Why the volume could not be opened ("partition 2 (ntfs): ..."), else null. */
  error: VhdToolError | null;
}

export interface GuestLayout {
  /** Disk size in bytes. */
  size: number;
  table: PartitionTable;
  partitions: PartitionView[];
  /** The tables themselves: MBR, EBRs, GPT headers and entry arrays. */
  tables: RangeSet;
  /** Bytes before the last partition's end that no partition and no table covers (the gap before the first partition, gaps between partitions, unused space in an extended partition). */
  gaps: RangeSet;
  /** Bytes after the last partition's end (the whole disk when there is none), tables excluded. */
  afterLast: RangeSet;
  /** tables + gaps + afterLast: every byte outside every partition. */
  outside: RangeSet;
}

export interface LayoutOptions extends ReadTableOptions {
  readers?: readonly VolumeReader[];
}

/** Reads the partition table and opens every partition's volume. */
export async function readGuestLayout(src: ByteSource, opts: LayoutOptions = {}): Promise<GuestLayout> {
  const table = await readPartitionTable(src, opts);
  const readers = opts.readers ?? READERS;
  const partitions: PartitionView[] = [];
  for (const p of table.partitions) partitions.push(await openPartition(src, p, readers));
  return { size: src.size, table, partitions, ...outsideRanges(src.size, table) };
}

async function openPartition(disk: ByteSource, partition: Partition, readers: readonly VolumeReader[]): Promise<PartitionView> {
  const view: PartitionView = { partition, source: disk, reader: null, volume: null, error: null };
  try {
    view.source = sliceSource(disk, partition.start, partition.size);
    const d = detect(await readHead(view.source), partition.size, readers);
    if (!d.reader) {
      view.volume = unknownVolume(partition.size, d.name);
    } else {
      view.reader = d.reader.name;
      view.volume = await d.reader.open(view.source);
    }
  } catch (e) {
    view.error = inPartition(e, partition.index, view.reader ?? undefined);
  }
  return view;
}

/** The disk's bytes outside every partition, split into tables, gaps and the area after the last partition. */
export function outsideRanges(size: number, table: PartitionTable): Pick<GuestLayout, 'tables' | 'gaps' | 'afterLast' | 'outside'> {
  const inside = new RangeSetBuilder();
  let lastEnd = 0;
  for (const p of table.partitions) {
    inside.add(p.start, p.start + p.size);
    lastEnd = Math.max(lastEnd, p.start + p.size);
  }
  const disk = RangeSet.of(0, size);
  const outside = disk.subtract(inside.build());
  const tables = table.tables.intersect(outside);
  const rest = outside.subtract(tables);
  return { tables, gaps: rest.clip(0, lastEnd), afterLast: rest.clip(lastEnd, size), outside };
}
