/**
 * One file's attributes gathered from its base record and, through its
 * $ATTRIBUTE_LIST, its extension records: what open(), the state checks and
 * readContent need (the scan streams records instead).
 */
import { GuestError } from '../errors.js';
import type { ByteSource } from '../source.js';
import {
  AT_ATTRIBUTE_LIST, AT_FILE_NAME, attrName, fileName, listEntries, walkAttributes,
  type Attr, type FileName,
} from './attributes.js';
import { readStream, type Stream } from './content.js';
import { applyFixups, headerProblem, MAGIC_FILE, readHeader, RECORD_IN_USE, type RecordHeader } from './record.js';
import { runsOf, type Run } from './runlist.js';

/** Largest attribute list read (a list entry maps at least one extent of a record; real lists are KiBs). */
export const MAX_LIST = 16 * 1024 * 1024;
/** Extension records one file may have. */
const MAX_EXTENSIONS = 65536;

export interface AttrInfo {
  type: number;
  name: string;
  nonResident: boolean;
  flags: number;
  /** Resident value (a copy). */
  value: Uint8Array | null;
  lowestVcn: number;
  highestVcn: number;
  runs: Run[];
  allocatedSize: number;
  dataSize: number;
  initializedSize: number;
  compressionUnit: number;
  fileName: FileName | null;
  /** The record the attribute lives in. */
  record: number;
}

export interface Geometry {
  clusterSize: number;
  clusterCount: number;
  recordSize: number;
}

/** Validates and fixes up a record read at MFT position `n`; throws a GuestError naming it when it cannot be used. */
export function checkedRecord(buf: Uint8Array, n: number, recordSize: number): RecordHeader {
  const h = readHeader(buf, 0);
  if (h.magic !== MAGIC_FILE) throw new GuestError(`MFT record ${n} has no FILE signature`);
  const fx = applyFixups(buf, 0, recordSize);
  if (fx !== 'ok') throw new GuestError(`MFT record ${n} is ${fx === 'torn' ? 'torn (its update sequence does not match)' : 'malformed (bad update sequence array)'}`);
  const problem = headerProblem(h, recordSize, n);
  if (problem) throw new GuestError(`MFT record ${n}: ${problem}`);
  if (!(h.flags & RECORD_IN_USE)) throw new GuestError(`MFT record ${n} is not in use`);
  return h;
}

/** The attributes of one fixed-up record, with runs decoded and values copied. */
export function extractAttrs(buf: Uint8Array, h: RecordHeader, n: number, g: Geometry): AttrInfo[] {
  const out: AttrInfo[] = [];
  const problem = walkAttributes(buf, 0, h.attrsOffset, h.bytesInUse, (a: Attr) => {
    let runs: Run[] = [];
    if (a.nonResident) {
      const r = runsOf(buf, a.runsOffset, a.runsEnd, a.lowestVcn, a.highestVcn, g.clusterCount);
      if (typeof r === 'string') throw new GuestError(`MFT record ${n}, attribute 0x${a.type.toString(16)}: ${r}`);
      runs = r;
    }
    out.push({
      type: a.type, name: attrName(buf, a), nonResident: a.nonResident, flags: a.flags,
      value: a.nonResident ? null : buf.slice(a.valueOffset, a.valueOffset + a.valueLength),
      lowestVcn: a.lowestVcn, highestVcn: a.highestVcn, runs,
      allocatedSize: a.allocatedSize, dataSize: a.dataSize, initializedSize: a.initializedSize,
      compressionUnit: a.compressionUnit,
      fileName: a.type === AT_FILE_NAME ? fileName(buf, a) : null,
      record: n,
    });
  });
  if (problem) throw new GuestError(`MFT record ${n}: ${problem}`);
  return out;
}

/** The stream of the attribute `type`/`name` (all its extents), or null when the file has none. */
export function streamOf(attrs: AttrInfo[], type: number, name: string): (Stream & { resident: Uint8Array | null; flags: number; compressionUnit: number }) | null {
  const ext = attrs.filter((a) => a.type === type && a.name === name);
  if (ext.length === 0) return null;
  const first = ext.find((a) => a.lowestVcn === 0) ?? ext[0];
  if (!first.nonResident) {
    const v = first.value ?? new Uint8Array(0);
    return { runs: [], dataSize: v.length, initializedSize: v.length, resident: v, flags: first.flags, compressionUnit: 0 };
  }
  const runs = ext.filter((a) => a.nonResident).flatMap((a) => a.runs).sort((x, y) => x.vcn - y.vcn);
  return { runs, dataSize: first.dataSize, initializedSize: first.initializedSize, resident: null, flags: first.flags, compressionUnit: first.compressionUnit };
}

/** An attribute list's value, resident or not. */
export async function listValue(src: ByteSource, attrs: AttrInfo[], g: Geometry, n: number): Promise<Uint8Array | null> {
  const s = streamOf(attrs, AT_ATTRIBUTE_LIST, '');
  if (!s) return null;
  if (s.resident) return s.resident;
  if (s.dataSize > MAX_LIST) throw new GuestError(`MFT record ${n}: its attribute list claims ${s.dataSize} bytes`);
  return readStream(src, s, g.clusterSize, 0, s.dataSize, `attribute list of MFT record ${n}`);
}

/** Reads a record by number (through the MFT map); null when it lies past the MFT. */
export type RecordReader = (n: number) => Promise<Uint8Array | null>;

/**
 * All attributes of file `n`: its base record's, then those of every
 * extension record its attribute list names (each read once, and only when
 * it says `n` is its base: a list cannot loop).
 */
export async function loadFile(src: ByteSource, read: RecordReader, n: number, g: Geometry): Promise<{ header: RecordHeader; attrs: AttrInfo[] }> {
  const buf = await read(n);
  if (!buf) throw new GuestError(`MFT record ${n} lies past the end of the $MFT`);
  const header = checkedRecord(buf, n, g.recordSize);
  if (header.baseRecord !== 0 || header.baseSequence !== 0) throw new GuestError(`MFT record ${n} is an extension of record ${header.baseRecord}, not a file`);
  const attrs = extractAttrs(buf, header, n, g);
  const list = await listValue(src, attrs, g, n);
  if (!list) return { header, attrs };
  const { entries, problem } = listEntries(list);
  if (problem) throw new GuestError(`MFT record ${n}: ${problem}`);
  const seen = new Set<number>([n]);
  for (const e of entries) {
    if (seen.has(e.record)) continue;
    if (seen.size > MAX_EXTENSIONS) throw new GuestError(`MFT record ${n}: its attribute list names more than ${MAX_EXTENSIONS} records`);
    seen.add(e.record);
    const eb = await read(e.record);
    if (!eb) throw new GuestError(`MFT record ${n}: its attribute list names record ${e.record}, past the end of the $MFT`);
    const eh = checkedRecord(eb, e.record, g.recordSize);
    if (eh.baseRecord !== n || eh.baseSequence !== header.sequence) {
      throw new GuestError(`MFT record ${n}: its attribute list names record ${e.record}, which belongs to record ${eh.baseRecord} (sequence ${eh.baseSequence})`);
    }
    attrs.push(...extractAttrs(eb, eh, e.record, g));
  }
  return { header, attrs };
}
