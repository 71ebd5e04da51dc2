/**
 * After the MFT pass: extension records checked against their bases, paths
 * built, every file and stream reported once (record order), every claimed
 * range filed as metadata or file data, and the ownership cross-check.
 */
import { checkAborted } from '../errors.js';
import { Ownership } from '../ownership.js';
import { RangeSet, RangeSetBuilder } from '../ranges.js';
import type { ScanOptions, VolumeScan } from '../volume.js';
import type { AnomalyLog, MftPass } from './pass.js';
import { Paths, ROOT, SYSTEM_RECORDS } from './paths.js';
import { F_BAD, F_DIR, F_EXTENSION, F_IN_USE, META_STREAM } from './tables.js';

/** A stream number's room in GuestFile.ref (record * STREAMS + stream). */
export const STREAMS = 65536;

/** What the assembly needs of the volume. */
export interface VolumeView {
  readonly size: number;
  readonly clusterArea: { start: number; end: number };
  recordRanges(n: number): RangeSet;
}

export class Assembly {
  private readonly metadata = new RangeSetBuilder();
  private readonly fileData = new RangeSetBuilder();
  private readonly own = new Ownership((ref) => this.describe(ref));
  private readonly anomalies: AnomalyLog;
  private paths: Paths | null = null;
  private readonly extOf = new Map<number, number[]>();
  private files = 0;
  private directories = 0;
  hiberfil = -1;

  constructor(private readonly vol: VolumeView, private readonly pass: MftPass, private readonly free: RangeSet, private readonly opts: ScanOptions) {
    this.anomalies = pass.anomalies;
  }

  run(): { scan: Omit<VolumeScan, 'state'>; hiberfil: number } {
    const t = this.pass.records;
    this.checkExtensions();
    const paths = new Paths({
      count: t.count,
      inUse: (r) => (t.flags[r] & (F_IN_USE | F_EXTENSION | F_BAD)) === F_IN_USE,
      isDirectory: (r) => (t.flags[r] & F_DIR) !== 0,
      sequence: t.sequence, parent: t.parent, parentSeq: t.parentSeq, names: t.names,
    });
    this.paths = paths;
    this.emitAll(paths);
    for (const o of paths.orphans) this.anomalies.add('orphan', `MFT record ${o.record} (${t.names[o.record] ?? 'no name'}) is unreachable from the root: ${o.why}`);
    return { scan: this.finish(), hiberfil: this.hiberfil };
  }

  /** Extension records count only for a live base of the same sequence; names and sizes they hold go to it. */
  private checkExtensions(): void {
    const t = this.pass.records;
    const live = (r: number) => r < t.count && (t.flags[r] & (F_IN_USE | F_EXTENSION | F_BAD)) === F_IN_USE;
    for (const e of this.pass.extensions) {
      if (!live(e.base)) {
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
    for (const p of this.pass.pendingNames) {
      if (live(p.owner) && p.rank > t.nameRank[p.owner]) this.pass.setName(p.owner, p.name, p.rank, p.parent, p.parentSeq);
    }
    for (const [base, size] of this.pass.extSizes) if (live(base)) t.size[base] = size;
  }

  private emitAll(paths: Paths): void {
    const t = this.pass.records;
    const runs = this.pass.runs;
    const order = runs.order();
    let j = 0;
    for (let r = 0; r < t.count; r++) {
      checkAborted(this.opts.signal);
      while (j < order.length && runs.owner[order[j]] < r) j++; // runs of dead owners are skipped
      const startRuns = j;
      while (j < order.length && runs.owner[order[j]] === r) j++;
      if ((t.flags[r] & (F_IN_USE | F_EXTENSION | F_BAD)) !== F_IN_USE) continue;
      this.emitRecord(r, paths, order, startRuns, j);
    }
  }

  private ranges(order: Uint32Array, from: number, to: number, stream: number): RangeSet {
    const runs = this.pass.runs;
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
   * Files record r's ranges (and its named streams') and reports it. A
   * file's path, id, own metadata and GuestFile are built only when onFile
   * gets it (see reports()): with 200,000 files that is most of the cost.
   */
  private emitRecord(r: number, paths: Paths, order: Uint32Array, from: number, to: number): void {
    const t = this.pass.records;
    const system = r < SYSTEM_RECORDS || paths.locate(r);
    const directory = (t.flags[r] & F_DIR) !== 0;
    const seq = t.sequence[r];
    if (r !== ROOT && t.names[r] === undefined && r >= SYSTEM_RECORDS) this.anomalies.add('bad-record', `MFT record ${r} is in use but has no $FILE_NAME`);
    if (!directory && !system && t.parent[r] === ROOT && paths.pathAfterLocate(r).toLowerCase() === 'hiberfil.sys') this.hiberfil = r;
    const metaRuns = this.ranges(order, from, to, META_STREAM);
    if (!metaRuns.isEmpty) this.metadata.addSet(metaRuns);
    const main = directory ? metaRuns : this.ranges(order, from, to, 0);
    this.claim(r * STREAMS, system || directory, main, directory ? RangeSet.EMPTY : metaRuns);
    if (this.reports(main)) {
      this.opts.onFile!({
        id: `mft:${r}:${seq}`, path: paths.pathAfterLocate(r), size: directory ? 0 : t.size[r], directory, system, data: main,
        meta: this.recordMeta(r, metaRuns), ref: r * STREAMS,
      });
    }
    if (directory) this.directories++;
    else this.files++;
    const named = this.pass.streams.get(r);
    if (!named) return;
    sortedStreams(named.names).forEach(({ name, k }, i) => {
      const data = this.ranges(order, from, to, k + 1);
      this.claim(r * STREAMS + i + 1, system, data, RangeSet.EMPTY);
      if (!this.reports(data)) return;
      this.opts.onFile!({
        id: `mft:${r}:${seq}:${name}`, path: `${paths.pathAfterLocate(r)}:${name}`, size: named.sizes[k], directory: false, system,
        data, meta: RangeSet.EMPTY, ref: r * STREAMS + i + 1,
      });
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

  /** Record r's own metadata: its MFT record and its extension records, and its metadata runs. */
  private recordMeta(r: number, metaRuns: RangeSet): RangeSet {
    let meta = this.vol.recordRanges(r);
    const ext = this.extOf.get(r);
    if (ext) for (const e of ext) meta = meta.union(this.vol.recordRanges(e));
    return metaRuns.isEmpty ? meta : meta.union(metaRuns);
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
    const allocated = RangeSet.of(area.start, area.end).subtract(this.free);
    const unowned = allocated.subtract(owned);
    if (!unowned.isEmpty) this.anomalies.add('unowned-allocated', `${unowned.bytes} bytes are allocated in $Bitmap but claimed by no file (first at byte ${unowned.first})`, unowned);
    this.metadata.addSet(unowned);
    if (area.end < this.vol.size) this.metadata.add(area.end, this.vol.size);
    return {
      free: this.free,
      metadata: this.metadata.build(),
      fileData: this.fileData.build(),
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
