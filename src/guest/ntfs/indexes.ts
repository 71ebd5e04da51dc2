/**
 * Directory indexes ($I30) cross-checked against the MFT, the part of
 * chkdsk's index pass that a chain from the wrong parent breaks: every entry
 * of a directory's index must name a record in use, with the sequence number
 * the entry carries ('bad-index'), and every file or directory in use must be
 * named by the index of the directory its $FILE_NAME names ('unindexed').
 *
 * The MFT pass builds paths from $FILE_NAME parent references alone; an
 * index is a second, separate statement of the same tree, written in other
 * sectors (the directory's record, its INDX blocks). Composed from a child
 * and a parent that are not each other's, the two disagree: a directory
 * whose index blocks come from one and whose entries' records from the other
 * names records that are not there, or misses records that are.
 *
 * Read only when asked (ScanOptions.indexes): one record read per directory
 * (through its attribute list when it has one) and each index block its
 * $BITMAP marks in use, once. Memory: one byte per record. Index blocks read
 * are capped by what the MFT can need (BUDGET_PER_RECORD a record, at least
 * BUDGET_MIN in all): a hostile index mapping the whole volume is reported,
 * not read.
 */
import { GuestError, checkAborted } from '../errors.js';
import { RangeSetBuilder, type RangeSet } from '../ranges.js';
import type { ByteSource } from '../source.js';
import type { Anomaly } from '../volume.js';
import { AT_INDEX_ALLOCATION, AT_INDEX_ROOT } from './attributes.js';
import { refRecord, refSeq, u16, u32, utf16 } from './bytes.js';
import { readStream, type Stream } from './content.js';
import { streamOf, type AttrInfo } from './file.js';
import { AnomalyLog } from './pass.js';
import { applyFixups } from './record.js';
import { F_BAD, F_DIR, F_EXTENSION, F_IN_USE, NO_PARENT_SLOT, type RecordTable } from './tables.js';

const AT_BITMAP = 0xb0;
const I30 = '$I30';
const MAGIC_INDX = 0x58444e49; // "INDX"
const ENTRY_LAST = 2;
const ROOT = 5;
/** Index bytes a record may account for (a real entry is about 100 bytes; blocks are rarely full). */
const BUDGET_PER_RECORD = 4096;
const BUDGET_MIN = 64 * 1024 * 1024;

/** What the check needs of the volume. */
export interface IndexVolume {
  src: ByteSource;
  clusterSize: number;
  /** All attributes of file n (base record and extensions). */
  load(n: number): Promise<{ attrs: AttrInfo[] }>;
  recordRanges(n: number): RangeSet;
}

interface Dir {
  record: number;
  /** What the messages call it. */
  name: string;
  /** Volume bytes of the structure being read (the record, or an index block). */
  where: RangeSet;
}

export async function checkIndexes(v: IndexVolume, t: RecordTable, signal?: AbortSignal): Promise<Anomaly[]> {
  const log = new AnomalyLog();
  const named = new Uint8Array(t.count);
  const budget = { left: Math.max(BUDGET_MIN, t.count * BUDGET_PER_RECORD), over: false };
  for (let d = 0; d < t.count; d++) {
    if (!t.live(d) || !(t.flags[d] & F_DIR)) continue;
    if ((d & 255) === 0) checkAborted(signal);
    const dir: Dir = { record: d, name: `directory ${t.names[d] !== undefined && d !== ROOT ? `'${t.names[d]}' ` : d === ROOT ? '(root) ' : ''}(MFT record ${d})`, where: v.recordRanges(d) };
    try {
      await checkDirectory(v, dir, t, named, log, budget);
    } catch (e) {
      if (!(e instanceof GuestError)) throw e;
      log.add('bad-index', `${dir.name}: ${e.message}`, dir.where);
    }
  }
  // Past the budget some entries went unread: no record can be said to be missing from its index.
  if (budget.over) return log.list();
  for (let r = 0; r < t.count; r++) {
    const p = t.parent[r];
    // Orphans (a parent not in use, reused, or not a directory) are the path pass's to report.
    if (named[r] || !t.live(r) || t.nameRank[r] === 0 || p === NO_PARENT_SLOT || !t.live(p) || !(t.flags[p] & F_DIR)) continue;
    if (t.parentSeq[r] !== 0 && t.parentSeq[r] !== t.sequence[p]) continue;
    if (r === ROOT) continue;
    log.add('unindexed', `MFT record ${r} ('${t.names[r] ?? ''}') is in use, but the index of its directory (MFT record ${p}) does not name it`, v.recordRanges(r));
  }
  return log.list();
}

