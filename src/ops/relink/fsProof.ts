/**
 * relink's guest-filesystems check: the guest's file systems, read through
 * the chain the relink would make (the child over the candidate), must be as
 * consistent as the candidate's own.
 *
 * VHD records no content link between a child and its parent; the file
 * systems inside do. A child holds the sectors its guest wrote over the
 * parent's content, so over the wrong parent (one that allocated the same
 * free clusters for other files, or was changed after the child was made)
 * the composed view shows what no file system writes: a cluster two files
 * claim, files in clusters the allocation map calls free, records no
 * directory reaches, directory entries naming records or inodes that are
 * not in use, NTFS records whose sectors come from two different writes.
 *
 *   1. The child's sectors (its bitmaps: chain/holdings.ts) decide where to
 *      look: a partition the child holds no byte of reads exactly as the
 *      candidate's, so it is not scanned.
 *   2. Each partition the child touches is scanned once through the composed
 *      view (one pass over its metadata: guest/layout.ts, the readers).
 *   3. Only when that scan shows anomalies is the same partition scanned in
 *      the candidate alone: an anomaly the candidate already has is not
 *      evidence against the link. What composing introduces is the
 *      difference (by bytes where the reader gives them, else by count), and
 *      for torn NTFS records only those at a seam: records some of whose
 *      bytes the child holds and some the candidate. A torn record wholly in
 *      the child is the child's own, whatever its parent.
 *   4. Verdict per partition: unchanged, consistent, inconsistent (refuses),
 *      unclean (the composed volume was not shut down cleanly, so its maps
 *      may lag its files until its journal is replayed: a warning --force
 *      accepts), or not proven (a file system vhdtool does not read, or
 *      cannot read in either view).
 *
 * Cost: one metadata scan per partition the child touches, a second only
 * when the first finds anomalies; the bytes read and the time are reported.
 */
import { VhdToolError } from '../../errors.js';
import type { Chain, Layer } from '../../chain/chain.js';
import { ChainReader } from '../../chain/reader.js';
import { chainSource } from '../../chain/guestSource.js';
import { layerHoldings } from '../../chain/holdings.js';
import { openVhd, type Vhd } from '../../vhd/image.js';
import { readGuestLayout, type GuestLayout, type PartitionView } from '../../guest/layout.js';
import { openVolume } from '../../guest/detect.js';
import { inPartition } from '../../guest/errors.js';
import { RangeSet } from '../../guest/ranges.js';
import { sliceSource, type ByteSource } from '../../guest/source.js';
import type { Anomaly, Volume, VolumeScan, VolumeStateName } from '../../guest/volume.js';
import type { ProofContext, StepResult } from './proof.js';
import { fmtBytes, plural } from '../../plural.js';

/** Anomaly kinds that describe a volume, not a contradiction in it: never evidence. */
const INFORMATIONAL = new Set(['bpb', 'external-journal']);

export type PartitionVerdict = 'unchanged' | 'consistent' | 'inconsistent' | 'unclean' | 'not-proven';

export interface FoundAnomaly {
  kind: string;
  /** Bytes concerned (volume bytes the composed view adds), or null when the reader gives none. */
  bytes: number | null;
  message: string;
}

export interface PartitionCheck {
  index: number;
  /** Byte offset and length on the disk. */
  start: number;
  size: number;
  /** The reader's kind (fat16, ext4, ntfs, swap), or 'unknown'. */
  fileSystem: string;
  /** What an unread partition looks like (BitLocker, unrecognised), else null. */
  detected: string | null;
  /** Bytes of this partition the child holds. */
  childBytes: number;
  verdict: PartitionVerdict;
  /** The composed volume's state (clean, dirty, ...), null when not scanned. */
  state: VolumeStateName | null;
  stateReasons: string[];
  /** Anomalies the composed view has and the candidate alone has not: the evidence. */
  introduced: FoundAnomaly[];
  /** Torn NTFS records wholly inside the child: its own, not evidence about the parent. */
  childOwn: FoundAnomaly[];
  /** Kinds of anomaly the candidate alone already has here (not evidence). */
  candidateKinds: string[];
  /** One phrase: why this verdict. */
  note: string;
  /** Guest bytes read by the scans of this partition (composed, then candidate). */
  bytesRead: number;
  durationMs: number;
}

