/**
 * The file-level difference of one volume between two views: side A is an
 * index (diffIndex.ts), side B is scanned and matched against it file by
 * file as the scan hands each one over, so only one side is held in memory.
 *
 * Files are matched by the identity the file system gives them (GuestFile.id:
 * NTFS record and sequence, ext inode and generation, FAT path). Only files
 * that may differ are read: touched by the differing bytes on either side,
 * or laid out on other clusters (diffIndex.ts); a size change is a
 * modification without reading.
 */
import { VhdToolError } from '../errors.js';
import { RangeSet, RangeSetBuilder } from '../guest/ranges.js';
import type { GuestFile, Volume, VolumeState } from '../guest/volume.js';
import { noopProgress, type ProgressSink } from '../progress.js';
import { hashContent, LightMaker, type Light, type VolumeIndex } from './diffIndex.js';

export interface Comparison {
  /** Watch bit, in the index (side A), of the bytes that differ in this comparison. */
  bitA: number;
  /** Watch bit of the same bytes on side B. */
  bitB: number;
  /** Bit this comparison sets in the index records it finds on side B. */
  seen: number;
  /** The differing bytes, volume-relative, on side A and on side B. */
  changedA: RangeSet;
  changedB: RangeSet;
  /** Read every file of equal size (the two volumes do not sit at the same disk offset). */
  readAll: boolean;
  /**
   * When set, an id on both sides is one file only if this says so (the id
   * existed in the two disks' common ancestor); otherwise the two are
   * different files that happen to carry one number (an NTFS record reused
   * the same way on two disks that diverged).
   */
  sameFile?: (id: string) => boolean;
  /** Watch bits (A, B) of bytes whose owners are listed in `torn` (0: none). */
  tornBitA?: number;
  tornBitB?: number;
}

export interface Modified {
  a: Light;
  b: Light;
}

export interface MetaItem {
  /** A system file's or directory's path, or STRUCTURES. */
  name: string;
  kind: 'system-file' | 'directory' | 'structures';
  /** Volume-relative bytes of it that differ (either side). */
  changed: RangeSet;
}

/** The name under which the root directory's metadata is reported. */
export const ROOT_NAME = '/';

/** The name of the file system's structures that belong to no file (boot sector, FATs, group descriptors, bitmaps...). */
export const STRUCTURES = '(file-system structures)';

export interface VolumeChanges {
  added: Light[];
  deleted: Light[];
  modified: Modified[];
  /** Same id, other path (a content change is listed under modified too). */
  renamed: Modified[];
  createdDirs: Light[];
  deletedDirs: Light[];
  renamedDirs: Modified[];
  /** File-system metadata whose bytes differ. */
  metadata: MetaItem[];
  /** Paths (side B's, else A's) of files owning bytes under the torn bits. */
  torn: string[];
  filesRead: number;
  bytesRead: number;
  /** Each side's volume state (null: not scanned). */
  stateA: VolumeState | null;
  stateB: VolumeState | null;
}

export interface CompareVolumeOptions {
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** A label for progress ("partition 1"). */
  label?: string;
  /** Files read at once (default 4). */
  concurrency?: number;
  /** Called when side B's scan is over (before files are read). */
  afterScan?: () => void;
  /** Maps an error of side A's or B's file system to the error thrown (to name the disk and partition). */
  blame?: (e: unknown, side: 'a' | 'b') => unknown;
}

export function emptyChanges(): VolumeChanges {
  return { added: [], deleted: [], modified: [], renamed: [], createdDirs: [], deletedDirs: [], renamedDirs: [], metadata: [], torn: [], filesRead: 0, bytesRead: 0, stateA: null, stateB: null };
}

class Collector {
  readonly out = emptyChanges();
  readonly candidates: Modified[] = [];
  private readonly meta = new Map<string, MetaItem>();
  private readonly torn = new Set<string>();

  constructor(private readonly c: Comparison, private readonly index: VolumeIndex) {}

  /**
   * The common case, decided without a light record for either side: the
   * same file (record i of the index) at the same path, of the same size and
   * layout, touched by nothing this comparison looks at. Marks it seen.
   */
  unchanged(f: GuestFile, i: number, touchedB: number, layoutB: number): boolean {
    const c = this.c;
    const x = this.index;
    const watched = c.bitB | (c.tornBitB ?? 0);
    if (touchedB & watched || x.directory(i) !== f.directory || x.system(i) !== f.system || x.paths[i] !== f.path) return false;
    if (!f.directory && !f.system && (c.readAll || x.size(i) !== f.size || x.layout(i) !== layoutB || x.touched(i) & c.bitA)) return false;
    x.seen[i] |= c.seen;
    return true;
  }

