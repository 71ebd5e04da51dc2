/**
 * The file-level difference between two guest views (the engine under
 * `diff` and `rebase --check`): partitions paired by index, and for each
 * pair the volume compared file by file (diffVolume.ts), given the bytes
 * that differ between the two views (diffRanges.ts).
 *
 * A partition pair is:
 *  - unchanged, and not even scanned, when it sits at the same place on
 *    both sides and none of its bytes differ;
 *  - compared file by file when both sides hold a file system of one kind
 *    (at another start, `moved`, every file of equal size is read: the
 *    differing sectors say nothing about volume offsets that moved);
 *  - all added or all deleted when the partition exists on one side only,
 *    or holds another file system on each side (`reformatted`);
 *  - not compared when either side is not a file system vhdtool reads
 *    (BitLocker, LVM, unrecognised: `compared` false, with a note).
 * A file system that a reader claims but cannot read is an error
 * (BAD_FILESYSTEM, naming the disk and the partition), unless none of the
 * partition's bytes differ.
 */
import { VhdToolError } from '../errors.js';
import { inPartition } from '../guest/errors.js';
import type { GuestLayout, PartitionView } from '../guest/layout.js';
import { RangeSet } from '../guest/ranges.js';
import type { FsKind, UnknownVolume, Volume } from '../guest/volume.js';
import { noopProgress, type ProgressSink } from '../progress.js';
import { idsOf, indexVolume } from './diffIndex.js';
import { compareVolume, emptyChanges, oneSided, type VolumeChanges } from './diffVolume.js';

/** One side: a disk's path (for messages) and its guest layout. */
export interface ViewSide {
  path: string;
  layout: GuestLayout;
}

export type PartitionLayout = 'same' | 'resized' | 'moved' | 'added' | 'deleted';

export interface PartitionDiff {
  index: number;
  /** The new side's file system (the old side's for a deleted partition). */
  fileSystem: FsKind;
  oldFileSystem: FsKind;
  layout: PartitionLayout;
  /** Start and size on the new side (the old side's for a deleted partition). */
  start: number;
  size: number;
  /** Bytes of the partition (either side's extent) that differ. */
  differingBytes: number;
  /** False when the file systems were not read (see note). */
  compared: boolean;
  note: string | null;
  /** Names are compared without case (FAT, NTFS). */
  caseInsensitive: boolean;
  changes: VolumeChanges;
  /** The opened volumes (for reading files later: the template check's same-change test). */
  volA: Volume | null;
  volB: Volume | null;
}

export interface ViewsOptions {
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Disk bytes whose owning files are listed in each partition's `changes.torn`. */
  torn?: RangeSet;
  /**
   * The two sides' common ancestor (the layers both chains share), when
   * neither side is that ancestor itself: a file is matched across the sides
   * by its id only if the ancestor holds that id.
   */
  ancestor?: ViewSide;
}

interface Pair {
  index: number;
  a: PartitionView | null;
  b: PartitionView | null;
}

function pairs(a: GuestLayout, b: GuestLayout): Pair[] {
  const byIndex = new Map<number, Pair>();
  for (const p of a.partitions) byIndex.set(p.partition.index, { index: p.partition.index, a: p, b: null });
  for (const p of b.partitions) {
    const x = byIndex.get(p.partition.index);
    if (x) x.b = p;
    else byIndex.set(p.partition.index, { index: p.partition.index, a: null, b: p });
  }
  return [...byIndex.values()].sort((x, y) => x.index - y.index);
}

function layoutOf(p: Pair): PartitionLayout {
  if (!p.a) return 'added';
  if (!p.b) return 'deleted';
  if (p.a.partition.start !== p.b.partition.start) return 'moved';
  return p.a.partition.size === p.b.partition.size ? 'same' : 'resized';
}

/** The bytes of `differing` inside a partition, relative to its start. */
function local(differing: RangeSet, v: PartitionView | null): RangeSet {
  if (!v) return RangeSet.EMPTY;
  const { start, size } = v.partition;
  return differing.clip(start, start + size).shift(-start);
}

const caseless = (k: FsKind) => k === 'ntfs' || k.startsWith('fat');

/** The opened volume of one side, or the reason it cannot be compared (throws for an unreadable file system). */
function volumeOf(v: PartitionView, side: ViewSide): Volume | UnknownVolume {
  if (v.error) throw v.error.withPath(side.path);
  if (!v.volume) throw new VhdToolError('INTERNAL', `partition ${v.partition.index}: no volume and no error (please report this)`, side.path);
  return v.volume;
}