export interface FileSystemsCheck {
  partitions: PartitionCheck[];
  /** Bytes the child holds outside every partition (tables, boot code, gaps): not checked. */
  outsideChildBytes: number;
  /** The composed disk's partition table could not be read: why, and whether the candidate alone reads its own. */
  table: { error: string; candidateReads: boolean } | null;
  /** Guest bytes read in all (both views). */
  bytesRead: number;
  durationMs: number;
}

const PROVES = 'the guest\'s file systems read through the new chain (child over candidate) are consistent: composing adds no cluster owned twice, ' +
  'no file in clusters marked free, no unreachable record, no directory entry naming a record or inode not in use, no broken chain or extent, ' +
  'no torn NTFS record where the child\'s sectors meet the candidate\'s';

export async function checkGuestFileSystems(ctx: ProofContext): Promise<StepResult> {
  const base = { name: 'guest-filesystems', proves: PROVES, code: 'BAD_FILESYSTEM' as const };
  const { chain, child } = ctx;
  if (!('layersLeafFirst' in chain)) {
    return { ...base, status: 'not-applicable', override: null, evidence: 'the candidate\'s chain does not open (parent-chain says why): there is no composed view to read' };
  }
  if (chain.layersLeafFirst.some((l) => l.meta.footer.uniqueId === child.meta.footer.uniqueId || (l.dev === child.stat.dev && l.ino === child.stat.ino))) {
    return { ...base, status: 'not-applicable', override: null, evidence: 'the candidate\'s chain contains the child (parent-chain refuses it): there is no composed view to read' };
  }
  const own = ctx.childVhd ? null : await openVhd(ctx.fs, child.path, { mode: 'strict' });
  try {
    const leaf = await childLayer(ctx, ctx.childVhd ?? own!);
    const fsc = await examine(leaf, chain, ctx);
    return { ...base, ...decide(fsc), fileSystems: fsc };
  } finally {
    if (own) await own.close();
  }
}

async function childLayer(ctx: ProofContext, vhd: Vhd): Promise<Layer> {
  const { path, stat, meta } = ctx.child;
  const realPath = await ctx.fs.realpath(path);
  return { path, realPath, dev: stat.dev, ino: stat.ino, mtimeMs: stat.mtimeMs, vhd, meta, parentFoundBy: null };
}

/** Reads the composed disk's layout and judges every partition. */
async function examine(leaf: Layer, candidate: Chain, ctx: ProofContext): Promise<FileSystemsCheck> {
  const t0 = Date.now();
  const held = layerHoldings(leaf).sectors;
  const composed: Chain = { layersLeafFirst: [leaf, ...candidate.layersLeafFirst], close: async () => {} };
  const disk = metered(chainSource(new ChainReader(composed)));
  const cand = new CandidateView(candidate);
  const out: FileSystemsCheck = { partitions: [], outsideChildBytes: held.bytes, table: null, bytesRead: 0, durationMs: 0 };
  let layout: GuestLayout | null = null;
  try {
    layout = await readGuestLayout(disk.src);
  } catch (e) {
    if (interruptedOrBug(e)) throw e;
    // With no sector of the child, the composed disk is the candidate's: its table is the candidate's own problem.
    out.table = { error: (e as VhdToolError).message, candidateReads: !held.isEmpty && (await cand.tableError()) === null };
  }
  if (layout) {
    out.outsideChildBytes = held.intersectBytes(layout.outside);
    for (const view of layout.partitions) {
      checkAbort(ctx.signal);
      out.partitions.push(await judgePartition(view, held, disk.read, cand, ctx));
    }
  }
  out.bytesRead = disk.read() + cand.bytesRead();
  out.durationMs = Date.now() - t0;
  return out;
}

interface Meter {
  src: ByteSource;
  read: () => number;
}

/** A source that counts the bytes read through it. */
function metered(src: ByteSource): Meter {
  let n = 0;
  return {
    src: { size: src.size, read: (o, l) => { n += l; return src.read(o, l); } },
    read: () => n,
  };
}

/** The candidate's own view, opened only when a baseline is needed. */
class CandidateView {
  private meter: Meter | null = null;

  constructor(private readonly chain: Chain) {}

