/**
 * The drop plan of `compact --free-space`: which guest bytes a compaction may
 * drop from the leaf although they differ from what the parent chain reads
 * there, because nothing in the guest reads them (free clusters), or because
 * the user opted in (`--drop pagefile,swapfile,hiberfil,swap`).
 *
 * Pure: it takes what the survey (ops/dropSurvey.ts) learnt about each
 * partition and decides, per partition, what is dropped or why nothing is.
 * Everything it returns is in disk bytes, whole 512-byte sectors, inside a
 * partition's own clusters:
 *
 *   freeSpace = free clusters, clipped to the cluster area, minus metadata,
 *               narrowed to whole sectors
 *   pagefile / swapfile / hiberfil = the file's clusters minus the file's
 *               first 4 KiB (its header), NTFS or FAT alike
 *   swap      = a Linux swap area's pages after the header page
 *
 * Never: anything outside partitions (tables, the backup GPT, gaps), a
 * partition whose file system is not understood or not read, one that is
 * dirty, hibernated, unclean or needs recovery, one whose free map disagrees
 * with its files' allocation, sectors past the last whole cluster (the NTFS
 * backup boot sector).
 */
import { RangeSet, RangeSetBuilder } from '../guest/ranges.js';
import type { Anomaly, VolumeState } from '../guest/volume.js';

const SECTOR = 512;
/** Bytes at the start of a dropped file kept as they are (its header: crash dump, hibernation signature). */
export const HEADER_KEEP = 4096;

export const DROP_KINDS = ['pagefile', 'swapfile', 'hiberfil', 'swap'] as const;
export type DropKind = (typeof DROP_KINDS)[number];
/** Why the plan drops a sector. */
export type PlanReason = 'freeSpace' | DropKind;
export const PLAN_REASONS: readonly PlanReason[] = ['freeSpace', 'pagefile', 'swapfile', 'hiberfil', 'swap'];
/** Why any sector is dropped: the compare kernel's two reasons, then the plan's. */
export type DropReason = 'sameAsParent' | 'zeroOverZero' | PlanReason;
export const DROP_REASONS: readonly DropReason[] = ['sameAsParent', 'zeroOverZero', ...PLAN_REASONS];

/**
 * Anomalies that mean the free map cannot be trusted: a cluster claimed
 * twice or claimed and marked free (ntfsclone's "cluster accounting"), FAT
 * copies that disagree, a chain running into a free cluster, a bitmap or
 * journal failing its checksum.
 */
export const DISTRUST: readonly string[] = ['double-owned', 'owned-but-free', 'fat-mismatch', 'bad-chain', 'bad-checksum', 'bad-journal'];

/** The Windows files --drop names, at the root of a volume (case-insensitive). */
export const SPECIAL_FILES: Readonly<Record<'pagefile' | 'swapfile' | 'hiberfil', string>> = {
  pagefile: 'pagefile.sys', swapfile: 'swapfile.sys', hiberfil: 'hiberfil.sys',
};

export interface SpecialFile {
  path: string;
  size: number;
  /** The file's clusters (volume bytes). */
  data: RangeSet;
  /** Its first bytes (up to HEADER_KEEP). */
  head: Uint8Array;
  /** Volume byte where its content begins (the header), or null when it could not be located. */
  headAt: number | null;
}

/** What the survey learnt about one partition. */
export interface PartitionFacts {
  index: number;
  /** Disk bytes. */
  start: number;
  size: number;
  /** The file system ("ntfs", "fat32", "swap"...), "unknown" when none is read. */
  fs: string;
  /** For an unknown one: what it looks like ("BitLocker", "unrecognised"). */
  name?: string;
  label: string | null;
  /** Why it could not be read, or null. */
  error: string | null;
  state?: VolumeState;
  clusterSize?: number;
  /** Volume bytes the clusters cover. */
  clusterArea?: { start: number; end: number };
  /** Volume bytes. */
  free?: RangeSet;
  metadata?: RangeSet;
  anomalies?: Anomaly[];
  special?: Partial<Record<'pagefile' | 'swapfile' | 'hiberfil', SpecialFile>>;
}

export interface PartitionDropPlan {
  index: number;
  start: number;
  size: number;
  fs: string;
  label: string | null;
  /** planned: its sectors may be dropped; skipped: left as it is, for `reason`. */
  status: 'planned' | 'skipped';
  reason: string | null;
  /** Opted-in drops refused here, and why. */
  refused: Array<{ drop: DropKind; reason: string }>;
  /** Disk bytes to drop, by reason (disjoint). */
  ranges: Partial<Record<PlanReason, RangeSet>>;
}

export interface DropPlan {
  partitions: PartitionDropPlan[];
  /** The opted-in drops. */
  drops: DropKind[];
  /** Why the partitions could not even be listed (an untrustworthy table), else null. */
  tableError: string | null;
}

