/**
 * The $MFT as a stream of records: where each record lies on the volume
 * (the $MFT may be fragmented, and its own extents may be described through
 * its attribute list), and the records read in large windows for one pass.
 */
import { GuestError, checkAborted } from '../errors.js';
import { readChecked, readCheckedInto, type ByteSource } from '../source.js';
import { RangeSet, RangeSetBuilder } from '../ranges.js';
import { findRun } from './content.js';
import type { Run } from './runlist.js';
import type { NtfsGeometry } from './boot.js';
import { AT_DATA, listEntries } from './attributes.js';
import { checkedRecord, extractAttrs, listValue } from './file.js';

/** Bytes read per window of the MFT pass. */
export const WINDOW = 4 * 1024 * 1024;

export class MftMap {
  /** Records the $MFT holds (its initialized bytes in whole records). */
  readonly records: number;

  constructor(readonly runs: Run[], readonly clusterSize: number, readonly recordSize: number, validBytes: number) {
    this.records = Math.floor(validBytes / recordSize);
  }

  /** Volume byte pieces [start, end) holding MFT bytes [pos, pos + length). */
  pieces(pos: number, length: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    const cs = this.clusterSize;
    let done = 0;
    while (done < length) {
      const p = pos + done;
      const i = findRun(this.runs, Math.floor(p / cs));
      if (i < 0 || this.runs[i].lcn < 0) throw new GuestError(`$MFT: byte ${p} of the $MFT is not mapped to the volume`);
      const r = this.runs[i];
      const n = Math.min(length - done, (r.vcn + r.length) * cs - p);
      const at = r.lcn * cs + (p - r.vcn * cs);
      out.push([at, at + n]);
      done += n;
    }
    return out;
  }

  /** Volume bytes of record `n`. */
  recordRanges(n: number): RangeSet {
    const pos = n * this.recordSize;
    const cs = this.clusterSize;
    const i = findRun(this.runs, Math.floor(pos / cs));
    if (i >= 0) {
      // The usual case: the whole record inside one run.
      const r = this.runs[i];
      const at = r.lcn * cs + (pos - r.vcn * cs);
      if (pos + this.recordSize <= (r.vcn + r.length) * cs) return RangeSet.of(at, at + this.recordSize);
    }
    const b = new RangeSetBuilder(2);
    for (const [s, e] of this.pieces(n * this.recordSize, this.recordSize)) b.add(s, e);
    return b.build();
  }

  /** Reads MFT bytes [pos, pos + length) into `into` at `at` (straight into it where the source can). */
  async readInto(src: ByteSource, pos: number, length: number, into: Uint8Array, at = 0): Promise<void> {
    let off = at;
    for (const [s, e] of this.pieces(pos, length)) {
      await readCheckedInto(src, s, into.subarray(off, off + e - s), '$MFT');
      off += e - s;
    }
  }

  /** The raw bytes of record `n` (fixups not applied), or null past the MFT's end. */
  async readRecord(src: ByteSource, n: number): Promise<Uint8Array | null> {
    if (!Number.isSafeInteger(n) || n < 0 || n >= this.records) return null;
    const buf = new Uint8Array(this.recordSize);
    await this.readInto(src, n * this.recordSize, this.recordSize, buf);
    return buf;
  }

  /**
   * Every record in order, in windows of about WINDOW bytes: `visit(buf,
   * first, count)` gets `count` records starting with record `first` (the
   * buffer is reused once visit returns). The next window is read, into the
   * other of two buffers, while the current one is visited.
   */
  async forEachWindow(
    src: ByteSource, visit: (buf: Uint8Array, first: number, count: number) => void, signal?: AbortSignal,
  ): Promise<void> {
    const per = Math.max(1, Math.floor(WINDOW / this.recordSize));
    const size = Math.min(per, this.records) * this.recordSize;
    const buffers = [new Uint8Array(size), new Uint8Array(size)];
    const load = async (first: number, buf: Uint8Array): Promise<Uint8Array> => {
      const length = Math.min(per, this.records - first) * this.recordSize;
      await this.readInto(src, first * this.recordSize, length, buf);
      return buf.subarray(0, length);
    };
    let next = this.records > 0 ? load(0, buffers[0]) : null;
    for (let first = 0, k = 1; next; first += per, k ^= 1) {
      const buf = await next;
      next = first + per < this.records ? load(first + per, buffers[k]) : null;
      if (signal?.aborted) {
        await next?.catch(() => undefined);
        checkAborted(signal);
      }
      visit(buf, first, buf.length / this.recordSize);
    }
  }
}

