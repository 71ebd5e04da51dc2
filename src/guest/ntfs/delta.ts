/**
 * The incremental scan's pass: this view of the volume differs from one
 * scanned before (the same partition read through another disk) only in the
 * volume bytes `changed`.
 *
 * The pass's tables are a function of the MFT records, and each owner's
 * entries (a base record's name, parent, size, streams and runs) a function
 * of its own records alone (its base record and the extension records that
 * name it), taken in record order. An MFT record none of whose bytes changed
 * is the same record in both views, provided both $MFTs map it to the same
 * volume bytes. So this view's tables are the earlier ones, except for the
 * owners a changed record belongs to in either view ("dirty"), whose records
 * are all visited again, in record order, from this view's bytes; records
 * past the earlier $MFT's end are visited too.
 */
import { checkAborted } from '../errors.js';
import type { RangeSet } from '../ranges.js';
import type { ByteSource } from '../source.js';
import type { ScanResume } from '../volume.js';
import type { NtfsGeometry } from './boot.js';
import { refRecord, refSeq, u16, u32 } from './bytes.js';
import { WINDOW, type MftMap } from './mft.js';
import { MftPass } from './pass.js';
import type { Paths } from './paths.js';
import { MAGIC_FILE, RECORD_IN_USE } from './record.js';
import type { RunIndex } from './tables.js';
import type { RecordFiles } from './assemble.js';

/** Where a view's records lie: the volume's size, its geometry and its $MFT's map. */
export interface Layout {
  size: number;
  geometry: NtfsGeometry;
  map: MftMap;
}

/** A finished scan's pass, paths and files, for an incremental scan of another view. */
export class NtfsResume implements ScanResume {
  readonly kind = 'ntfs' as const;

  constructor(readonly layout: Layout, readonly files: RecordFiles) {}

  get pass(): MftPass { return this.files.pass; }
  get paths(): Paths { return this.files.paths; }
  /** The earlier pass's runs by owner. */
  get runs(): RunIndex { return this.files.runs; }
}

/** The continued pass, and the owners whose entries it made again (by record number). */
export interface Continued {
  pass: MftPass;
  dirty: Uint8Array;
}

/** Past this many changed records (and half the $MFT), a full pass is about as cheap. */
const MANY = 16384;

/**
 * Whether view `cur` can continue from a scan of view `prev`: the same
 * geometry, `cur`'s $MFT maps every record of `prev`'s to the same volume
 * bytes (it may have grown), and not most of the records changed.
 */
export function canContinue(prev: Layout, cur: Layout, changed: RangeSet): boolean {
  const p = prev.geometry;
  const g = cur.geometry;
  if (cur.size !== prev.size || g.clusterSize !== p.clusterSize || g.recordSize !== p.recordSize || g.clusterCount !== p.clusterCount) return false;
  if (cur.map.records < prev.map.records) return false;
  const bytes = prev.map.records * g.recordSize;
  const a = coalesce(prev.map.pieces(0, bytes));
  const b = coalesce(cur.map.pieces(0, bytes));
  if (a.length !== b.length || a.some(([s, e], i) => s !== b[i][0] || e !== b[i][1])) return false;
  const n = changedRecords(prev.map, cur.map, changed, g.clusterSize, g.recordSize).length;
  return n <= MANY || n <= cur.map.records / 2;
}

function coalesce(pieces: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [s, e] of pieces) {
    const last = out[out.length - 1];
    if (last && last[1] === s) last[1] = e;
    else out.push([s, e]);
  }
  return out;
}

/** Records of the earlier $MFT with a byte in `changed`, and every record past its end (ascending). */
function changedRecords(prev: MftMap, map: MftMap, changed: RangeSet, cs: number, rs: number): number[] {
  const out = new Set<number>();
  for (const r of map.runs) {
    const from = r.lcn * cs;
    const to = from + r.length * cs;
    const hit = changed.clip(from, to);
    for (let i = 0; i < hit.count; i++) {
      const first = Math.floor((r.vcn * cs + hit.start(i) - from) / rs);
      const last = Math.floor((r.vcn * cs + hit.end(i) - 1 - from) / rs);
      for (let n = first; n <= last && n < prev.records; n++) out.add(n);
    }
  }
  const list = [...out];
  for (let n = prev.records; n < map.records; n++) list.push(n);
  return list.sort((x, y) => x - y);
}