/** Decides what may be dropped in each partition. `outside` (disk bytes outside every partition) is never dropped. */
export function planDrops(facts: PartitionFacts[], drops: readonly DropKind[], outside: RangeSet = RangeSet.EMPTY, tableError: string | null = null): DropPlan {
  const taken = new RangeSetBuilder();
  const partitions: PartitionDropPlan[] = [];
  for (const f of facts) {
    const p = planPartition(f, drops);
    // Defence in depth: never outside the partition, never outside-partition bytes, never twice.
    const fence = RangeSet.of(f.start, f.start + f.size).subtract(outside).subtract(taken.build());
    for (const r of PLAN_REASONS) {
      const set = p.ranges[r];
      if (!set) continue;
      const kept = set.intersect(fence).narrow(SECTOR);
      if (kept.isEmpty) delete p.ranges[r];
      else p.ranges[r] = kept;
    }
    taken.add(f.start, f.start + f.size);
    partitions.push(p);
  }
  return { partitions, drops: [...drops], tableError };
}

function planPartition(f: PartitionFacts, drops: readonly DropKind[]): PartitionDropPlan {
  const p: PartitionDropPlan = {
    index: f.index, start: f.start, size: f.size, fs: f.fs, label: f.label, status: 'skipped', reason: null, refused: [], ranges: {},
  };
  const refuseAll = (why: string) => {
    for (const d of drops) if (applies(d, f)) p.refused.push({ drop: d, reason: why });
  };
  if (f.error) {
    p.reason = `cannot be read: ${f.error}`;
    refuseAll(p.reason);
    return p;
  }
  if (f.fs === 'unknown' || !f.clusterArea || !f.free || !f.metadata || !f.state) {
    p.reason = `file system not understood (${f.name ?? 'unrecognised'}): nothing in it is dropped`;
    return p;
  }
  if (f.state.state !== 'clean') {
    p.reason = `${f.state.state}: ${f.state.reasons.join('; ')}`;
    refuseAll(p.reason);
    return p;
  }
  const distrust = (f.anomalies ?? []).filter((a) => DISTRUST.includes(a.kind));
  if (distrust.length) {
    p.reason = `the free map disagrees with the files' allocation (${distrust.map((a) => `${a.kind}: ${a.message}`).join('; ')}); run the guest's file-system check`;
    refuseAll(p.reason);
    return p;
  }
  const area = RangeSet.of(f.clusterArea.start, f.clusterArea.end);
  const shiftIn = (s: RangeSet) => s.intersect(area).subtract(f.metadata!).shift(f.start).narrow(SECTOR);
  if (f.fs === 'swap') {
    if (!drops.includes('swap')) {
      p.reason = 'a swap area: its pages are dropped only with --drop swap';
      return p;
    }
    const page = Math.max(f.clusterSize ?? HEADER_KEEP, HEADER_KEEP);
    p.status = 'planned';
    p.ranges.swap = shiftIn(RangeSet.of(page, f.clusterArea.end));
    return p;
  }
  p.status = 'planned';
  p.ranges.freeSpace = shiftIn(f.free);
  for (const kind of ['pagefile', 'swapfile', 'hiberfil'] as const) {
    const file = f.special?.[kind];
    if (!drops.includes(kind) || !file) continue;
    const why = refuseFile(kind, file);
    if (why) {
      p.refused.push({ drop: kind, reason: why });
      continue;
    }
    const header = RangeSet.of(file.headAt!, file.headAt! + HEADER_KEEP).widen(SECTOR);
    p.ranges[kind] = shiftIn(file.data.subtract(header)).subtract(p.ranges.freeSpace);
  }
  return p;
}

/** Does an opted-in drop concern this partition (for reporting a refusal)? */
function applies(d: DropKind, f: PartitionFacts): boolean {
  if (d === 'swap') return f.fs === 'swap';
  return f.fs !== 'swap' && f.special?.[d] !== undefined;
}

const ascii = (b: Uint8Array, n: number) => String.fromCharCode(...b.subarray(0, n));

/** Why the content of a pagefile, swapfile or hiberfil must stay, or null. */
export function refuseFile(kind: 'pagefile' | 'swapfile' | 'hiberfil', file: SpecialFile): string | null {
  const name = SPECIAL_FILES[kind];
  if (kind === 'pagefile' || kind === 'swapfile') {
    const sig = ascii(file.head, 8);
    if (sig === 'PAGEDUMP' || sig === 'PAGEDU64') {
      return `${name} holds a crash dump Windows has not saved yet (${sig}); boot the guest once so it writes MEMORY.DMP`;
    }
  } else {
    const sig = ascii(file.head, 4);
    if (file.size < HEADER_KEEP) return `${name} is shorter than a hibernation header (${file.size} bytes): treated as hibernated`;
    if (sig === 'hibr' || sig === 'HIBR') return `${name} holds a hibernation image ("${sig}": hibernated, or shut down with Fast Startup)`;
  }
  if (file.headAt === null) return `${name}: where its first 4 KiB (the header, kept) lie could not be established`;
  return null;
}
