/**
 * The one pass over the MFT: each record of each window is checked (fixups,
 * header) and its attributes are reduced to compact tables (names, parent
 * references, sizes, runs). Nothing per file is kept as an object.
 */
import { RangeSetBuilder, type RangeSet } from '../ranges.js';
import type { Anomaly } from '../volume.js';
import {
  AT_ATTRIBUTE_LIST, AT_DATA, AT_FILE_NAME, AT_INDEX_ALLOCATION, attrName, blankAttr, fileName, walkAttributes, type Attr,
} from './attributes.js';
import { u16, u32 } from './bytes.js';
import type { NtfsGeometry } from './boot.js';
import { applyFixups, headerProblem, MAGIC_BAAD, MAGIC_FILE, readHeader, readHeaderInto, RECORD_IN_USE, RECORD_IS_DIRECTORY } from './record.js';
import { decodeRuns } from './runlist.js';
import { F_BAD, F_DIR, F_EXTENSION, F_IN_USE, META_STREAM, NO_PARENT_SLOT, RecordTable, RunTable } from './tables.js';

/** Anomalies gathered by kind: all counted, the first few described. */
export class AnomalyLog {
  private readonly kinds = new Map<string, { count: number; first: string[]; ranges: RangeSetBuilder }>();

  add(kind: string, message: string, ranges?: RangeSet): void {
    let k = this.kinds.get(kind);
    if (!k) this.kinds.set(kind, (k = { count: 0, first: [], ranges: new RangeSetBuilder() }));
    k.count++;
    if (k.first.length < 5) k.first.push(message);
    if (ranges) k.ranges.addSet(ranges);
  }

  list(): Anomaly[] {
    const out: Anomaly[] = [];
    for (const [kind, k] of this.kinds) {
      const more = k.count > k.first.length ? ` (and ${k.count - k.first.length} more)` : '';
      const ranges = k.ranges.build();
      out.push({ kind, message: `${k.first.join('; ')}${more}`, count: k.count, ...(ranges.isEmpty ? {} : { ranges }) });
    }
    return out;
  }
}

/** An extension record's claim on its base record, checked once the pass is over. */
export interface Extension {
  record: number;
  base: number;
  baseSeq: number;
}

const RANK_OF_NAMESPACE = [2, 3, 1, 3]; // POSIX, Win32, DOS, Win32+DOS

/** A name found in an extension record whose base comes later in the MFT. */
export interface PendingName {
  owner: number;
  name: string;
  rank: number;
  parent: number;
  parentSeq: number;
}

/**
 * What a pass knew of another view of this volume, to continue from it
 * (delta.ts): everything but what it knew of the owners `forget` names and
 * of the records `revisit` names, which are then visited again.
 */
export interface PassStart {
  prev: MftPass;
  forget: (owner: number) => boolean;
  revisit: (record: number) => boolean;
}

export class MftPass {
  readonly records: RecordTable;
  /** Runs the pass found (a continued pass: only those of the records it visited). */
  readonly runs = new RunTable();
  /** Named $DATA streams per base record: names in order of first sight (stream k is names[k-1]) and sizes. */
  readonly streams: Map<number, { names: string[]; sizes: number[] }>;
  readonly extensions: Extension[];
  readonly pendingNames: PendingName[];
  /** Unnamed $DATA sizes found in extension records: [base, size]. */
  readonly extSizes: Array<[number, number]>;
  readonly anomalies = new AnomalyLog();
  private readonly cs: number;
  /** Reused per record: the header, and the record being walked (so the attribute visitor is one function). */
  private readonly header = readHeader(new Uint8Array(64), 0);
  private readonly attr = blankAttr();
  private buf: Uint8Array = new Uint8Array(0);
  private owner = 0;
  private current = 0;
  private readonly visitAttr = (a: Attr): void => this.attribute(this.buf, a, this.owner, this.current);