  /** B's file `l`, and index record i when it is the same file (-1: none). */
  fromB(l: Light, i: number): void {
    const c = this.c;
    if (c.tornBitB && (l.touched & c.tornBitB)) this.torn.add(l.path);
    if ((l.system || l.directory) && (l.touched & c.bitB) && l.ranges) this.addMeta(l, l.ranges.intersect(c.changedB));
    if (i >= 0) this.index.seen[i] |= c.seen;
    // The file system's own files are metadata (above), never listed as user files.
    if (l.system || (i >= 0 && this.index.system(i))) return;
    if (i < 0) {
      (l.directory ? this.out.createdDirs : this.out.added).push(l);
      return;
    }
    const a = this.index.light(i);
    if (a.directory !== l.directory) {
      this.gone(a);
      (l.directory ? this.out.createdDirs : this.out.added).push(l);
      return;
    }
    if (a.path !== l.path) (l.directory ? this.out.renamedDirs : this.out.renamed).push({ a, b: l });
    if (l.directory) return;
    if (a.size !== l.size) this.out.modified.push({ a, b: l });
    else if (c.readAll || (a.touched & c.bitA) || (l.touched & c.bitB) || a.layout !== l.layout) this.candidates.push({ a, b: l });
  }

  /** The root directory of either side: its metadata only (it is in every volume). */
  root(l: Light | null, bit: number, changed: RangeSet): void {
    if (l && (l.touched & bit) && l.ranges) this.addMeta({ ...l, id: '(root)', path: ROOT_NAME }, l.ranges.intersect(changed));
  }

  /** Index record i, after side B's scan: its metadata, torn bytes, and whether it is gone. */
  fromA(i: number): void {
    const c = this.c;
    const x = this.index;
    const t = x.touched(i);
    const gone = !(x.seen[i] & c.seen);
    if (!gone && !(t & ((c.tornBitA ?? 0) | c.bitA))) return;
    const a = x.light(i);
    if (c.tornBitA && (t & c.tornBitA)) this.torn.add(a.path);
    if ((a.system || a.directory) && (t & c.bitA) && a.ranges) this.addMeta(a, a.ranges.intersect(c.changedA));
    if (gone) this.gone(a);
  }

  private gone(a: Light): void {
    if (a.system) return;
    (a.directory ? this.out.deletedDirs : this.out.deleted).push(a);
  }

  private addMeta(l: Light, changed: RangeSet): void {
    const key = l.id;
    const m = this.meta.get(key);
    if (m) m.changed = m.changed.union(changed);
    else this.meta.set(key, { name: l.path, kind: l.system ? 'system-file' : 'directory', changed });
  }

  finish(structures: RangeSet): VolumeChanges {
    const items = [...this.meta.values()].filter((m) => !m.changed.isEmpty);
    if (!structures.isEmpty) items.push({ name: STRUCTURES, kind: 'structures', changed: structures });
    this.out.metadata = items.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    this.out.torn = [...this.torn].sort();
    return this.out;
  }
}

/**
 * Compares volume B (scanned now) with the index of volume A. `watchB` are
 * the sets B's files are checked against (Comparison.bitB and tornBitB
 * index into it; watchB[0] are the differing bytes).
 *
 * When the index holds the reader's state (indexVolume with resumable) and
 * the volumes sit at the same place, B is scanned incrementally: its reader
 * may leave out every file that is the same as A's and touched by no watch
 * set of either side, which is exactly a file `unchanged` would accept; those
 * are matched here by the reader's word (VolumeScan.unreported). A partial
 * index (VolumeIndex.partial) gets A's files that may differ from B's scan;
 * null is returned when B's reader did not scan incrementally after all
 * (then A must be indexed in full).
 */