const isVolume = (v: Volume | UnknownVolume): v is Volume => 'scan' in v;

/**
 * True for an interruption: vhdtool's INTERRUPTED, or the signal's own
 * reason (an AbortError) that a reader may throw instead.
 */
export function isInterruption(e: unknown): boolean {
  return (e instanceof VhdToolError && e.code === 'INTERRUPTED') || (e instanceof Error && e.name === 'AbortError');
}

/** An interruption as vhdtool's INTERRUPTED; anything else as it is. */
export function asInterruption(e: unknown): unknown {
  return isInterruption(e) && !(e instanceof VhdToolError) ? new VhdToolError('INTERRUPTED', 'interrupted') : e;
}

/**
 * The error an operation reports when it failed while its signal was
 * aborted: the caller asked to stop, and is told it stopped (a reader may
 * fail with the signal's own reason, or a wrapped form of it); a real
 * refusal that happened first stays what it is.
 */
export function whenStopped(e: unknown, signal: AbortSignal | undefined): unknown {
  if (!signal?.aborted) return e;
  return e instanceof VhdToolError && e.code !== 'INTERRUPTED' && e.code !== 'INTERNAL' ? e : new VhdToolError('INTERRUPTED', 'interrupted');
}

/** Attributes a file system's error to its disk and partition; an interruption stays one. */
function blame(e: unknown, index: number, kind: string, side: ViewSide): unknown {
  if (isInterruption(e)) return asInterruption(e);
  return inPartition(e, index, kind).withPath(side.path);
}

export async function diffViews(A: ViewSide, B: ViewSide, differing: RangeSet, opts: ViewsOptions = {}): Promise<PartitionDiff[]> {
  const out: PartitionDiff[] = [];
  for (const p of pairs(A.layout, B.layout)) {
    if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
    out.push(await diffPair(p, A, B, differing, opts));
  }
  return out;
}

async function diffPair(p: Pair, A: ViewSide, B: ViewSide, differing: RangeSet, opts: ViewsOptions): Promise<PartitionDiff> {
  const layout = layoutOf(p);
  const localA = local(differing, p.a);
  const localB = local(differing, p.b);
  const extent = p.b ?? p.a!;
  const differingBytes = localA.shift(p.a?.partition.start ?? 0).union(localB.shift(p.b?.partition.start ?? 0)).bytes;
  const d: PartitionDiff = {
    index: p.index, fileSystem: 'unknown', oldFileSystem: 'unknown', layout, start: extent.partition.start, size: extent.partition.size,
    differingBytes, compared: true, note: null, caseInsensitive: false, changes: emptyChanges(), volA: null, volB: null,
  };
  // Nothing differs where the partition sits on both sides: the same file system, not even scanned.
  if (layout === 'same' && differingBytes === 0) {
    const v = p.b!.volume ?? p.a!.volume;
    d.fileSystem = d.oldFileSystem = v ? v.kind : 'unknown';
    if (!v || !isVolume(v)) d.compared = false;
    d.note = 'no sector of it differs';
    return d;
  }
  const va = p.a ? volumeOf(p.a, A) : null;
  const vb = p.b ? volumeOf(p.b, B) : null;
  d.oldFileSystem = va?.kind ?? vb!.kind;
  d.fileSystem = vb?.kind ?? va!.kind;
  d.caseInsensitive = caseless(d.fileSystem);
  const unread = [va, vb].find((v): v is UnknownVolume => v !== null && !isVolume(v));
  if (unread) {
    d.compared = false;
    d.note = `${unread.name}: not a file system vhdtool reads; ${differingBytes} bytes of it differ`;
    return d;
  }
  d.volA = va as Volume | null;
  d.volB = vb as Volume | null;
  if (!d.volA || !d.volB || d.volA.kind !== d.volB.kind) await oneSidedPair(d, A, B, opts);
  else await comparedPair(d, p, d.volA, d.volB, A, B, localA, localB, opts);
  return d;
}

/** Scans one side's volume into an index, with progress, its errors attributed to the disk and partition. */
function indexSide(index: number, vol: Volume, side: ViewSide, watch: RangeSet[], opts: ViewsOptions, mode: 'full' | 'resumable' | 'earlier' = 'full') {
  const progress = opts.progress ?? noopProgress;
  return withBlame(index, vol.kind, side, () => {
    progress.start(`reading partition ${index} (${vol.kind}) of ${side.path}`, 0);
    return indexVolume(vol, watch, opts.signal, mode).finally(() => progress.done());
  });
}

