/**
 * The maintain report: one JSON object (printed by --json, written by
 * --report), the human summary, and the exit status. Pure.
 */
import { ErrorCodes, type ErrorCode } from '../errors.js';
import type { DiskType } from '../format/index.js';
import type { Shard } from './shard.js';
import { plural } from '../plural.js';
import type { DropKind } from '../plan/dropPlan.js';
import { emptyReasons, type PartitionReport, type ReasonBytes } from '../ops/dropReport.js';

export const REPORT_VERSION = 1;

/** Why a disk or a chain was left alone without it being an error. */
export type SkipReason =
  | 'locked'              // another vhdtool (another maintain run) holds the lock: it is doing the work
  | 'in-use'              // open in another process (a running VM, a backup agent)
  | 'saved-state'         // a VM was saved with it attached
  | 'external'            // outside the roots (or excluded): read, never written
  | 'fixed'               // a fixed disk has nothing to reclaim
  | 'below-threshold'     // reclaimable space below --min-reclaim (bounded without reading data)
  | 'changed-during-run'  // another run changed the family after discovery; the next run sees it fresh
  | 'still-referenced'    // an unused layer that a disk under the roots still names as its parent
  | 'symlink'             // an unused layer reached through a symbolic link (not deleted)
  | 'rewritten'           // dry run: the disk would be coalesced first, so its compaction is not measured
  | 'chain-broken'        // the family cannot be opened (its error is reported once, on the chain)
  | 'relink-refused'      // --relink: its stale locators could not be rewritten (the error says why): not written this run
  | 'interrupted';

export interface Skip {
  reason: SkipReason;
  message: string;
}

export interface ErrorEntry {
  /** The disk (or folder) the error is about. */
  path: string;
  code: ErrorCode;
  /** What the command alone would have exited with for this error. */
  exitCode: number;
  message: string;
  /** What maintain was doing: discover, relink, compact, coalesce, remove-orphan, maintain, write-report, write-metrics. */
  during: string;
}

export interface DiskReport {
  path: string;
  uuid: string;
  type: DiskType;
  /** Parent at the end of the run (after shortening); null for a base. */
  parent: string | null;
  parentUuid: string | null;
  /** Differencing layers from this disk down to its base (this one included) at the end of the run. */
  depth: number | null;
  external: boolean;
  sizeBefore: number;
  /** Null when the disk was removed. */
  sizeAfter: number | null;
  /** The dry-run figure (exact), measured before compaction; null when not measured. */
  reclaimableBytes: number | null;
  /** When not measured: the most compaction could reclaim (file size minus an empty disk). */
  reclaimableAtMost: number | null;
  reclaimedBytes: number;
  changed: boolean;
  removed: boolean;
  /**
   * At the end of the run its locators (and parent name) do not lead to its
   * parent, which discovery found by UUID under the roots: it opens through
   * maintain, not in other tools (--relink rewrites them).
   */
  staleLocators: boolean;
  skip: Skip | null;
  /** Bytes compaction drops from the disk, by reason (the dry-run figures); null when not measured. */
  droppedBytes: ReasonBytes | null;
  /** With --free-space: whether it applied to this disk (leaves only), and what the partitions gave; null without it or when not measured. */
  freeSpace: DiskFreeSpace | null;
}

export interface DiskFreeSpace {
  applied: boolean;
  /** Why not (a disk with children), else null. */
  reason: string | null;
  /** Why the partition table could not be read, else null. */
  tableError: string | null;
  partitions: PartitionReport[];
  blocksKept: { count: number; usedBytes: number };
}