export async function compareVolume(index: VolumeIndex, volA: Volume, volB: Volume, watchB: readonly RangeSet[], c: Comparison,
  opts: CompareVolumeOptions = {}): Promise<VolumeChanges | null> {
  const col = new Collector(c, index);
  const claimedB = new RangeSetBuilder();
  const maker = new LightMaker(watchB, claimedB);
  const blame = opts.blame ?? ((e: unknown) => e);
  // Both scans usually report files in the same order (MFT record, inode, directory walk): the record after
  // the last one matched is tried before the map.
  let next = 0;
  const changed = watchB.reduce((u, w) => u.union(w), index.watched);
  // A partial index gets A's files that may differ as B's scan hands them over, measured as indexVolume measures.
  const claimedA = new RangeSetBuilder();
  const makerA = new LightMaker(index.watch, claimedA);
  const onEarlier = index.partial ? (f: GuestFile) => index.take(f, makerA) : undefined;
  const since = index.resume && !c.readAll ? { from: index.resume, changed, onEarlier } : undefined;
  index.resume = null; // the reader's own reference is all that keeps it
  const scanB = await volB.scan({
    signal: opts.signal,
    since,
    onFile: (f) => {
      maker.measure(f);
      if (f.path === '') {
        col.root(maker.light(f), c.bitB, c.changedB);
        return;
      }
      let i = next < index.count && index.ids[next] === f.id ? next : index.find(f.id);
      if (i >= 0) next = i + 1;
      if (i >= 0 && c.sameFile && !c.sameFile(f.id)) i = -1;
      // A second report of one id (a reader naming a file twice) is the first one's.
      if (i >= 0 && index.seen[i] & c.seen) return;
      if (i >= 0 && col.unchanged(f, i, maker.touched, maker.layout)) return;
      col.fromB(maker.light(f), i);
    },
  }).catch((e: unknown) => { throw blame(e, 'b'); }).finally(() => opts.afterScan?.());
  if (index.partial) {
    if (!scanB.unreported) return null;
    index.claimed = index.claimed.union(claimedA.build());
  }
  if (scanB.unreported) sameAsBefore(col, index, c, scanB.unreported);
  for (let i = 0; i < index.count; i++) col.fromA(i);
  col.root(index.root, c.bitA, c.changedA);
  // Differing bytes of metadata that no file claims: the file system's own structures.
  const structures = index.metadata.union(scanB.metadata.intersect(c.changedB)).subtract(index.claimed).subtract(claimedB.build());
  await readCandidates(col, volA, volB, opts, blame);
  const out = col.finish(structures);
  out.stateA = index.state;
  out.stateB = scanB.state;
  return out;
}

/**
 * A's files that an incremental scan of B left out because they are the
 * same there: found on B, unchanged, as `unchanged` would have decided;
 * unless the two sides only share the id and not the file (Comparison.sameFile),
 * when B's file is another one, added (and A's deleted).
 */
function sameAsBefore(col: Collector, index: VolumeIndex, c: Comparison, unreported: (ref: number) => boolean): void {
  for (let i = 0; i < index.count; i++) {
    if (index.seen[i] & c.seen || !unreported(index.ref(i))) continue;
    if (c.sameFile && !c.sameFile(index.ids[i])) col.fromB(index.light(i), -1);
    else index.seen[i] |= c.seen;
  }
}

/** Reads the candidates on both sides; those whose contents differ are modified. */
async function readCandidates(col: Collector, volA: Volume, volB: Volume, opts: CompareVolumeOptions, blame: (e: unknown, side: 'a' | 'b') => unknown): Promise<void> {
  const list = col.candidates;
  if (!list.length) return;
  const progress = opts.progress ?? noopProgress;
  const total = list.reduce((n, m) => n + m.a.size + m.b.size, 0);
  progress.start(`reading ${list.length} file${list.length === 1 ? '' : 's'} that may differ${opts.label ? ` (${opts.label})` : ''}`, total);
  const advance = (n: number) => { progress.advance(n); col.out.bytesRead += n; };
  const differs = new Array<boolean>(list.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= list.length) return;
      if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      const { a, b } = list[i];
      const [ha, hb] = await Promise.all([
        hashContent(volA, a, opts.signal, advance).catch((e: unknown) => { throw blame(e, 'a'); }),
        hashContent(volB, b, opts.signal, advance).catch((e: unknown) => { throw blame(e, 'b'); }),
      ]);
      differs[i] = ha !== hb;
      col.out.filesRead++;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(list.length, opts.concurrency ?? 4) }, worker));
  } finally {
    progress.done();
  }
  list.forEach((m, i) => { if (differs[i]) col.out.modified.push(m); });
}

/** Every file of a volume present on one side only: all added (side B) or all deleted (side A). */
export function oneSided(index: VolumeIndex, side: 'added' | 'deleted'): VolumeChanges {
  const out = emptyChanges();
  if (side === 'added') out.stateB = index.state;
  else out.stateA = index.state;
  for (let i = 0; i < index.count; i++) {
    if (index.system(i)) continue;
    const l = index.light(i);
    if (l.directory) (side === 'added' ? out.createdDirs : out.deletedDirs).push(l);
    else (side === 'added' ? out.added : out.deleted).push(l);
  }
  return out;
}