  private get source(): ByteSource {
    this.meter ??= metered(chainSource(new ChainReader(this.chain)));
    return this.meter.src;
  }

  bytesRead(): number {
    return this.meter?.read() ?? 0;
  }

  /** Why the candidate's own partition table does not read, or null when it does. */
  async tableError(): Promise<string | null> {
    try {
      await readGuestLayout(this.source);
      return null;
    } catch (e) {
      if (interruptedOrBug(e)) throw e;
      return (e as VhdToolError).message;
    }
  }

  /**
   * The candidate's volume at the composed partition's place when a reader
   * of `family` (fat, ext, ntfs, swap) opens it; else null and why.
   */
  async volumeAt(start: number, size: number, family: string): Promise<{ volume: Volume | null; why: string }> {
    const src = this.source;
    if (start + size > src.size) return { volume: null, why: 'the candidate is smaller than this partition' };
    try {
      const v = await openVolume(sliceSource(src, start, size));
      if (!('scan' in v)) return { volume: null, why: `the candidate holds no ${family} volume here (${v.name})` };
      if (!v.kind.startsWith(family)) return { volume: null, why: `the candidate holds ${v.kind} here, not ${family}` };
      return { volume: v, why: '' };
    } catch (e) {
      if (interruptedOrBug(e)) throw e;
      return { volume: null, why: `the candidate's volume here does not open either: ${(e as VhdToolError).message}` };
    }
  }
}

function interruptedOrBug(e: unknown): boolean {
  return !(e instanceof VhdToolError) || e.code === 'INTERRUPTED' || e.code === 'INTERNAL';
}

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
}

/** fat16 -> fat, ext4 -> ext: the reader that claims a volume kind. */
function familyOf(kind: string): string {
  return kind.replace(/\d+$/, '');
}

function emptyCheck(view: PartitionView, childBytes: number): PartitionCheck {
  const p = view.partition;
  const vol = view.volume;
  return {
    index: p.index, start: p.start, size: p.size,
    fileSystem: vol && 'scan' in vol ? vol.kind : view.reader ?? 'unknown',
    detected: vol && !('scan' in vol) ? vol.name : null,
    childBytes, verdict: 'not-proven', state: null, stateReasons: [], introduced: [], childOwn: [], candidateKinds: [],
    note: '', bytesRead: 0, durationMs: 0,
  };
}

async function judgePartition(view: PartitionView, held: RangeSet, diskRead: () => number, cand: CandidateView, ctx: ProofContext): Promise<PartitionCheck> {
  const t0 = Date.now();
  const read0 = diskRead() + cand.bytesRead();
  const p = view.partition;
  const local = held.clip(p.start, p.start + p.size).shift(-p.start);
  const out = emptyCheck(view, local.bytes);
  const done = (c: PartitionCheck) => {
    c.bytesRead = diskRead() + cand.bytesRead() - read0;
    c.durationMs = Date.now() - t0;
    return c;
  };
  if (local.isEmpty) {
    out.verdict = 'unchanged';
    out.note = 'the child holds no byte of it: it reads exactly as the candidate\'s';
    return done(out);
  }
  const vol = view.volume;
  if (view.error || !vol) return done(await notReadable(out, view.error?.message ?? 'it does not open', p, cand, ctx.signal));
  if (!('scan' in vol)) {
    out.note = `not proven: vhdtool does not read ${vol.name === 'unrecognised' ? 'unrecognised content' : vol.name}`;
    return done(out);
  }
  let scan: VolumeScan;
  ctx.progress?.start(`checking partition ${p.index} (${vol.kind}) through the new chain`, 0);
  try {
    scan = await scanVolume(vol, ctx.signal);
  } catch (e) {
    if (interruptedOrBug(e)) throw e;
    return done(await notReadable(out, inPartition(e, p.index, vol.kind).message, p, cand, ctx.signal));
  } finally {
    ctx.progress?.done();
  }
  out.state = scan.state.state;
  out.stateReasons = scan.state.reasons;
  await judgeAnomalies(out, scan, local, () => cand.volumeAt(p.start, p.size, familyOf(vol.kind)), ctx.signal);
  return done(out);
}

/**
 * The verdict from the composed scan's anomalies, against those the
 * candidate alone has at the same place (`openBaseline`: opened and scanned
 * only when the composed view has any).
 */