  constructor(private readonly g: NtfsGeometry, private readonly recordRanges: (n: number) => RangeSet, start?: PassStart) {
    this.cs = g.clusterSize;
    if (!start) {
      this.records = new RecordTable();
      this.streams = new Map();
      this.extensions = [];
      this.pendingNames = [];
      this.extSizes = [];
      return;
    }
    const { prev, forget, revisit } = start;
    this.records = prev.records.clone();
    this.streams = new Map([...prev.streams].filter(([o]) => !forget(o)));
    this.extensions = prev.extensions.filter((e) => !revisit(e.record));
    this.pendingNames = prev.pendingNames.filter((p) => !forget(p.owner));
    this.extSizes = prev.extSizes.filter(([o]) => !forget(o));
  }

  /** Record r is in use, a base record, and not torn or malformed: a file. */
  live(r: number): boolean {
    return this.records.live(r);
  }

  /**
   * Once every record has been visited: names and sizes found in extension
   * records visited before their base go to the base, when it is a file.
   */
  settle(): void {
    const t = this.records;
    for (const p of this.pendingNames) {
      if (this.live(p.owner) && p.rank > t.nameRank[p.owner]) this.setName(p.owner, p.name, p.rank, p.parent, p.parentSeq);
    }
    for (const [base, size] of this.extSizes) if (this.live(base)) t.size[base] = size;
  }

  visitWindow(buf: Uint8Array, first: number, count: number): void {
    const size = this.g.recordSize;
    for (let k = 0; k < count; k++) this.visitRecord(buf, k * size, first + k);
  }

  /** Visits record n, whose bytes are at `off` in `b` (fixups are applied in place). */
  visitRecord(b: Uint8Array, off: number, n: number): void {
    const magic = u32(b, off);
    if (magic !== MAGIC_FILE && magic !== MAGIC_BAAD) return; // never used
    if (!(u16(b, off + 22) & RECORD_IN_USE)) return;
    const t = this.records;
    t.ensure(n);
    if (magic === MAGIC_BAAD) return this.bad(n, 'torn-record', `MFT record ${n} is marked BAAD (torn)`);
    const fx = applyFixups(b, off, this.g.recordSize);
    if (fx === 'torn') return this.bad(n, 'torn-record', `MFT record ${n} is torn: its update sequence does not match`);
    if (fx === 'bad') return this.bad(n, 'bad-record', `MFT record ${n} has a malformed update sequence array`);
    const h = this.header;
    readHeaderInto(b, off, h);
    const problem = headerProblem(h, this.g.recordSize, n);
    if (problem) return this.bad(n, 'bad-record', `MFT record ${n}: ${problem}`);
    t.sequence[n] = h.sequence;
    let owner = n;
    if (h.baseRecord !== 0 || h.baseSequence !== 0) {
      // An extension record (its base may be record 0: the $MFT's own extents).
      t.flags[n] = F_IN_USE | F_EXTENSION;
      if (h.baseRecord >= 0xffffffff) return this.bad(n, 'bad-record', `MFT record ${n} names an impossible base record`);
      this.extensions.push({ record: n, base: h.baseRecord, baseSeq: h.baseSequence });
      owner = h.baseRecord;
    } else {
      t.flags[n] = F_IN_USE | (h.flags & RECORD_IS_DIRECTORY ? F_DIR : 0);
    }
    this.buf = b;
    this.owner = owner;
    this.current = n;
    const walk = walkAttributes(b, off, h.attrsOffset, h.bytesInUse, this.visitAttr, this.attr);
    if (walk) this.anomalies.add('bad-record', `MFT record ${n}: ${walk}`);
  }

  private bad(n: number, kind: string, message: string): void {
    this.records.flags[n] = F_IN_USE | F_BAD;
    this.anomalies.add(kind, message, this.recordRanges(n));
  }