export interface ActionReport {
  action: 'compact' | 'coalesce' | 'remove-orphan' | 'relink';
  disk: string;
  /** True in a dry run: planned, not done. */
  dryRun: boolean;
  /** coalesce: the parent merged into the disk, and the disk's new parent (null: it became standalone). relink: the parent its locators now name. */
  parent?: string;
  newParent?: string | null;
  bytesBefore?: number;
  bytesAfter?: number;
  /** compact: bytes freed (a dry run: bytes it would free). */
  reclaimedBytes?: number;
  /** relink: how the link was written (in-place, rewrite, unchanged) and the proof's verdict (proven, accepted). */
  method?: 'in-place' | 'rewrite' | 'unchanged';
  proof?: 'proven' | 'accepted';
  /** compact: sector bytes dropped, by reason. */
  droppedBytes?: ReasonBytes;
  durationMs: number;
}

export type ChainStatus = 'ok' | 'skipped' | 'failed';

export interface ChainReport {
  /** The family's base (for a broken family: its top disk, the one whose parent is missing). */
  base: { path: string; uuid: string; type: DiskType; external: boolean };
  /** The shard key: the base's UUID, or for a broken family the UUID of the missing parent. */
  key: string;
  /** ok: maintained (changed or already fine); skipped: left alone for a reason that is not an error; failed: an error. */
  status: ChainStatus;
  changed: boolean;
  skip: Skip | null;
  /** Every disk of the family, parents before children. */
  disks: DiskReport[];
  /** Each chain at the end of the run: leaf first, base last (paths). */
  chains: string[][];
  actions: ActionReport[];
  bytesReclaimed: number;
  /** Sum of the dry-run figures of the disks chosen for compaction. */
  bytesReclaimable: number;
  /** Sector bytes those compactions drop, by reason. */
  droppedBytes: ReasonBytes;
  /** Temporary files of killed vhdtool runs removed from beside these disks. */
  removedTemporaries: string[];
  errors: ErrorEntry[];
}

export interface UnreadableReport {
  path: string;
  kind: 'file' | 'directory';
  code: ErrorCode;
  message: string;
  uuid: string | null;
}

export interface MaintainSummary {
  /** Disk files found under the roots (readable or not). */
  disksFound: number;
  unreadable: number;
  /** Families of chains found (all shards). */
  chains: number;
  chainsInShard: number;
  chainsOk: number;
  chainsChanged: number;
  chainsSkipped: number;
  chainsFailed: number;
  disksCompacted: number;
  bytesReclaimed: number;
  bytesReclaimable: number;
  /** Sector bytes dropped by the compactions chosen (a dry run: that would be), by reason. */
  droppedBytes: ReasonBytes;
  /** Chains (leaves) shortened by at least one layer. */
  chainsShortened: number;
  layersCoalesced: number;
  orphansRemoved: number;
  /** --relink: children whose stale locators were rewritten (a dry run: would be). */
  disksRelinked: number;
  /** Disks left with stale locators at the end of the run (warnings, not errors). */
  staleLocators: number;
  disksSkipped: number;
  errors: number;
  discoveryMs: number;
}

export interface MaintainReport {
  tool: 'vhdtool';
  command: 'maintain';
  reportVersion: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  dryRun: boolean;
  roots: string[];
  shard: Shard;
  options: {
    minReclaim: number;
    maxDepth: number | null;
    removeOrphans: boolean;
    relink: boolean;
    exclude: string[];
    threads: number;
    concurrency: number;
    freeSpace: boolean;
    drop: DropKind[];
  };
  /** 0 healthy; 1 some chain failed or was skipped for an error; otherwise the fatal error's code. */
  exitCode: number;
  status: 'healthy' | 'errors' | 'fatal';
  fatal: ErrorEntry | null;
  summary: MaintainSummary;
  chains: ChainReport[];
  unreadable: UnreadableReport[];
  /** Every error of the run: the chains', the unreadable files' and the fatal one. */
  errors: ErrorEntry[];
  warnings: string[];
}

export function exitCodeOf(r: Pick<MaintainReport, 'fatal' | 'errors'>): number {
  if (r.fatal) return r.fatal.exitCode;
  return r.errors.length > 0 ? 1 : 0;
}