/** A partition on one side only, or reformatted: every file of the old side deleted, of the new side added. */
async function oneSidedPair(d: PartitionDiff, A: ViewSide, B: ViewSide, opts: ViewsOptions): Promise<void> {
  const deleted = d.volA ? oneSided(await indexSide(d.index, d.volA, A, [], opts), 'deleted') : emptyChanges();
  const added = d.volB ? oneSided(await indexSide(d.index, d.volB, B, [], opts), 'added') : emptyChanges();
  d.changes = { ...added, deleted: deleted.deleted, deletedDirs: deleted.deletedDirs, stateA: deleted.stateA };
  if (d.volA && d.volB) d.note = `reformatted: ${d.volA.kind} on the old side, ${d.volB.kind} on the new`;
}

/**
 * One file system on both sides: A's scan indexed, B's matched against it,
 * the files that may differ read. At the same place on both sides, B's scan
 * may continue from A's (compareVolume); when B's reader says it will, and
 * no common ancestor's ids are to be checked (that needs every file of A),
 * A's scan indexes nothing and B's hands over A's files that may differ.
 */
async function comparedPair(d: PartitionDiff, p: Pair, volA: Volume, volB: Volume, A: ViewSide, B: ViewSide,
  localA: RangeSet, localB: RangeSet, opts: ViewsOptions): Promise<void> {
  const progress = opts.progress ?? noopProgress;
  const torn = opts.torn ?? RangeSet.EMPTY;
  const watchA = [localA, local(torn, p.a)];
  const watchB = [localB, local(torn, p.b)];
  const changed = [...watchA, ...watchB].reduce((u, w) => u.union(w), RangeSet.EMPTY);
  const same = d.layout !== 'moved';
  const earlier = same && !opts.ancestor && volB.continuesFrom?.(volA, changed) === true;
  const known = opts.ancestor ? await ancestorIds(p, opts.ancestor, opts) : null;
  const compare = async (mode: 'full' | 'resumable' | 'earlier') => {
    const idx = await indexSide(p.index, volA, A, watchA, opts, mode);
    progress.start(`reading partition ${p.index} (${volB.kind}) of ${B.path}`, 0);
    return compareVolume(idx, volA, volB, watchB, {
      bitA: 1, bitB: 1, seen: 1, changedA: localA, changedB: localB, readAll: d.layout === 'moved',
      tornBitA: torn.isEmpty ? 0 : 2, tornBitB: torn.isEmpty ? 0 : 2,
      sameFile: known ? (id) => known.has(id) : undefined,
    }, {
      signal: opts.signal, progress, label: `partition ${p.index}`, afterScan: () => progress.done(),
      blame: (e, side) => blame(e, p.index, volB.kind, side === 'a' ? A : B),
    });
  };
  const changes = (earlier ? await compare('earlier') : null) ?? await compare(same ? 'resumable' : 'full');
  if (!changes) throw new VhdToolError('INTERNAL', `partition ${p.index}: no comparison was made (please report this)`);
  d.changes = changes;
  if (d.layout === 'moved') d.note = `moved from byte ${p.a!.partition.start} to ${p.b!.partition.start}: every file of equal size was read`;
}

/**
 * The ids the ancestor's volume holds at this partition, or null when it
 * cannot say (no such partition there, another place or file system, or
 * unreadable): then ids are taken as the file systems give them.
 */
async function ancestorIds(p: Pair, anc: ViewSide, opts: ViewsOptions): Promise<Set<string> | null> {
  const v = anc.layout.partitions.find((x) => x.partition.index === p.index);
  const vol = v?.volume;
  if (!v || v.error || !vol || !isVolume(vol) || v.partition.start !== p.b!.partition.start || vol.kind !== p.b!.volume?.kind) return null;
  const progress = opts.progress ?? noopProgress;
  progress.start(`reading partition ${p.index} (${vol.kind}) of the common parent ${anc.path}`, 0);
  try {
    return await idsOf(vol, opts.signal);
  } catch (e) {
    if (isInterruption(e)) throw asInterruption(e);
    return null;
  } finally {
    progress.done();
  }
}

async function withBlame<T>(index: number, kind: string, side: ViewSide, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw blame(e, index, kind, side);
  }
}