async function judgeAnomalies(out: PartitionCheck, scan: VolumeScan, local: RangeSet,
  openBaseline: () => Promise<{ volume: Volume | null; why: string }>, signal?: AbortSignal): Promise<void> {
  const scanned = `${plural(scan.files, 'file')} and ${plural(scan.directories, 'directory', 'directories')} read`;
  const evidence = scan.anomalies.filter((a) => !INFORMATIONAL.has(a.kind));
  if (evidence.length === 0) {
    out.verdict = 'consistent';
    out.note = `${scanned}, no anomaly`;
    return;
  }
  const baseline = await openBaseline();
  const candAnomalies = baseline.volume ? (await scanVolume(baseline.volume, signal)).anomalies.filter((a) => !INFORMATIONAL.has(a.kind)) : [];
  out.candidateKinds = candAnomalies.map((a) => a.kind);
  const d = introducedBy(evidence, candAnomalies, local);
  out.introduced = d.introduced;
  out.childOwn = d.childOwn;
  const alone = baseline.volume
    ? (candAnomalies.length ? `; the candidate alone already has ${out.candidateKinds.join(', ')}` : '')
    : `; ${baseline.why}, so every anomaly counts`;
  const own = d.childOwn.length ? `; ${d.childOwn.map(describe).join('; ')}, wholly inside the child: its own, whatever its parent` : '';
  if (out.introduced.length === 0) {
    out.verdict = 'consistent';
    out.note = `${scanned}; composing adds no anomaly${alone}${own}`;
    return;
  }
  const clean = scan.state.state === 'clean';
  out.verdict = clean ? 'inconsistent' : 'unclean';
  const state = clean ? '' : ` (the volume is ${scan.state.state}: ${scan.state.reasons.join('; ')})`;
  out.note = `${scanned}${state}; composing adds ${out.introduced.map(describe).join('; ')}${alone}${own}`;
}

async function scanVolume(v: Volume, signal?: AbortSignal): Promise<VolumeScan> {
  try {
    // Directory indexes too (NTFS): a second statement of the tree, in other sectors than the records.
    return await v.scan({ signal, indexes: true });
  } catch (e) {
    // A reader may reject with the signal's own reason.
    checkAbort(signal);
    throw e;
  }
}

/**
 * A partition the composed view cannot read: evidence when the candidate
 * alone reads it with the same reader (composing broke it), else not proven.
 */
async function notReadable(out: PartitionCheck, why: string, p: { start: number; size: number }, cand: CandidateView, signal?: AbortSignal): Promise<PartitionCheck> {
  if (out.fileSystem !== 'unknown') {
    const family = familyOf(out.fileSystem);
    const v = await cand.volumeAt(p.start, p.size, family);
    const reads = v.volume ? await scanVolume(v.volume, signal).then(() => true, (e) => { if (interruptedOrBug(e)) throw e; return false; }) : false;
    if (reads) {
      out.verdict = 'inconsistent';
      out.introduced = [{ kind: 'unreadable', bytes: null, message: why }];
      out.note = `composing makes it unreadable (${why}); the candidate alone reads it`;
      return out;
    }
  }
  out.note = `not proven: ${why}`;
  return out;
}

/**
 * The composed view's anomalies that the candidate alone does not have: by
 * bytes where the reader gives them, and by count. Torn records count only
 * at a seam (bytes of one record from both the child and the candidate);
 * those wholly in the child are its own.
 */
