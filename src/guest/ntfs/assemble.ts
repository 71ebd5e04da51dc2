/**
 * After the MFT pass: extension records checked against their bases, paths
 * built, every file and stream reported once (record order), every claimed
 * range filed as metadata or file data, and the ownership cross-check.
 *
 * After an incremental pass (delta.ts) only the files that may differ from
 * the earlier view are reported: those of dirty owners, those with a run in
 * the changed bytes, and those whose path or system-ness changed (a renamed
 * or replaced directory above them). The ranges filed, and the ownership
 * check, then cover the reported files, and the scan's metadata and file
 * data are given within the changed bytes only. So are they with
 * ScanOptions.within, which, when no file is reported, lets the files with
 * no run in those bytes be only counted.
 */
import { checkAborted } from '../errors.js';
import { Ownership } from '../ownership.js';
import { RangeSet, RangeSetBuilder } from '../ranges.js';
import type { GuestFile, ScanOptions, VolumeScan } from '../volume.js';
import type { NtfsResume } from './delta.js';
import type { AnomalyLog, MftPass } from './pass.js';
import { Paths, ROOT, SYSTEM_RECORDS } from './paths.js';
import { F_DIR, F_IN_USE, LIVE_MASK, META_STREAM, NO_PARENT_SLOT, RunIndex, type RecordTable, type RunTable } from './tables.js';

/** A stream number's room in GuestFile.ref (record * STREAMS + stream). */
export const STREAMS = 65536;

/** What the assembly needs of the volume. */
export interface VolumeView {
  readonly size: number;
  readonly clusterArea: { start: number; end: number };
  recordRanges(n: number): RangeSet;
}

/** An incremental scan: the earlier view, the bytes that may differ, and the owners the pass made again. */
export interface Since {
  prev: NtfsResume;
  changed: RangeSet;
  dirty: Uint8Array;
}

export interface Assembled {
  scan: Omit<VolumeScan, 'state'>;
  hiberfil: number;
  paths: Paths;
  /** The GuestFiles of any record, as this scan reports them. */
  files: RecordFiles;
  unreported?: (ref: number) => boolean;
}

export class Assembly {
  private readonly metadata = new RangeSetBuilder();
  private readonly fileData = new RangeSetBuilder();
  private readonly own = new Ownership((ref) => this.describe(ref));
  private readonly anomalies: AnomalyLog;
  private paths: Paths | null = null;
  private made: RecordFiles | null = null;
  private readonly extOf = new Map<number, number[]>();
  private files = 0;
  private directories = 0;
  hiberfil = -1;

  constructor(private readonly vol: VolumeView, private readonly pass: MftPass, private readonly free: RangeSet, private readonly opts: ScanOptions,
    private readonly since?: Since) {
    this.anomalies = pass.anomalies;
  }

  run(): Assembled {
    const t = this.pass.records;
    this.checkExtensions();
    const paths = new Paths({
      count: t.count,
      inUse: (r) => t.live(r),
      isDirectory: (r) => (t.flags[r] & F_DIR) !== 0,
      sequence: t.sequence, parent: t.parent, parentSeq: t.parentSeq, names: t.names,
    });
    this.paths = paths;
    this.made = new RecordFiles(this.vol, this.pass, paths, this.extOf);
    const reported = this.since ? this.emitChanged(paths, this.since) : (this.emitAll(paths), null);
    for (const o of paths.orphans) this.anomalies.add('orphan', `MFT record ${o.record} (${t.names[o.record] ?? 'no name'}) is unreachable from the root: ${o.why}`);
    const out: Assembled = { scan: this.finish(), hiberfil: this.hiberfil, paths, files: this.made };
    if (reported) {
      const prev = this.since!.prev.pass;
      out.unreported = (ref) => {
        const r = Math.floor(ref / STREAMS);
        return r < reported.length && !reported[r] && this.pass.live(r) && prev.live(r) && !this.since!.dirty[r];
      };
    }
    return out;
  }

  /** Extension records count only for a live base of the same sequence; names and sizes they hold go to it. */
  private checkExtensions(): void {
    const t = this.pass.records;
    for (const e of this.pass.extensions) {
      if (!this.pass.live(e.base)) {
        this.anomalies.add('orphan', `MFT record ${e.record} is an extension of record ${e.base}, which is not in use`);
        continue;
      }
      if (e.baseSeq !== 0 && t.sequence[e.base] !== e.baseSeq) {
        this.anomalies.add('bad-sequence', `MFT record ${e.record} is an extension of record ${e.base} with sequence ${e.baseSeq}, which now has sequence ${t.sequence[e.base]}`);
        continue;
      }
      let l = this.extOf.get(e.base);
      if (!l) this.extOf.set(e.base, (l = []));
      l.push(e.record);
    }
    this.pass.settle();
  }