/** Calls visit(buf, offset, n) for each record of the ascending list `records`, read in runs of consecutive records. */
async function readRecords(src: ByteSource, map: MftMap, records: number[], signal: AbortSignal | undefined,
  visit: (buf: Uint8Array, off: number, n: number) => void): Promise<void> {
  const rs = map.recordSize;
  const per = Math.max(1, Math.floor(WINDOW / rs));
  const buf = new Uint8Array(Math.min(per, records.length) * rs);
  for (let i = 0; i < records.length;) {
    checkAborted(signal);
    let j = i + 1;
    while (j < records.length && j - i < per && records[j] === records[j - 1] + 1) j++;
    const view = buf.subarray(0, (j - i) * rs);
    await map.readInto(src, records[i] * rs, view.length, view);
    for (let k = i; k < j; k++) visit(view, (k - i) * rs, records[k]);
    i = j;
  }
}

/** The owner a raw record names: its base when it is an extension record in use, else itself. */
function rawOwner(b: Uint8Array, off: number, n: number): number {
  if (u32(b, off) !== MAGIC_FILE || !(u16(b, off + 22) & RECORD_IN_USE)) return n;
  const base = refRecord(b, off + 32);
  return (base !== 0 || refSeq(b, off + 32) !== 0) && base < 0xffffffff ? base : n;
}

/** This view's pass, continued from `prev` (see the module comment); canContinue must hold. */
export async function continuePass(src: ByteSource, cur: Layout, recordRanges: (n: number) => RangeSet,
  prev: NtfsResume, changed: RangeSet, signal?: AbortSignal): Promise<Continued> {
  const { geometry: g, map } = cur;
  const changedRecs = changedRecords(prev.layout.map, map, changed, g.clusterSize, g.recordSize);
  // Earlier owners: an extension record's base (every record whose header named a base), else the record itself.
  const baseA = new Map<number, number>();
  const extA = new Map<number, number[]>();
  for (const e of prev.pass.extensions) {
    baseA.set(e.record, e.base);
    let l = extA.get(e.base);
    if (!l) extA.set(e.base, (l = []));
    l.push(e.record);
  }
  // This view's owners of the changed records, from their headers (an owner too many only costs time).
  const ownerB = new Map<number, number>();
  const extB = new Map<number, number[]>();
  await readRecords(src, map, changedRecs, signal, (b, off, n) => {
    const o = rawOwner(b, off, n);
    ownerB.set(n, o);
    if (o === n) return;
    let l = extB.get(o);
    if (!l) extB.set(o, (l = []));
    l.push(n);
  });
  const owner = (n: number) => ownerB.get(n) ?? baseA.get(n) ?? n;
  // Dirty owners: those of the changed records in either view, closed over the records they own.
  const dirty = new Set<number>();
  const again = new Set<number>(changedRecs);
  const queue: number[] = [];
  const mark = (o: number) => {
    if (!dirty.has(o)) { dirty.add(o); queue.push(o); }
  };
  for (const n of changedRecs) {
    mark(baseA.get(n) ?? n);
    mark(owner(n));
  }
  while (queue.length) {
    const o = queue.pop() as number;
    for (const c of [o, ...(extA.get(o) ?? []), ...(extB.get(o) ?? [])]) {
      if (c >= map.records || again.has(c)) continue;
      again.add(c);
      mark(owner(c));
    }
  }
  const revisit = [...again].filter((n) => n < map.records).sort((x, y) => x - y);
  const pass = new MftPass(g, recordRanges, { prev: prev.pass, forget: (o) => dirty.has(o), revisit: (n) => again.has(n) });
  for (const r of dirty) pass.records.blank(r);
  for (const r of revisit) pass.records.blank(r);
  await readRecords(src, map, revisit, signal, (b, off, n) => pass.visitRecord(b, off, n));
  const marks = new Uint8Array(map.records);
  for (const o of dirty) if (o < map.records) marks[o] = 1;
  return { pass, dirty: marks };
}