/** Fills summary, errors, status and exit code from the chains and unreadable files. */
export function finalize(r: MaintainReport): MaintainReport {
  const errors: ErrorEntry[] = [];
  for (const c of r.chains) errors.push(...c.errors);
  for (const u of r.unreadable) {
    errors.push({ path: u.path, code: u.code, exitCode: exitCodeFor(u.code), message: u.message, during: 'discover' });
  }
  if (r.fatal) errors.push(r.fatal);
  r.errors = errors;
  const s = r.summary;
  s.unreadable = r.unreadable.length;
  s.chainsInShard = r.chains.length;
  s.chainsOk = r.chains.filter((c) => c.status === 'ok').length;
  s.chainsChanged = r.chains.filter((c) => c.changed).length;
  s.chainsSkipped = r.chains.filter((c) => c.status === 'skipped').length;
  s.chainsFailed = r.chains.filter((c) => c.status === 'failed').length;
  const actions = r.chains.flatMap((c) => c.actions);
  s.disksCompacted = actions.filter((a) => a.action === 'compact').length;
  s.layersCoalesced = actions.filter((a) => a.action === 'coalesce').length;
  s.chainsShortened = new Set(actions.filter((a) => a.action === 'coalesce').map((a) => a.disk)).size;
  s.orphansRemoved = actions.filter((a) => a.action === 'remove-orphan').length;
  s.disksRelinked = actions.filter((a) => a.action === 'relink').length;
  s.staleLocators = r.chains.reduce((n, c) => n + c.disks.filter((d) => d.staleLocators).length, 0);
  s.bytesReclaimed = r.chains.reduce((n, c) => n + c.bytesReclaimed, 0);
  s.bytesReclaimable = r.chains.reduce((n, c) => n + c.bytesReclaimable, 0);
  s.droppedBytes = addReasons(r.chains.map((c) => c.droppedBytes));
  s.disksSkipped = r.chains.reduce((n, c) => n + c.disks.filter((d) => d.skip !== null).length, 0);
  s.errors = errors.length;
  r.exitCode = exitCodeOf(r);
  r.status = r.fatal ? 'fatal' : errors.length ? 'errors' : 'healthy';
  return r;
}

/** The sum of several by-reason byte counts (missing ones count 0: reports made before the reasons existed). */
export function addReasons(list: Array<ReasonBytes | null | undefined>): ReasonBytes {
  const out = emptyReasons();
  for (const b of list) for (const k of Object.keys(out) as Array<keyof ReasonBytes>) out[k] += b?.[k] ?? 0;
  return out;
}

export function exitCodeFor(code: ErrorCode): number {
  return ErrorCodes[code];
}