  private emitAll(paths: Paths): void {
    const t = this.pass.records;
    const runs = this.pass.runs;
    const order = runs.order();
    // Reporting nothing, and claims wanted only within some bytes: records with no run there are only counted.
    const within = this.opts.within && !this.opts.onFile ? touchedOwners(runs, this.opts.within) : null;
    let j = 0;
    for (let r = 0; r < t.count; r++) {
      if ((r & 1023) === 0) checkAborted(this.opts.signal);
      while (j < order.length && runs.owner[order[j]] < r) j++; // runs of dead owners are skipped
      const startRuns = j;
      while (j < order.length && runs.owner[order[j]] === r) j++;
      if ((t.flags[r] & LIVE_MASK) !== F_IN_USE) continue;
      const system = locate(r, t, paths);
      if (within && !within.has(r)) this.skip(r, paths, system);
      else this.emitRecord(r, paths, system, runs, order, startRuns, j);
    }
  }

  /**
   * The incremental scan's reports (see the module comment), in record
   * order; every live record is still located, in the order a full scan
   * locates them, so that paths resolve alike. Returns which were reported.
   */
  private emitChanged(paths: Paths, s: Since): Uint8Array {
    const t = this.pass.records;
    const runs = this.pass.runs;
    const order = runs.order();
    const prev = s.prev.runs;
    const touched = touchedOwners(s.prev.pass.runs, s.changed);
    const moved = new Moves(s.prev, this.pass, paths);
    const reported = new Uint8Array(t.count);
    // The earlier view's files of a record whose files may differ go first (ScanOptions.since.onEarlier).
    const onEarlier = this.opts.since?.onEarlier;
    const earlier = onEarlier ? (r: number) => s.prev.files.all(r, onEarlier) : () => undefined;
    let j = 0;
    for (let r = 0; r < t.count; r++) {
      if ((r & 1023) === 0) checkAborted(this.opts.signal);
      while (j < order.length && runs.owner[order[j]] < r) j++;
      const startRuns = j;
      while (j < order.length && runs.owner[order[j]] === r) j++;
      if ((t.flags[r] & LIVE_MASK) !== F_IN_USE) {
        if (s.dirty[r]) earlier(r); // gone from this view
        continue;
      }
      const system = locate(r, t, paths);
      if (s.dirty[r]) {
        earlier(r);
        this.emitRecord(r, paths, system, runs, order, startRuns, j);
      } else if (touched.has(r) || moved.moved(r)) {
        earlier(r);
        const span = prev.span(r);
        this.emitRecord(r, paths, system, prev.runs, prev.order, span.from, span.to);
      } else {
        this.skip(r, paths, system);
        continue;
      }
      reported[r] = 1;
    }
    return reported;
  }

  /** Counts a record whose files are not reported nor claimed (incremental or `within`), and notes hiberfil.sys. */
  private skip(r: number, paths: Paths, system: boolean): void {
    const directory = (this.pass.records.flags[r] & F_DIR) !== 0;
    this.noteHiberfil(r, paths, system, directory);
    if (directory) this.directories++;
    else this.files++;
  }

  private noteHiberfil(r: number, paths: Paths, system: boolean, directory: boolean): void {
    if (!directory && !system && this.pass.records.parent[r] === ROOT && paths.pathAfterLocate(r).toLowerCase() === 'hiberfil.sys') this.hiberfil = r;
  }

  /**
   * Files record r's ranges (and its named streams') and reports it. A
   * file's path, id, own metadata and GuestFile are built only when onFile
   * gets it (see reports()): with 200,000 files that is most of the cost.
   */
  private emitRecord(r: number, paths: Paths, system: boolean, runs: RunTable, order: Uint32Array, from: number, to: number): void {
    const t = this.pass.records;
    const directory = (t.flags[r] & F_DIR) !== 0;
    const seq = t.sequence[r];
    if (r !== ROOT && t.names[r] === undefined && r >= SYSTEM_RECORDS) this.anomalies.add('bad-record', `MFT record ${r} is in use but has no $FILE_NAME`);
    this.noteHiberfil(r, paths, system, directory);
    const metaRuns = runRanges(runs, order, from, to, META_STREAM);
    if (!metaRuns.isEmpty) this.metadata.addSet(metaRuns);
    const main = directory ? metaRuns : runRanges(runs, order, from, to, 0);
    this.claim(r * STREAMS, system || directory, main, directory ? RangeSet.EMPTY : metaRuns);
    if (this.reports(main)) this.opts.onFile!(this.made!.record(r, system, main, metaRuns));
    if (directory) this.directories++;
    else this.files++;
    const named = this.pass.streams.get(r);
    if (!named) return;
    sortedStreams(named.names).forEach(({ name, k }, i) => {
      const data = runRanges(runs, order, from, to, k + 1);
      this.claim(r * STREAMS + i + 1, system, data, RangeSet.EMPTY);
      if (this.reports(data)) this.opts.onFile!(this.made!.stream(r, system, name, named.sizes[k], i + 1, data));
    });
  }