async function checkDirectory(v: IndexVolume, dir: Dir, t: RecordTable, named: Uint8Array, log: AnomalyLog, budget: { left: number; over: boolean }): Promise<void> {
  const { attrs } = await v.load(dir.record);
  const root = attrs.find((a) => a.type === AT_INDEX_ROOT && a.name === I30 && a.value);
  if (!root) {
    log.add('bad-index', `${dir.name} has no $I30 index root`, dir.where);
    return;
  }
  const rv = root.value!;
  if (rv.length < 32) throw new GuestError('its index root is too short');
  const blockSize = u32(rv, 8);
  walkEntries(rv, 16, rv.length, dir, t, named, log);
  const alloc = streamOf(attrs, AT_INDEX_ALLOCATION, I30);
  if (!alloc || alloc.resident || alloc.dataSize === 0) return;
  if (blockSize < 512 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0) throw new GuestError(`its index root gives an index block size of ${blockSize}`);
  const mapped = alloc.runs.reduce((n, r) => n + r.length, 0) * v.clusterSize;
  const count = Math.floor(Math.min(alloc.dataSize, alloc.initializedSize, mapped) / blockSize);
  const used = await indexBitmap(v, attrs, count, dir);
  for (let i = 0; i < count; i++) {
    if (used && !(i >> 3 < used.length && used[i >> 3] & (1 << (i & 7)))) continue;
    if (budget.left < blockSize) {
      if (!budget.over) log.add('bad-index', `${dir.name}: the directory indexes hold more blocks than the MFT's ${t.count} records can need; the rest is not read`, dir.where);
      budget.over = true;
      return;
    }
    budget.left -= blockSize;
    const at = i * blockSize;
    const where = { ...dir, where: streamBytes(alloc, v.clusterSize, at, blockSize) };
    const b = await readStream(v.src, alloc, v.clusterSize, at, blockSize, `index block ${i} of ${dir.name}`);
    if (u32(b, 0) !== MAGIC_INDX) {
      log.add('bad-index', `${dir.name}: index block ${i} has no INDX signature`, where.where);
      continue;
    }
    const fx = applyFixups(b, 0, blockSize);
    if (fx !== 'ok') {
      log.add('bad-index', `${dir.name}: index block ${i} is ${fx === 'torn' ? 'torn (its update sequence does not match)' : 'malformed'}`, where.where);
      continue;
    }
    walkEntries(b, 24, blockSize, where, t, named, log);
  }
}

/** Which index blocks are in use: its $I30 $BITMAP (bit i: block i), or null (all) when it has none. */
async function indexBitmap(v: IndexVolume, attrs: AttrInfo[], count: number, dir: Dir): Promise<Uint8Array | null> {
  const s = streamOf(attrs, AT_BITMAP, I30);
  if (!s) return null;
  const n = Math.min(s.dataSize, Math.ceil(count / 8));
  return s.resident ? s.resident.subarray(0, n) : readStream(v.src, s, v.clusterSize, 0, n, `index bitmap of ${dir.name}`);
}

/**
 * The entries of one index node: its header at `h` (offsets relative to it),
 * the node's bytes ending at `limit`. Each entry names a file by reference.
 */
function walkEntries(b: Uint8Array, h: number, limit: number, dir: Dir, t: RecordTable, named: Uint8Array, log: AnomalyLog): void {
  const first = h + u32(b, h);
  const end = Math.min(limit, h + u32(b, h + 4));
  for (let o = first; ;) {
    if (o + 16 > end) {
      log.add('bad-index', `${dir.name}: its index entries run past the node's end (no last entry)`, dir.where);
      return;
    }
    const len = u16(b, o + 8);
    const keyLen = u16(b, o + 10);
    if (u16(b, o + 12) & ENTRY_LAST) return;
    if (len < 16 || len % 8 !== 0 || o + len > end || 16 + keyLen > len) {
      log.add('bad-index', `${dir.name}: a malformed index entry at byte ${o - h} of a node`, dir.where);
      return;
    }
    checkEntry(b, o, keyLen, dir, t, named, log);
    o += len;
  }
}

function checkEntry(b: Uint8Array, o: number, keyLen: number, dir: Dir, t: RecordTable, named: Uint8Array, log: AnomalyLog): void {
  const r = refRecord(b, o);
  const seq = refSeq(b, o);
  const chars = keyLen >= 0x42 ? b[o + 16 + 0x40] : 0;
  const name = chars && 0x42 + 2 * chars <= keyLen ? utf16(b, o + 16 + 0x42, chars) : '';
  const what = `${dir.name} names MFT record ${r}${name ? ` ('${name}')` : ''}`;
  if (r >= t.count || !(t.flags[r] & F_IN_USE)) {
    log.add('bad-index', `${what}, which is not in use`, dir.where);
    return;
  }
  // A torn record is reported as such; an extension record is no file.
  if (t.flags[r] & F_BAD) return;
  if (t.flags[r] & F_EXTENSION) {
    log.add('bad-index', `${what}, an extension record, not a file`, dir.where);
    return;
  }
  if (seq !== 0 && seq !== t.sequence[r]) {
    log.add('bad-index', `${what} with sequence ${seq}, but the record has sequence ${t.sequence[r]} (reused)`, dir.where);
    return;
  }
  named[r] = 1;
}

/** Volume bytes of [offset, offset + length) of a non-resident stream. */
function streamBytes(s: Stream, cs: number, offset: number, length: number): RangeSet {
  const out = new RangeSetBuilder();
  for (const r of s.runs) {
    if (r.lcn < 0) continue;
    const from = Math.max(offset, r.vcn * cs);
    const to = Math.min(offset + length, (r.vcn + r.length) * cs);
    if (to > from) out.add(r.lcn * cs + (from - r.vcn * cs), r.lcn * cs + (to - r.vcn * cs));
  }
  return out.build();
}