export function introducedBy(composed: Anomaly[], candidate: Anomaly[], childHeld: RangeSet): { introduced: FoundAnomaly[]; childOwn: FoundAnomaly[] } {
  const introduced: FoundAnomaly[] = [];
  const childOwn: FoundAnomaly[] = [];
  const byKind = new Map(candidate.map((a) => [a.kind, a]));
  for (const a of composed) {
    const c = byKind.get(a.kind);
    const extra = a.ranges && c?.ranges ? a.ranges.subtract(c.ranges) : a.ranges ?? null;
    if (a.kind === 'torn-record' && extra) {
      const { seam, inChild } = splitSeams(extra, childHeld);
      if (!seam.isEmpty) introduced.push({ kind: a.kind, bytes: seam.bytes, message: `at a seam between the child and the candidate (first at byte ${seam.first}): ${a.message}` });
      if (!inChild.isEmpty) childOwn.push({ kind: a.kind, bytes: inChild.bytes, message: a.message });
      continue;
    }
    if (extra && !extra.isEmpty) {
      introduced.push({ kind: a.kind, bytes: extra.bytes, message: a.message });
      continue;
    }
    if (!c) {
      if (!extra) introduced.push({ kind: a.kind, bytes: null, message: a.message });
      continue;
    }
    // No new bytes (or none given): more cases than the candidate alone has are new ones.
    const more = a.count !== undefined && c.count !== undefined ? a.count > c.count : !a.ranges && a.message !== c.message;
    if (more) introduced.push({ kind: a.kind, bytes: null, message: a.message });
  }
  return { introduced, childOwn };
}

/**
 * Splits torn-record bytes into those at a seam and those wholly in the
 * child. Each maximal run holds whole records; a run with bytes both in and
 * out of the child holds at least one record whose bytes come from both
 * (a record wholly from the candidate would be torn in the candidate too,
 * and was subtracted), and a run wholly in the child holds only the child's
 * own records.
 */
function splitSeams(torn: RangeSet, childHeld: RangeSet): { seam: RangeSet; inChild: RangeSet } {
  const seamPairs: Array<[number, number]> = [];
  const childPairs: Array<[number, number]> = [];
  for (let i = 0; i < torn.count; i++) {
    const s = torn.start(i);
    const e = torn.end(i);
    (childHeld.covers(s, e) ? childPairs : seamPairs).push([s, e]);
  }
  return { seam: RangeSet.from(seamPairs), inChild: RangeSet.from(childPairs) };
}

function describe(a: FoundAnomaly): string {
  return `${a.kind}${a.bytes !== null ? ` (${a.bytes} bytes)` : ''}: ${a.message}`;
}

function label(p: PartitionCheck): string {
  const what = p.fileSystem === 'unknown' ? (p.detected ?? 'unknown') : p.fileSystem;
  return `partition ${p.index} (${what}, child holds ${fmtBytes(p.childBytes)})`;
}

/** The step's status and one-line evidence, from the partitions' verdicts. */
export function decide(f: FileSystemsCheck): Pick<StepResult, 'status' | 'evidence' | 'override'> & { limits: string[] } {
  const parts = f.partitions.map((p) => `${label(p)}: ${p.verdict}: ${p.note}`);
  const limits: string[] = [];
  for (const p of f.partitions) if (p.verdict === 'not-proven') limits.push(`${label(p)}: ${p.note}`);
  if (f.outsideChildBytes > 0 && !f.table) limits.push(`${fmtBytes(f.outsideChildBytes)} the child holds outside every partition (partition tables, boot code, gaps) are not checked`);
  const cost = `; read ${fmtBytes(f.bytesRead)} of guest metadata in ${(f.durationMs / 1000).toFixed(2)} s`;
  if (f.table) {
    if (f.table.candidateReads) return { status: 'failed', override: null, evidence: `composing breaks the partition table: ${f.table.error}; the candidate alone reads its own${cost}`, limits };
    limits.push(`the composed disk's partition table cannot be read (${f.table.error}): no file system was checked`);
    return { status: 'not-applicable', override: null, evidence: `the partition table cannot be read: ${f.table.error}${cost}`, limits };
  }
  const any = (v: PartitionVerdict) => f.partitions.some((p) => p.verdict === v);
  const text = (parts.length ? parts.join('; ') : 'no partition') + cost;
  if (any('inconsistent')) return { status: 'failed', override: null, evidence: text, limits };
  if (any('unclean')) {
    return {
      status: 'warning', override: '--force', limits,
      evidence: `${text}; a volume that was not shut down cleanly can show such anomalies until its journal is replayed or its checker runs, so they do not prove a wrong parent`,
    };
  }
  const readable = f.partitions.some((p) => p.verdict === 'consistent' || (p.verdict === 'unchanged' && p.fileSystem !== 'unknown'));
  if (!readable) return { status: 'not-applicable', override: null, evidence: `no file system vhdtool reads: ${text}`, limits };
  return { status: 'passed', override: null, evidence: text, limits };
}