  /** Does onFile get a file with these data ranges (the caller's filesTouching hint)? */
  private reports(data: RangeSet): boolean {
    if (!this.opts.onFile) return false;
    const only = this.opts.filesTouching;
    if (!only) return true;
    for (let i = 0; i < data.count; i++) if (only.overlaps(data.start(i), data.end(i))) return true;
    return false;
  }

  /** Files a stream's ranges as metadata or data, and registers them with the ownership check (owner named by ref). */
  private claim(ref: number, metadata: boolean, data: RangeSet, extra: RangeSet): void {
    const owner = this.own.ownerKey(ref);
    this.own.add(owner, data);
    this.own.add(owner, extra);
    if (metadata) this.metadata.addSet(data);
    else this.fileData.addSet(data);
  }

  /** The path of a stream by its ref, for the ownership check's messages. */
  private describe(ref: number): string {
    const r = Math.floor(ref / STREAMS);
    const k = ref % STREAMS;
    const path = this.paths?.pathAfterLocate(r) ?? '';
    const named = this.pass.streams.get(r);
    if (k === 0 || !named) return path || '(root)';
    return `${path}:${sortedStreams(named.names)[k - 1].name}`;
  }

  private finish(): Omit<VolumeScan, 'state'> {
    const { owned, anomalies } = this.own.check(this.free);
    const area = this.vol.clusterArea;
    // Within the changed bytes, an incremental scan's reported files own what all files own (the others own none of them).
    const only = this.since?.changed ?? this.opts.within;
    const within = only ? (x: RangeSet) => x.intersect(only) : (x: RangeSet) => x;
    const allocated = within(RangeSet.of(area.start, area.end).subtract(this.free));
    const unowned = allocated.subtract(owned);
    if (!unowned.isEmpty) this.anomalies.add('unowned-allocated', `${unowned.bytes} bytes are allocated in $Bitmap but claimed by no file (first at byte ${unowned.first})`, unowned);
    this.metadata.addSet(unowned);
    if (area.end < this.vol.size) this.metadata.add(area.end, this.vol.size);
    return {
      free: this.free,
      metadata: within(this.metadata.build()),
      fileData: within(this.fileData.build()),
      anomalies: [...anomalies, ...this.anomalies.list()],
      files: this.files,
      directories: this.directories,
    };
  }
}