/**
 * Checks the $MFT's runs, gathered from its extents: sorted, contiguous
 * from VCN 0, never sparse, and no more clusters than the volume has.
 */
export function checkMftRuns(runs: Run[], clusterCount: number): void {
  runs.sort((a, b) => a.vcn - b.vcn);
  let vcn = 0;
  let total = 0;
  for (const r of runs) {
    if (r.vcn !== vcn) throw new GuestError(`$MFT: its runs ${r.vcn < vcn ? 'overlap' : 'leave a gap'} at VCN ${Math.min(vcn, r.vcn)}`);
    if (r.lcn < 0) throw new GuestError(`$MFT: a sparse run at VCN ${r.vcn}`);
    vcn += r.length;
    total += r.length;
  }
  if (total > clusterCount) throw new GuestError(`$MFT: its runs map ${total} clusters, more than the volume's ${clusterCount}`);
}

/**
 * The $MFT's own map, from record 0 at the boot sector's $MFT cluster. When
 * record 0 has an attribute list, the $MFT's later extents live in
 * extension records, which are themselves inside the $MFT: they are read as
 * soon as the extents known so far reach them.
 */
export async function loadMftMap(src: ByteSource, g: NtfsGeometry): Promise<MftMap> {
  const buf = await readChecked(src, g.mftLcn * g.clusterSize, g.recordSize, '$MFT record 0');
  const h = checkedRecord(buf, 0, g.recordSize);
  const attrs = extractAttrs(buf, h, 0, g);
  const data = attrs.filter((a) => a.type === AT_DATA && a.name === '');
  const first = data.find((a) => a.lowestVcn === 0);
  if (!first || !first.nonResident) throw new GuestError('$MFT record 0 has no non-resident $DATA attribute');
  const extents = new Map<number, Run[]>();
  for (const a of data) extents.set(a.lowestVcn, a.runs);
  const list = await listValue(src, attrs, g, 0);
  if (list) {
    const { entries, problem } = listEntries(list);
    if (problem) throw new GuestError(`$MFT: ${problem}`);
    let pending = entries.filter((e) => e.type === AT_DATA && e.name === '' && e.record !== 0 && !extents.has(e.lowestVcn));
    while (pending.length > 0) {
      const known = [...extents.values()].flat();
      checkMftRuns(known, g.clusterCount);
      const mapped = known.reduce((s, r) => s + r.length, 0) * g.clusterSize;
      const map = new MftMap(known, g.clusterSize, g.recordSize, mapped);
      const reachable = pending.filter((e) => e.record < map.records);
      if (reachable.length === 0) throw new GuestError(`$MFT: its extension record ${pending[0].record} lies in a part of the $MFT no known extent maps`);
      for (const e of reachable) {
        const eb = await map.readRecord(src, e.record) as Uint8Array;
        const eh = checkedRecord(eb, e.record, g.recordSize);
        if (eh.baseRecord !== 0 || eh.baseSequence !== h.sequence) throw new GuestError(`$MFT: its attribute list names record ${e.record}, which belongs to record ${eh.baseRecord} (sequence ${eh.baseSequence})`);
        const ext = extractAttrs(eb, eh, e.record, g).find((a) => a.type === AT_DATA && a.name === '' && a.lowestVcn === e.lowestVcn);
        if (!ext || !ext.nonResident) throw new GuestError(`$MFT: extension record ${e.record} lacks the extent at VCN ${e.lowestVcn}`);
        extents.set(e.lowestVcn, ext.runs);
      }
      pending = pending.filter((e) => !extents.has(e.lowestVcn));
    }
  }
  const runs = [...extents.values()].flat();
  checkMftRuns(runs, g.clusterCount);
  const mapped = runs.reduce((s, r) => s + r.length, 0) * g.clusterSize;
  if (first.dataSize > mapped) throw new GuestError(`$MFT: its size ${first.dataSize} is more than its runs map (${mapped} bytes)`);
  const valid = Math.min(first.dataSize, first.initializedSize);
  const map = new MftMap(runs, g.clusterSize, g.recordSize, valid);
  if (map.records < 16) throw new GuestError(`$MFT: ${map.records} records is too few (the system files take 16)`);
  if (map.records > 0xffffffff) throw new GuestError(`$MFT: ${map.records} records is more than NTFS numbers`);
  return map;
}
