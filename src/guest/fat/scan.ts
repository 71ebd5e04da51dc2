/**
 * One scan of a FAT volume: one pass over the FAT (fatRead.ts), then one
 * walk of the directory tree from the root, following each file's and
 * directory's cluster chain once through the scan's FatMap. What no walk
 * reached is a lost chain; what two walks reached is cross-linked.
 *
 * The volume's bytes end in exactly one of three sets:
 *   metadata  boot/reserved area, FATs, fixed root, slack past the last
 *             cluster, directories' clusters, bad clusters, lost chains
 *   fileData  clusters files' chains reach (all of a chain, even past the size)
 *   free      clusters the FAT marks free that no chain reaches
 */
import { VhdToolError } from '../../errors.js';
import { plural } from '../../plural.js';
import { Ownership } from '../ownership.js';
import { RangeSet, RangeSetBuilder } from '../ranges.js';
import { readChecked, type ByteSource } from '../source.js';
import type { GuestFile, ScanOptions, VolumeScan, VolumeState } from '../volume.js';
import { AnomalyLog } from './anomalies.js';
import { fsInfoProblem, type FatGeometry } from './bpb.js';
import { DirParser, type DirEntry } from './dirs.js';
import { FatCursor, readFat, type FatPass } from './fatRead.js';
import { BAD, END, NEXT, RESERVED, TAKEN_BEFORE, TAKEN_FREE, classify } from './table.js';

/** Largest read of a directory's clusters at a time. */
const DIR_WINDOW = 1024 * 1024;

/**
 * Clusters of a cross-linked tail followed for one owner; past that the
 * double-owned report covers the first ones only. (All owners together
 * follow at most the cluster count: `sharedBudget`.)
 */
const SHARED_TAIL_MAX = 1 << 16;

type WalkEnd = 'end' | 'free' | 'taken' | 'loop' | 'bad' | 'reserved' | 'out-of-range' | 'bad-start';

interface Walk {
  /** The clusters this walk took, as runs [first, end) in chain order, flat. */
  runs: number[];
  clusters: number;
  end: WalkEnd;
  /** The cluster where the walk stopped. */
  at: number;
  /** The entry of `at` when it ended the chain. */
  value: number;
}

interface PendingDir {
  /** Path from the root ('' for the root). */
  path: string;
  /** First cluster (0 for a FAT12/16 root). */
  start: number;
  /** Cluster runs to read (empty for a FAT12/16 root, which has a fixed area). */
  runs: number[];
}

export interface FatScanResult extends VolumeScan {
  /** The root directory's volume label entry, if any. */
  label: string | null;
}

export class FatScanner {
  private pass!: FatPass;
  private readonly log = new AnomalyLog();
  private readonly own = new Ownership();
  private readonly fileBytes = new RangeSetBuilder();
  private readonly dirBytes = new RangeSetBuilder();
  /** First cluster of each directory walked -> first cluster of its parent (0: the root, or none). */
  private readonly dirParent = new Map<number, number>();
  private files = 0;
  private directories = 0;
  private label: string | null = null;
  private readonly last: number;
  /** Cross-linked clusters a scan may still follow (all owners together): bounded by the cluster count. */
  private sharedBudget: number;
  private readonly fat: FatCursor;

  constructor(private readonly src: ByteSource, private readonly g: FatGeometry, private readonly opts: ScanOptions = {}) {
    this.last = g.clusterCount + 1;
    this.sharedBudget = g.clusterCount;
    this.fat = new FatCursor(src, g);
  }

  async run(): Promise<FatScanResult> {
    this.pass = await readFat(this.src, this.g, this.opts.signal);
    for (const n of this.g.notes) this.log.add('bpb', n);
    if (this.pass.mismatch) this.log.push(this.pass.mismatch);
    await this.checkFsInfo();
    await this.walkTree();
    return this.finish();
  }

  private async checkFsInfo(): Promise<void> {
    const g = this.g;
    if (g.fsInfoSector === null) return;
    const at = g.fsInfoSector * g.bytesPerSector;
    const problem = fsInfoProblem(await readChecked(this.src, at, 512, 'FSInfo sector'));
    if (problem) this.log.add('bpb', `FSInfo sector ${g.fsInfoSector}: ${problem}`, RangeSet.of(at, at + 512));
  }

  // ---- the tree -------------------------------------------------------------------------------