/** A record's named streams in name order (their GuestFile numbers), each with its index in the pass's list. */
function sortedStreams(names: string[]): Array<{ name: string; k: number }> {
  return names.map((name, k) => ({ name, k })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Owners with a run that has a byte in `changed`. */
function touchedOwners(runs: RunTable, changed: RangeSet): Set<number> {
  const out = new Set<number>();
  if (changed.isEmpty) return out;
  const lo = changed.first;
  const hi = changed.last;
  for (let i = 0; i < runs.n; i++) {
    const s = runs.start[i];
    const e = runs.end[i];
    if (e > lo && s < hi && changed.overlaps(s, e)) out.add(runs.owner[i]);
  }
  return out;
}

/**
 * Whether a record the incremental pass did not make again (its own
 * entries are the earlier view's) has another path or system-ness in this
 * view: a directory whose resolved path changed, or a file whose parent
 * changed (in use, sequence, directory-ness, or its resolved path). Only
 * paths that locate() has already resolved are asked for.
 */
class Moves {
  private readonly parentMemo: Int8Array;
  private readonly dirMemo: Int8Array;

  constructor(private readonly prev: NtfsResume, private readonly pass: MftPass, private readonly paths: Paths) {
    this.parentMemo = new Int8Array(pass.records.count);
    this.dirMemo = new Int8Array(pass.records.count);
  }

  moved(r: number): boolean {
    const t = this.pass.records;
    if (t.flags[r] & F_DIR) return this.dirMoved(r);
    const p = t.parent[r];
    if (p === NO_PARENT_SLOT || p >= t.count) return false; // no usable parent in either view
    let m = this.parentMemo[p];
    if (m === 0) this.parentMemo[p] = m = this.parentChanged(p) ? 2 : 1;
    if (m === 2) return true;
    // The parent is the same record in both views: r's parent problem, if any, is the same too (an orphan in both).
    if (!this.pass.live(p) || !(t.flags[p] & F_DIR)) return false;
    if (t.parentSeq[r] !== 0 && t.parentSeq[r] !== t.sequence[p]) return false;
    return this.dirMoved(p);
  }

  /** Whether record p, as a parent, differs: in use, sequence, directory-ness. */
  private parentChanged(p: number): boolean {
    const a = this.prev.pass;
    const b = this.pass;
    const live = a.live(p);
    if (live !== b.live(p)) return true;
    if (!live) return false;
    return a.records.sequence[p] !== b.records.sequence[p] || (a.records.flags[p] & F_DIR) !== (b.records.flags[p] & F_DIR);
  }

  /** Whether live directory d (in both views) resolved to another path or system-ness. */
  private dirMoved(d: number): boolean {
    let m = this.dirMemo[d];
    if (m === 0) {
      const a = this.prev.paths;
      const b = this.paths;
      this.dirMemo[d] = m = a.directoryPath(d) !== b.directoryPath(d) || a.inExtend(d) !== b.inExtend(d) ? 2 : 1;
    }
    return m === 2;
  }
}

/**
 * Locates live record r (Paths.locate) and says whether it is a system file.
 * The file system's own records (0..15) are system files; a named directory
 * among them ($Extend) has its path resolved here, in record order, as for
 * any other directory (paths resolve alike whether or not files are reported).
 */
function locate(r: number, t: RecordTable, paths: Paths): boolean {
  if (r >= SYSTEM_RECORDS) return paths.locate(r);
  if (t.flags[r] & F_DIR && t.names[r] !== undefined) paths.directoryPath(r);
  return true;
}

/** The byte ranges of one stream of an owner whose runs are order[from..to) (RunTable.order). */
export function runRanges(runs: RunTable, order: Uint32Array, from: number, to: number, stream: number): RangeSet {
  let only = -1;
  let b: RangeSetBuilder | null = null;
  for (let i = from; i < to; i++) {
    const e = order[i];
    if (runs.stream[e] !== stream) continue;
    if (only < 0 && !b) { only = e; continue; }
    if (!b) {
      b = new RangeSetBuilder(8);
      b.add(runs.start[only], runs.end[only]);
    }
    b.add(runs.start[e], runs.end[e]);
  }
  if (b) return b.build();
  return only < 0 ? RangeSet.EMPTY : RangeSet.of(runs.start[only], runs.end[only]);
}

/**
 * The GuestFiles of a record (its unnamed stream or directory, and its named
 * streams), built from a finished pass: what a scan reports, and what an
 * incremental scan of another view hands over of the earlier one.
 */
export class RecordFiles {
  private index: RunIndex | null = null;

  constructor(private readonly vol: VolumeView, readonly pass: MftPass, readonly paths: Paths, private readonly extOf: Map<number, number[]>) {}

  record(r: number, system: boolean, main: RangeSet, metaRuns: RangeSet): GuestFile {
    const t = this.pass.records;
    const directory = (t.flags[r] & F_DIR) !== 0;
    return {
      id: `mft:${r}:${t.sequence[r]}`, path: this.paths.pathAfterLocate(r), size: directory ? 0 : t.size[r], directory, system, data: main,
      meta: this.recordMeta(r, metaRuns), ref: r * STREAMS,
    };
  }

  /** Named stream number `k` (1-based, in name order) of record r. */
  stream(r: number, system: boolean, name: string, size: number, k: number, data: RangeSet): GuestFile {
    return {
      id: `mft:${r}:${this.pass.records.sequence[r]}:${name}`, path: `${this.paths.pathAfterLocate(r)}:${name}`, size, directory: false, system,
      data, meta: RangeSet.EMPTY, ref: r * STREAMS + k,
    };
  }

  /** The pass's runs by owner (sorted on first use). */
  get runs(): RunIndex {
    this.index ??= new RunIndex(this.pass.runs);
    return this.index;
  }

  /** Every file of live record r, as the scan that made this pass reported them (no filesTouching). */
  all(r: number, emit: (f: GuestFile) => void): void {
    if (!this.pass.live(r)) return;
    const t = this.pass.records;
    const { runs, order } = this.runs;
    const { from, to } = this.runs.span(r);
    const system = r < SYSTEM_RECORDS || this.paths.locatedInExtend(r);
    const directory = (t.flags[r] & F_DIR) !== 0;
    const metaRuns = runRanges(runs, order, from, to, META_STREAM);
    emit(this.record(r, system, directory ? metaRuns : runRanges(runs, order, from, to, 0), metaRuns));
    const named = this.pass.streams.get(r);
    if (!named) return;
    sortedStreams(named.names).forEach(({ name, k }, i) => emit(this.stream(r, system, name, named.sizes[k], i + 1, runRanges(runs, order, from, to, k + 1))));
  }

  /** Record r's own metadata: its MFT record and its extension records, and its metadata runs. */
  private recordMeta(r: number, metaRuns: RangeSet): RangeSet {
    let meta = this.vol.recordRanges(r);
    const ext = this.extOf.get(r);
    if (ext) for (const e of ext) meta = meta.union(this.vol.recordRanges(e));
    return metaRuns.isEmpty ? meta : meta.union(metaRuns);
  }
}
