/**
 * `map`: where the sectors a disk holds sit in the guest. For each partition,
 * how many of the leaf's bytes are file data, file-system metadata or free
 * space; with `files`, which files own them; and the picture's strips.
 *
 * It combines two layers that know nothing of each other: the chain (which
 * sectors the leaf holds: its bitmaps) and the guest (what each byte means:
 * partition tables and file systems read through the whole chain). The
 * combination is range arithmetic on RangeSets, exact to the sector whatever
 * the alignment of partitions against bitmap bytes and blocks.
 */
import * as path from 'node:path';
import { openChain } from '../chain/openChain.js';
import { layerHoldings } from '../chain/holdings.js';
import type { Chain } from '../chain/chain.js';
import { nodeFileSystem, type FileSystem } from '../io/fsys.js';
import type { PartitionView } from '../guest/layout.js';
import { layoutOf } from './guestLayout.js';
import { inPartition } from '../guest/errors.js';
import { RangeSet } from '../guest/ranges.js';
import type { Anomaly, FsKind, GuestFile, VolumeScan } from '../guest/volume.js';
import type { LeafClass, MapPicture } from '../cli/mapSvg.js';
import { VhdToolError } from '../errors.js';
import { noopProgress, type ProgressSink } from '../progress.js';
import { fmtBytes } from '../plural.js';

export interface MapOptions {
  fs?: FileSystem;
  /** The leaf's parent, overriding its locators. */
  parent?: string;
  /** List the files that own the leaf's bytes. */
  files?: boolean;
  progress?: ProgressSink;
  signal?: AbortSignal;
}

export interface MapFile {
  path: string;
  /** Leaf bytes in the file's data clusters. */
  leafBytes: number;
  size: number;
}

export interface MapPartition {
  index: number;
  scheme: 'mbr' | 'gpt' | 'none';
  start: number;
  size: number;
  /** The partition table's type ("0x07", a GPT type GUID; "none" for a disk with no table). */
  type: string;
  fileSystem: FsKind;
  /** What an unreadable partition looks like ("BitLocker", "unrecognised"), else null. */
  detected: string | null;
  clusterSize: number | null;
  /** clean, dirty, unclean-log, hibernated, needs-recovery; null when the file system was not read. */
  state: string | null;
  stateReasons: string[];
  alignment: Alignment;
  leafBytes: number;
  leafFreeBytes: number;
  leafMetadataBytes: number;
  leafFileBytes: number;
  /** Leaf bytes in a partition whose file system was not read. */
  leafUnknownBytes: number;
  /** The error that stopped this partition's file system from being read, or null. */
  error: { code: string; message: string } | null;
  anomalies: Array<{ kind: string; message: string }>;
  files?: MapFile[];
}

export interface Alignment {
  startSector: number;
  /** The start is a multiple of 4 KiB: a 4 KiB cluster is one bitmap byte (8 sectors). */
  bitmapAligned: boolean;
  /** The start is a multiple of the leaf's block size. */
  blockAligned: boolean;
  /** Clusters cross block boundaries (a cluster's sectors are in two blocks). */
  clustersCrossBlocks: boolean | null;
}

export interface MapResult {
  path: string;
  virtualSize: number;
  blockSize: number | null;
  /** Each layer, leaf first, with the bytes it holds. */
  layers: Array<{ path: string; type: string; heldBytes: number }>;
  scheme: 'mbr' | 'gpt' | 'none';
  leafBytes: number;
  partitions: MapPartition[];
  /** Leaf bytes outside every partition: tables, gaps before and between partitions, after the last one. */
  outsideBytes: number;
  outside: { tableBytes: number; gapBytes: number; tailBytes: number };
  warnings: string[];
  durationMs: number;
}

export interface MapAnalysis {
  result: MapResult;
  picture: MapPicture;
}

export async function map(disk: string, opts: MapOptions = {}): Promise<MapResult> {
  return (await analyzeMap(disk, opts)).result;
}

/** The map and the picture's strips (the CLI draws them with --svg). */
export async function analyzeMap(disk: string, opts: MapOptions = {}): Promise<MapAnalysis> {
  const t0 = Date.now();
  const fs = opts.fs ?? nodeFileSystem;
  const chain = await openChain(fs, disk, { parent: opts.parent, mode: 'strict' });
  try {
    const holdings = chain.layersLeafFirst.map((l) => layerHoldings(l));
    const leaf = holdings[0].sectors;
    const layout = await layoutOf(chain, disk);
    const progress = opts.progress ?? noopProgress;
    const partitions: MapPartition[] = [];
    const classes = emptyClasses();
    for (const entry of layout.partitions) {
      if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      partitions.push(await mapPartition(chain, entry, leaf, classes, opts, progress));
    }
    classes.outside = leaf.intersect(layout.outside);
    const result: MapResult = {
      path: disk,
      virtualSize: chain.layersLeafFirst[0].meta.virtualSize,
      blockSize: chain.layersLeafFirst[0].meta.blockSize,
      layers: chain.layersLeafFirst.map((l, i) => ({ path: l.path, type: l.meta.type, heldBytes: holdings[i].sectors.bytes })),
      scheme: layout.table.scheme,
      leafBytes: leaf.bytes,
      partitions,
      outsideBytes: classes.outside.bytes,
      outside: {
        tableBytes: leaf.intersectBytes(layout.tables),
        gapBytes: leaf.intersectBytes(layout.gaps),
        tailBytes: leaf.intersectBytes(layout.afterLast),
      },
      warnings: layout.table.warnings,
      durationMs: Date.now() - t0,
    };
    return { result, picture: picture(chain, holdings.map((h) => h.blocks), classes, result) };
  } finally {
    await chain.close();
  }
}