  private attribute(b: Uint8Array, a: Attr, owner: number, n: number): void {
    switch (a.type) {
      case AT_FILE_NAME: return this.name(b, a, owner, n);
      case AT_DATA: return this.data(b, a, owner, n);
      case AT_INDEX_ALLOCATION:
      case AT_ATTRIBUTE_LIST:
      default:
        if (a.nonResident) this.claim(b, a, owner, META_STREAM, n);
    }
  }

  private name(b: Uint8Array, a: Attr, owner: number, n: number): void {
    // Rank first, from the namespace byte; the name is decoded only when it wins.
    const ns = a.nonResident || a.valueLength < 0x42 ? -1 : b[a.valueOffset + 0x41];
    const rank = RANK_OF_NAMESPACE[ns] ?? 0;
    const t = this.records;
    // A name in an extension record (many hard links) whose base comes later waits for it (pendingNames);
    // one whose base came earlier competes with the base's names.
    const wins = owner !== n
      ? owner > n || rank > t.nameRank[owner]
      : rank > t.nameRank[n] || (rank === t.nameRank[n] && a.instance < t.nameInstance[n]);
    const fits = ns >= 0 && b[a.valueOffset + 0x40] > 0 && 0x42 + 2 * b[a.valueOffset + 0x40] <= a.valueLength;
    if (!wins && fits) return;
    const fn = fileName(b, a);
    if (!fn) return this.anomalies.add('bad-record', `MFT record ${n}: a $FILE_NAME that does not fit its attribute`);
    if (owner > n) {
      this.pendingNames.push({ owner, name: fn.name, rank, parent: fn.parentRecord, parentSeq: fn.parentSeq });
      return;
    }
    this.setName(owner, fn.name, rank, fn.parentRecord, fn.parentSeq);
    if (owner === n) t.nameInstance[n] = a.instance;
  }

  setName(r: number, name: string, rank: number, parent: number, parentSeq: number): void {
    const t = this.records;
    t.names[r] = name;
    t.nameRank[r] = rank;
    t.parent[r] = parent < NO_PARENT_SLOT ? parent : NO_PARENT_SLOT;
    t.parentSeq[r] = parentSeq;
  }

  private data(b: Uint8Array, a: Attr, owner: number, n: number): void {
    let stream = 0;
    if (a.nameLength) {
      const name = attrName(b, a);
      let s = this.streams.get(owner);
      if (!s) this.streams.set(owner, (s = { names: [], sizes: [] }));
      let k = s.names.indexOf(name);
      if (k < 0) {
        if (s.names.length >= META_STREAM - 1) return this.anomalies.add('bad-record', `MFT record ${n}: too many named streams`);
        k = s.names.push(name) - 1;
        s.sizes.push(0);
      }
      if (a.lowestVcn === 0) s.sizes[k] = a.dataSize;
      stream = k + 1;
    } else if (a.lowestVcn === 0 && owner === n) {
      this.records.size[n] = a.dataSize;
    } else if (a.lowestVcn === 0) {
      this.extSizes.push([owner, a.dataSize]);
    }
    if (a.nonResident) this.claim(b, a, owner, stream, n);
  }

  private claim(b: Uint8Array, a: Attr, owner: number, stream: number, n: number): void {
    this.sinkOwner = owner;
    this.sinkStream = stream;
    const problem = decodeRuns(b, a.runsOffset, a.runsEnd, a.lowestVcn, a.highestVcn, this.g.clusterCount, this.sink);
    if (problem) this.anomalies.add('bad-runlist', `MFT record ${n}, attribute 0x${a.type.toString(16)}: ${problem}`);
  }

  /** Where decoded runs go (one function for the whole pass; owner and stream set per attribute). */
  private sinkOwner = 0;
  private sinkStream = 0;
  private readonly sink = (_vcn: number, lcn: number, len: number): void => {
    if (lcn >= 0) this.runs.add(this.sinkOwner, this.sinkStream, lcn * this.cs, (lcn + len) * this.cs);
  };

}

