/**
 * Reading a non-resident attribute's bytes through its runs: sparse runs and
 * bytes past the initialized size read as zeros. Used for $Bitmap, $LogFile,
 * attribute lists, hiberfil.sys and file content.
 */
import { GuestError } from '../errors.js';
import { readChecked, type ByteSource } from '../source.js';
import type { Run } from './runlist.js';
import { lznt1 } from './lznt1.js';

export interface Stream {
  /** Runs sorted by VCN. */
  runs: Run[];
  dataSize: number;
  initializedSize: number;
}

/** Index of the run holding `vcn`, or -1. */
export function findRun(runs: Run[], vcn: number): number {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = runs[mid];
    if (vcn < r.vcn) hi = mid - 1;
    else if (vcn >= r.vcn + r.length) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/**
 * `length` bytes of the stream from byte `offset` (both within dataSize).
 * A part no run maps is an error: NTFS maps every VCN below the allocated size.
 */
export async function readStream(src: ByteSource, s: Stream, clusterSize: number, offset: number, length: number, what: string): Promise<Uint8Array> {
  if (offset < 0 || length < 0 || offset + length > s.dataSize) throw new GuestError(`${what}: read of ${length} bytes at ${offset} is past its size ${s.dataSize}`);
  const out = new Uint8Array(length);
  const readable = Math.max(0, Math.min(offset + length, s.initializedSize) - offset);
  let done = 0;
  while (done < readable) {
    const pos = offset + done;
    const vcn = Math.floor(pos / clusterSize);
    const i = findRun(s.runs, vcn);
    if (i < 0) throw new GuestError(`${what}: no run maps byte ${pos}`);
    const r = s.runs[i];
    const runEnd = (r.vcn + r.length) * clusterSize;
    const n = Math.min(readable - done, runEnd - pos);
    if (r.lcn >= 0) {
      const at = r.lcn * clusterSize + (pos - r.vcn * clusterSize);
      out.set(await readChecked(src, at, n, what), done);
    }
    done += n;
  }
  return out;
}

/** The whole stream in chunks of at most `chunk` bytes. */
export async function* streamChunks(src: ByteSource, s: Stream, clusterSize: number, what: string, chunk = 1 << 20): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < s.dataSize; at += chunk) {
    yield await readStream(src, s, clusterSize, at, Math.min(chunk, s.dataSize - at), what);
  }
}

/** The largest compression unit accepted, in clusters (Windows uses 16). */
const MAX_UNIT_LOG = 8;

/**
 * A compressed stream's logical content, one compression unit at a time:
 * a unit wholly allocated is stored as is, a unit wholly sparse is zeros,
 * and a unit allocated in part holds LZNT1 data.
 */
export async function* compressedChunks(
  src: ByteSource, s: Stream, clusterSize: number, unitLog: number, what: string,
): AsyncGenerator<Uint8Array> {
  if (unitLog < 1 || unitLog > MAX_UNIT_LOG) throw new GuestError(`${what}: compression unit of 2^${unitLog} clusters is not supported`);
  const unitClusters = 2 ** unitLog;
  const unitBytes = unitClusters * clusterSize;
  for (let at = 0; at < s.dataSize; at += unitBytes) {
    const pieces: Array<[number, number]> = [];
    let allocated = 0;
    for (let vcn = at / clusterSize; vcn < at / clusterSize + unitClusters;) {
      const i = findRun(s.runs, vcn);
      if (i < 0) throw new GuestError(`${what}: no run maps cluster ${vcn} of the stream`);
      const r = s.runs[i];
      const n = Math.min(r.vcn + r.length, at / clusterSize + unitClusters) - vcn;
      if (r.lcn >= 0) {
        pieces.push([(r.lcn + vcn - r.vcn) * clusterSize, n * clusterSize]);
        allocated += n;
      }
      vcn += n;
    }
    let unit = new Uint8Array(unitBytes);
    if (allocated > 0) {
      const stored = new Uint8Array(allocated * clusterSize);
      let o = 0;
      for (const [pos, len] of pieces) {
        stored.set(await readChecked(src, pos, len, what), o);
        o += len;
      }
      if (allocated === unitClusters) unit = stored;
      else lznt1(stored, unit);
    }
    const end = Math.min(unitBytes, s.dataSize - at);
    const valid = Math.max(0, Math.min(end, s.initializedSize - at));
    if (valid < end) unit.fill(0, valid, end);
    yield unit.subarray(0, end);
  }
}