function emptyClasses(): Record<LeafClass, RangeSet> {
  return { file: RangeSet.EMPTY, metadata: RangeSet.EMPTY, free: RangeSet.EMPTY, outside: RangeSet.EMPTY, unknown: RangeSet.EMPTY };
}

async function mapPartition(chain: Chain, entry: PartitionView, leaf: RangeSet, classes: Record<LeafClass, RangeSet>,
  opts: MapOptions, progress: ProgressSink): Promise<MapPartition> {
  const p = entry.partition;
  const blockSize = chain.layersLeafFirst[0].meta.blockSize;
  const inPart = leaf.clip(p.start, p.start + p.size);
  const out: MapPartition = {
    index: p.index, scheme: p.scheme, start: p.start, size: p.size, type: p.type, fileSystem: 'unknown', detected: null,
    clusterSize: null, state: null, stateReasons: [], alignment: alignment(p.start, blockSize, null),
    leafBytes: inPart.bytes, leafFreeBytes: 0, leafMetadataBytes: 0, leafFileBytes: 0, leafUnknownBytes: inPart.bytes,
    error: null, anomalies: [],
  };
  const vol = entry.volume;
  if (entry.error || !vol || vol.kind === 'unknown' || !('scan' in vol)) {
    if (entry.error) out.error = { code: entry.error.code, message: entry.error.message };
    if (vol && !('scan' in vol)) out.detected = vol.name;
    classes.unknown = classes.unknown.union(inPart);
    return out;
  }
  out.fileSystem = vol.kind;
  out.clusterSize = vol.clusterSize;
  out.alignment = alignment(p.start, blockSize, vol.clusterSize);
  const local = inPart.shift(-p.start);
  const files: MapFile[] = [];
  let scan: VolumeScan;
  progress.start(`reading partition ${p.index} (${vol.kind})`, 0);
  try {
    scan = await vol.scan({
      signal: opts.signal,
      // Only files with a byte in the leaf can be listed: a reader may skip the others early.
      filesTouching: local,
      onFile: opts.files ? (f: GuestFile) => {
        // Directories and the file system's own files are metadata, counted as such above.
        if (f.directory || f.system) return;
        const n = f.data.intersectBytes(local);
        if (n > 0) files.push({ path: f.path, leafBytes: n, size: f.size });
      } : undefined,
    });
  } catch (e) {
    if (e instanceof VhdToolError && e.code === 'INTERRUPTED') throw e;
    const err = inPartition(e, p.index, vol.kind);
    if (err.code === 'INTERNAL') throw err;
    out.error = { code: err.code, message: err.message };
    classes.unknown = classes.unknown.union(inPart);
    return out;
  } finally {
    progress.done();
  }
  out.state = scan.state.state;
  out.stateReasons = scan.state.reasons;
  out.anomalies = scan.anomalies.map((a: Anomaly) => ({ kind: a.kind, message: a.message }));
  const free = local.intersect(scan.free);
  const file = local.intersect(scan.fileData).subtract(free);
  // Whatever is neither free nor file data is the file system's: its structures, and anything it does not account for.
  const meta = local.subtract(free).subtract(file);
  out.leafFreeBytes = free.bytes;
  out.leafFileBytes = file.bytes;
  out.leafMetadataBytes = meta.bytes;
  out.leafUnknownBytes = 0;
  classes.free = classes.free.union(free.shift(p.start));
  classes.file = classes.file.union(file.shift(p.start));
  classes.metadata = classes.metadata.union(meta.shift(p.start));
  if (opts.files) out.files = files.sort((a, b) => b.leafBytes - a.leafBytes || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

function alignment(start: number, blockSize: number | null, clusterSize: number | null): Alignment {
  return {
    startSector: start / 512,
    bitmapAligned: start % 4096 === 0,
    blockAligned: blockSize !== null && start % blockSize === 0,
    // Block boundaries cut clusters when the partition start is not a multiple of the cluster size within a block.
    clustersCrossBlocks: clusterSize === null || blockSize === null ? null
      : clusterSize > blockSize || (start % blockSize) % Math.min(clusterSize, blockSize) !== 0,
  };
}

function picture(chain: Chain, blocks: RangeSet[], classes: Record<LeafClass, RangeSet>, r: MapResult): MapPicture {
  return {
    title: `${path.basename(chain.layersLeafFirst[0].path)}: ${fmtBytes(r.leafBytes)} held by the leaf, on a ${fmtBytes(r.virtualSize)} disk`,
    size: r.virtualSize,
    layers: chain.layersLeafFirst.map((l, i) => ({ label: `${i === 0 ? 'leaf' : `parent ${i}`}: ${path.basename(l.path)}`, blocks: blocks[i] })),
    leaf: classes,
    partitions: r.partitions.map((p) => ({ start: p.start, end: p.start + p.size, label: `${p.index}: ${p.fileSystem === 'unknown' ? (p.detected ?? 'unknown') : p.fileSystem}` })),
  };
}
