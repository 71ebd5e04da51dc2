/**
 * After the MFT pass: extension records checked against their bases, paths
 * built, every file and stream reported once (record order), every claimed
 * range filed as metadata or file data, and the ownership cross-check.
 */
import { GuestError, checkAborted } from '../errors.js';
import { Ownership } from '../ownership.js';
import { RangeSet, RangeSetBuilder } from '../ranges.js';
import type { GuestFile, ScanOptions, VolumeScan } from '../volume.js';
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
  private readonly own = new Ownership();
  private readonly anomalies: AnomalyLog;
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

  private emitRecord(r: number, paths: Paths, order: Uint32Array, from: number, to: number): void {
    const t = this.pass.records;
    const { path, underExtend } = paths.pathOf(r);
    const system = r < SYSTEM_RECORDS || underExtend;
    const directory = (t.flags[r] & F_DIR) !== 0;
    const seq = t.sequence[r];
    if (r !== ROOT && t.names[r] === undefined && r >= SYSTEM_RECORDS) this.anomalies.add('bad-record', `MFT record ${r} is in use but has no $FILE_NAME`);
    if (!directory && !system && t.parent[r] === ROOT && path.toLowerCase() === 'hiberfil.sys') this.hiberfil = r;
    let meta = this.vol.recordRanges(r);
    const ext = this.extOf.get(r);
    if (ext) for (const e of ext) meta = meta.union(this.vol.recordRanges(e));
    const metaRuns = this.ranges(order, from, to, META_STREAM);
    if (!metaRuns.isEmpty) {
      meta = meta.union(metaRuns);
      this.metadata.addSet(metaRuns);
    }
    const main = directory ? metaRuns : this.ranges(order, from, to, 0);
    this.claim({ id: `mft:${r}:${seq}`, path, size: directory ? 0 : t.size[r], directory, system, data: main, meta, ref: r * STREAMS }, directory ? RangeSet.EMPTY : metaRuns);
    if (directory) this.directories++;
    else this.files++;
    const named = this.pass.streams.get(r);
    if (!named) return;
    const sorted = named.names.map((name, k) => ({ name, k })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    sorted.forEach(({ name, k }, i) => {
      const data = this.ranges(order, from, to, k + 1);
      this.claim({
        id: `mft:${r}:${seq}:${name}`, path: `${path}:${name}`, size: named.sizes[k], directory: false, system,
        data, meta: RangeSet.EMPTY, ref: r * STREAMS + i + 1,
      }, RangeSet.EMPTY);
    });
  }

  /** Reports a file, files its ranges as metadata or data, and registers them with the ownership check. */
  private claim(f: GuestFile, extra: RangeSet): void {
    const owner = this.own.owner(f.path || '(root)');
    this.own.add(owner, f.data);
    this.own.add(owner, extra);
    if (f.system || f.directory) this.metadata.addSet(f.data);
    else this.fileData.addSet(f.data);
    this.opts.onFile?.(f);
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