  private async walkTree(): Promise<void> {
    const queue: Array<PendingDir | undefined> = [];
    const g = this.g;
    if (g.kind === 'fat32') {
      const w = this.walk(g.rootCluster);
      const runs = await this.claimed(w);
      this.reportChain('the root directory', w);
      const data = this.bytesOf(runs);
      this.own.add(this.own.owner('/'), data);
      this.dirBytes.addSet(data);
      this.dirParent.set(g.rootCluster, 0);
      queue.push({ path: '', start: g.rootCluster, runs: w.runs });
    } else queue.push({ path: '', start: 0, runs: [] });
    for (let head = 0; head < queue.length; head++) {
      const d = queue[head]!;
      queue[head] = undefined; // walked: let its runs go
      await this.readDir(d, queue);
    }
  }

  private async readDir(d: PendingDir, queue: Array<PendingDir | undefined>): Promise<void> {
    const parser = new DirParser(this.g.kind === 'fat32');
    const names = new Set<string>();
    const found: DirEntry[] = [];
    const onEntry = (e: DirEntry) => found.push(e);
    const take = async () => {
      for (const e of found.splice(0)) await this.entry(e, d, names, queue);
    };
    const what = `directory ${d.path === '' ? '/' : d.path}`;
    if (d.path === '' && this.g.kind !== 'fat32') {
      // The root's sectors, of which only its entries' slots count (the rest of the last sector is padding).
      const bytes = await readChecked(this.src, this.g.rootStart, this.g.rootBytes, 'root directory');
      parser.feed(bytes.subarray(0, this.g.rootEntries * 32), this.g.rootStart, onEntry);
      await take();
    } else {
      const cs = this.g.clusterSize;
      const per = Math.max(1, Math.floor(DIR_WINDOW / cs));
      outer: for (let i = 0; i < d.runs.length; i += 2) {
        for (let c = d.runs[i]; c < d.runs[i + 1]; c += per) {
          if (this.opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
          const n = Math.min(per, d.runs[i + 1] - c);
          const at = this.clusterOffset(c);
          const more = parser.feed(await readChecked(this.src, at, n * cs, what), at, onEntry);
          await take();
          if (!more) break outer;
        }
      }
    }
    if (d.path === '') this.label = parser.labels[0] ?? null;
  }

  private async entry(e: DirEntry, parent: PendingDir, names: Set<string>, queue: Array<PendingDir | undefined>): Promise<void> {
    const path = parent.path === '' ? e.name : `${parent.path}/${e.name}`;
    if (e.nameProblem) this.log.add('bad-name', `${path}: ${e.nameProblem}`, this.slotSectors(e.slots));
    const key = e.name.toLowerCase();
    if (names.has(key)) this.log.add('duplicate-name', `${path} appears twice in its directory`, this.slotSectors(e.slots));
    names.add(key);
    if (e.directory) await this.subdirectory(e, path, parent, queue);
    else await this.file(e, path);
  }

  private async file(e: DirEntry, path: string): Promise<void> {
    const cs = this.g.clusterSize;
    const need = Math.ceil(e.size / cs);
    let runs: number[] = [];
    if (e.firstCluster !== 0) {
      const w = this.walk(e.firstCluster);
      runs = await this.claimed(w);
      this.reportChain(path, w);
      const have = clustersIn(runs);
      if (w.end === 'end' && have !== need) {
        this.log.add('size-mismatch', `${path}: ${have} clusters chained where its size (${e.size} bytes) needs ${need}`, this.bytesOf(runs));
      }
    } else if (e.size > 0) this.log.add('size-mismatch', `${path}: ${e.size} bytes but no clusters`);
    const data = this.bytesOf(runs);
    this.own.add(this.own.owner(path), data);
    this.fileBytes.addSet(data);
    this.files++;
    this.emit(e, path, e.size, false, data);
  }

  private async subdirectory(e: DirEntry, path: string, parent: PendingDir, queue: Array<PendingDir | undefined>): Promise<void> {
    const start = e.firstCluster;
    if (start === 0) {
      this.log.add('bad-chain', `${path}: a directory with no first cluster`);
      return;
    }
    const w = this.walk(start);
    if (w.clusters === 0 && (w.end === 'taken' || w.end === 'loop') && this.isAncestor(start, parent.start)) {
      this.log.add('directory-loop', `${path}: its first cluster ${start} is an enclosing directory's`, this.bytesOf([start, start + 1]));
      return;
    }
    const runs = await this.claimed(w);
    this.reportChain(path, w);
    const data = this.bytesOf(runs);
    this.own.add(this.own.owner(path), data);
    this.dirBytes.addSet(data);
    this.directories++;
    this.emit(e, path, clustersIn(runs) * this.g.clusterSize, true, data);
    // A directory whose first cluster another walk took is cross-linked: its content is not its own to read.
    if (w.clusters === 0) return;
    this.dirParent.set(start, parent.start);
    queue.push({ path, start, runs: w.runs });
  }

  private emit(e: DirEntry, path: string, size: number, directory: boolean, data: RangeSet): void {
    const f: GuestFile = {
      id: `path:${path.toLowerCase()}`,
      path,
      size,
      directory,
      system: false,
      data,
      meta: this.slotSectors(e.slots),
      ref: e.firstCluster,
    };
    this.opts.onFile?.(f);
  }

  /** True when `cluster` is the first cluster of directory `from` or of one enclosing it. */
  private isAncestor(cluster: number, from: number): boolean {
    let d = from;
    for (let hops = 0; d !== 0 && hops <= this.dirParent.size; hops++) {
      if (d === cluster) return true;
      d = this.dirParent.get(d) ?? 0;
    }
    return this.g.kind === 'fat32' && cluster === this.g.rootCluster;
  }

  // ---- chains ---------------------------------------------------------------------------------

  /**
   * Follows the chain from `start`, taking each cluster in the scan's map.
   * Stops at the end of the chain, at a broken link, or at a cluster taken
   * before (by this walk: a loop; by another: a cross-link) or free.
   */
  private walk(start: number): Walk {
    const map = this.pass.map;
    const runs: number[] = [];
    if (start < 2 || start > this.last) return { runs, clusters: 0, end: 'bad-start', at: start, value: 0 };
    let c = start;
    let first = c;
    let end = c;
    let clusters = 0;
    const close = () => {
      if (end > first) runs.push(first, end);
    };
    for (;;) {
      const v = map.take(c);
      if (v === TAKEN_FREE || v === TAKEN_BEFORE) {
        close();
        const how: WalkEnd = this.pass.free.has(c) ? 'free' : inRuns(runs, c) ? 'loop' : 'taken';
        return { runs, clusters, end: how, at: c, value: 0 };
      }
      clusters++;
      if (c === end) end = c + 1;
      else {
        close();
        first = c;
        end = c + 1;
      }
      const k = classify(v, map.mask, map.clusterCount);
      if (k === NEXT) {
        c = v;
        continue;
      }
      close();
      const how: WalkEnd = k === END ? 'end' : k === BAD ? 'bad' : k === RESERVED ? 'reserved' : 'out-of-range';
      return { runs, clusters, end: how, at: c, value: v };
    }
  }

  /**
   * The clusters a walk claims: those it took, the free cluster it ran
   * into, or the cross-linked tail it joined (which the ownership check
   * then reports as claimed twice).
   */
  private async claimed(w: Walk): Promise<number[]> {
    if (w.end === 'free') return [...w.runs, w.at, w.at + 1];
    if (w.end === 'taken') return [...w.runs, ...(await this.sharedTail(w.at))];
    return w.runs;
  }

  /**
   * The chain from `start`, a cluster another walk took, as long as it goes
   * through taken clusters. The scan's map no longer holds their links, so
   * they are read from the FAT itself; a loop, SHARED_TAIL_MAX clusters or
   * the scan's budget ends it.
   */
  private async sharedTail(start: number): Promise<number[]> {
    const runs: number[] = [];
    const seen = new Set<number>();
    const isFree = (c: number) => this.pass.free.has(c);
    let c = start;
    for (;;) {
      seen.add(c);
      if (runs.length > 0 && runs[runs.length - 1] === c) runs[runs.length - 1] = c + 1;
      else runs.push(c, c + 1);
      if (seen.size >= SHARED_TAIL_MAX || this.sharedBudget-- <= 0) return runs;
      const v = await this.fat.entry(c);
      if (classify(v, this.pass.map.mask, this.g.clusterCount) !== NEXT || seen.has(v)) return runs;
      if (this.pass.map.peek(v, isFree) !== 'taken') return runs;
      c = v;
    }
  }

  private reportChain(path: string, w: Walk): void {
    const at = () => this.bytesOf([w.at, w.at + 1]);
    const hex = (v: number) => `0x${v.toString(16).toUpperCase()}`;
    switch (w.end) {
      case 'end':
      case 'taken': // a cross-link: the ownership check names both owners
        return;
      case 'free':
        return this.log.add('bad-chain', `${path}: chain runs into cluster ${w.at}, which the FAT marks free`, at());
      case 'loop':
        return this.log.add('bad-chain', `${path}: chain loops back to cluster ${w.at}`, at());
      case 'bad':
        return this.log.add('bad-chain', `${path}: chain runs into cluster ${w.at}, marked bad`, at());
      case 'reserved':
        return this.log.add('bad-chain', `${path}: cluster ${w.at} holds the reserved value ${hex(w.value)} instead of a link`, at());
      case 'out-of-range':
        return this.log.add('bad-chain', `${path}: cluster ${w.at} links to cluster ${w.value}, outside 2 to ${this.last}`, at());
      case 'bad-start':
        return this.log.add('bad-chain', `${path}: first cluster ${w.at} is outside 2 to ${this.last}`);
    }
  }

  // ---- results --------------------------------------------------------------------------------

  private finish(): FatScanResult {
    const g = this.g;
    const clusterEnd = g.dataStart + g.clusterCount * g.clusterSize;
    const fatFree = this.clusterSetBytes(this.pass.free);
    const bad = this.clusterSetBytes(this.pass.bad);
    const lostB = new RangeSetBuilder();
    let lostRuns = 0;
    this.pass.map.forEachUntaken((s, e) => {
      lostRuns++;
      lostB.add(this.clusterOffset(s), this.clusterOffset(e));
    });
    const lost = lostB.build();
    if (!lost.isEmpty) {
      this.log.push({
        kind: 'unowned-allocated',
        message: `${lost.bytes} bytes in ${plural(lostRuns, 'run')} of clusters are allocated in the FAT but reached from no directory entry (lost chains; first at byte ${lost.first})`,
        ranges: lost,
      });
    }
    for (const a of this.own.check(fatFree).anomalies) this.log.push(a);
    const dirs = this.dirBytes.build();
    const files = this.fileBytes.build();
    const fixed = RangeSet.from([[0, g.dataStart], [clusterEnd, this.src.size]]);
    const metadata = fixed.union(dirs).union(bad).union(lost);
    return {
      state: volumeState(g, this.pass.entry1),
      free: fatFree.subtract(files).subtract(dirs),
      metadata,
      fileData: files.subtract(metadata),
      anomalies: this.log.list(),
      files: this.files,
      directories: this.directories,
      label: this.label,
    };
  }

  private clusterOffset(c: number): number {
    return this.g.dataStart + (c - 2) * this.g.clusterSize;
  }

  /** Cluster runs (flat pairs, any order) as volume bytes. */
  private bytesOf(runs: number[]): RangeSet {
    if (runs.length === 0) return RangeSet.EMPTY;
    const b = new RangeSetBuilder(runs.length / 2);
    for (let i = 0; i < runs.length; i += 2) b.add(this.clusterOffset(runs[i]), this.clusterOffset(runs[i + 1]));
    return b.build();
  }

  private clusterSetBytes(set: RangeSet): RangeSet {
    const b = new RangeSetBuilder(set.count);
    for (const [s, e] of set) b.add(this.clusterOffset(s), this.clusterOffset(e));
    return b.build();
  }

  /** The sectors holding a directory entry's slots. */
  private slotSectors(slots: number[]): RangeSet {
    const bps = this.g.bytesPerSector;
    const b = new RangeSetBuilder(slots.length);
    for (const s of slots) {
      const sector = Math.floor(s / bps) * bps;
      b.add(sector, sector + bps);
    }
    return b.build();
  }
}

function clustersIn(runs: number[]): number {
  let n = 0;
  for (let i = 0; i < runs.length; i += 2) n += runs[i + 1] - runs[i];
  return n;
}

function inRuns(runs: number[], c: number): boolean {
  for (let i = 0; i < runs.length; i += 2) if (c >= runs[i] && c < runs[i + 1]) return true;
  return false;
}

/**
 * The dirty bits. FAT16 and FAT32 keep two in entry 1 (fatgen103: bit 15 /
 * bit 27 set = cleanly shut down, bit 14 / bit 26 set = no disk error),
 * maintained by DOS, Windows 9x and Windows fastfat. Windows fastfat and
 * Linux also set bit 0 of the boot sector's "current head" byte while the
 * volume is mounted (fastfat bit 1 asks chkdsk for a surface test);
 * fsck.fat checks both. FAT12 has only the boot sector byte.
 */
export function volumeState(g: FatGeometry, entry1: number): VolumeState {
  const reasons: string[] = [];
  const shift = g.kind === 'fat32' ? 12 : 0;
  if (g.kind !== 'fat12') {
    if ((entry1 & (0x8000 << shift)) === 0) reasons.push(`FAT entry 1 has its clean-shutdown bit (bit ${15 + shift}) clear: the volume was not cleanly unmounted`);
    if ((entry1 & (0x4000 << shift)) === 0) reasons.push(`FAT entry 1 has its hard-error bit (bit ${14 + shift}) clear: a disk I/O error was met`);
  }
  if (g.bootFlags !== null) {
    if (g.bootFlags & 0x01) reasons.push('the boot sector\'s dirty flag is set (Windows and Linux set it while the volume is mounted)');
    if (g.bootFlags & 0x02) reasons.push('the boot sector asks for a surface test (Windows met a disk error)');
  }
  return { state: reasons.length ? 'dirty' : 'clean', reasons };
}