function fmt(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (abs >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(2)} MiB`;
  if (abs >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** One action in words, without the disk's path: "compacted: 3.53 MiB -> 1.51 MiB, reclaimed 2.02 MiB". */
export function describeAction(a: ActionReport): string {
  const dry = a.dryRun;
  switch (a.action) {
    case 'compact': {
      const planned = a.droppedBytes ? (['freeSpace', 'pagefile', 'swapfile', 'hiberfil', 'swap'] as const).filter((k) => a.droppedBytes![k] > 0) : [];
      const why = planned.length ? ` (dropping ${planned.map((k) => `${k} ${fmt(a.droppedBytes![k])}`).join(', ')})` : '';
      return `${dry ? 'would compact' : 'compacted'}: ${fmt(a.bytesBefore ?? 0)} -> ${fmt(a.bytesAfter ?? 0)}, ${dry ? 'reclaiming' : 'reclaimed'} ${fmt(a.reclaimedBytes ?? 0)}${why}`;
    }
    case 'coalesce':
      return `${dry ? 'would shorten' : 'shortened'}: coalesced with its parent ${a.parent}; ${a.newParent ? `now over ${a.newParent}` : 'now standalone'}`;
    case 'remove-orphan':
      return `${dry ? 'would remove' : 'removed'}: a layer shortening left unused (${fmt(a.bytesBefore ?? 0)})`;
    case 'relink':
      return `${dry ? 'would relink' : 'relinked'}: its stale locators ${dry ? 'would lead' : 'now lead'} to its parent ${a.parent} (${a.method}, proof ${a.proof})`;
  }
}

/** Skips that say nothing new in the summary: the family's error already says why, or the dry run will coalesce first. */
const QUIET_SKIPS = new Set<SkipReason>(['chain-broken', 'rewritten']);

/**
 * The human summary: every disk acted on, skipped or failed on, with the
 * reason, family by family; then the unreadable files, and the totals.
 */
export function renderHuman(r: MaintainReport, verbose = false): string[] {
  const out: string[] = [];
  const s = r.summary;
  const shard = r.shard.count > 1 ? `, shard ${r.shard.index}/${r.shard.count}: ${plural(s.chainsInShard, 'chain family', 'chain families')} of ${s.chains}` : '';
  out.push(`vhdtool maintain${r.dryRun ? ' (dry run)' : ''}: ${plural(s.disksFound, 'disk file')} in ${plural(s.chains, 'chain family', 'chain families')}${shard}; discovery ${(s.discoveryMs / 1000).toFixed(2)} s`);
  for (const c of r.chains) {
    const lines: string[] = [];
    for (const a of c.actions) lines.push(`    ${a.disk}: ${describeAction(a)}`);
    for (const d of c.disks) if (d.skip && !QUIET_SKIPS.has(d.skip.reason)) lines.push(`    ${d.path}: skipped (${d.skip.reason}): ${d.skip.message}`);
    for (const e of c.errors) lines.push(`    ${e.path}: FAILED (${e.during}): ${e.message}`);
    if (c.skip) lines.push(`    skipped (${c.skip.reason}): ${c.skip.message}`);
    if (c.removedTemporaries.length) lines.push(`    removed ${plural(c.removedTemporaries.length, 'temporary file')} of a killed run: ${c.removedTemporaries.join(', ')}`);
    if (!lines.length && !verbose) continue;
    const state = c.status === 'failed' ? 'FAILED' : c.status === 'skipped' ? 'skipped' : c.changed ? (r.dryRun ? 'work to do' : 'maintained') : 'nothing to do';
    out.push(`  ${c.base.path} (${plural(c.disks.length, 'disk')}): ${state}`);
    out.push(...lines);
  }
  for (const u of r.unreadable) out.push(`  ${u.path}: UNREADABLE ${u.kind}: ${u.message}`);
  for (const w of r.warnings) out.push(`  warning: ${w}`);
  if (r.fatal) out.push(`  FATAL: ${r.fatal.path ? `${r.fatal.path}: ` : ''}${r.fatal.message}`);
  const bytes = r.dryRun ? `would reclaim ${fmt(s.bytesReclaimable)} from ${plural(s.disksCompacted, 'disk')}` : `reclaimed ${fmt(s.bytesReclaimed)} from ${plural(s.disksCompacted, 'disk')}`;
  const shortened = s.layersCoalesced ? `; ${r.dryRun ? 'would shorten' : 'shortened'} ${plural(s.chainsShortened, 'chain')} by ${plural(s.layersCoalesced, 'layer')}` : '';
  const removed = s.orphansRemoved ? `; ${r.dryRun ? 'would remove' : 'removed'} ${plural(s.orphansRemoved, 'unused layer')}` : '';
  const relinked = s.disksRelinked ? `; ${r.dryRun ? 'would relink' : 'relinked'} ${plural(s.disksRelinked, 'disk')}` : '';
  const stale = s.staleLocators ? `; ${plural(s.staleLocators, 'disk')} with stale locators` : '';
  const skipped = s.chainsSkipped ? `; ${plural(s.chainsSkipped, 'chain family', 'chain families')} skipped` : '';
  out.push(`${bytes}${shortened}${removed}${relinked}${stale}${skipped}; ${plural(s.errors, 'error')}; ${(r.durationMs / 1000).toFixed(2)} s; exit ${r.exitCode}`);
  return out;
}
