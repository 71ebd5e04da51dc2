/**
 * `diff A [B]`: which files changed between two disks' guest views.
 *
 *  - `diff A B`: from A (old) to B (new); `added` are files in B only.
 *  - `diff A`: A's own parent chain (old) against A (new): which files this
 *    child changed. A must be a differencing disk.
 *
 * The work, cheapest first:
 *  1. the sectors where the two views differ (diffRanges.ts): only where a
 *     layer that the chains do not share holds data, never where both read
 *     the same file at the same offset; for `diff A`, exactly where A's leaf
 *     holds sectors;
 *  2. both views' partition tables and file-system metadata (scan(): MFT,
 *     inodes, directories, FATs; no file data), partitions whose sectors
 *     all agree skipped;
 *  3. the content of the files that may differ, and only those: touched by a
 *     differing sector (data or own metadata) or laid out on other clusters.
 *     Every other file is equal without reading its data.
 */
import { openChain } from '../chain/openChain.js';
import type { Chain } from '../chain/chain.js';
import { VhdToolError } from '../errors.js';
import { layoutOf } from './guestLayout.js';
import type { FsKind } from '../guest/volume.js';
import type { RangeSet } from '../guest/ranges.js';
import { nodeFileSystem, type FileSystem } from '../io/fsys.js';
import { assertUnchanged, resolveBase, type OpBase, type Resolved } from './common.js';
import { differingRanges, plannedBytes } from './diffRanges.js';
import { diffViews, isInterruption, whenStopped, type PartitionDiff, type PartitionLayout, type ViewSide, type ViewsOptions } from './diffViews.js';
import type { Light } from './diffIndex.js';

export interface DiffOptions extends OpBase {
  /** A's parent, overriding its locators. */
  parentA?: string;
  /** B's parent, overriding its locators. */
  parentB?: string;
}

export interface DiffFile {
  path: string;
  size: number;
}

export interface DiffModified extends DiffFile {
  /** The size on the old side. */
  oldSize: number;
}

export interface DiffRenamed {
  from: string;
  to: string;
  directory: boolean;
}

export interface DiffMetadata {
  /** A system file's path ($MFT, <journal>), a directory's, or "(file-system structures)". */
  name: string;
  kind: 'system-file' | 'directory' | 'structures';
  /** Bytes of it that differ. */
  bytes: number;
}

export interface DiffPartitionResult {
  index: number;
  fileSystem: FsKind;
  /** The old side's file system (differs from fileSystem when reformatted). */
  oldFileSystem: FsKind;
  /** How the partition table entry changed: same, resized, moved, added, deleted. */
  layout: PartitionLayout;
  start: number;
  size: number;
  differingBytes: number;
  compared: boolean;
  note: string | null;
  added: DiffFile[];
  deleted: DiffFile[];
  modified: DiffModified[];
  renamed: DiffRenamed[];
  createdDirectories: Array<{ path: string }>;
  deletedDirectories: Array<{ path: string }>;
  metadataChanged: DiffMetadata[];
  /**
   * Each side's volume state as its scan found it (clean, dirty, unclean-log, hibernated, needs-recovery;
   * null when not scanned), and why it is not clean: metadata written by a system that did not close the
   * volume may not yet describe its files.
   */
  state: { old: string | null; new: string | null; reasons: string[] };
  /** Files whose content was read (on both sides) because they might differ. */
  filesRead: number;
  bytesRead: number;
}

export interface DiffSummary {
  added: number;
  deleted: number;
  modified: number;
  renamed: number;
  createdDirectories: number;
  deletedDirectories: number;
}

export interface DiffResult {
  /** The old side: A, or with one argument A's parent. */
  old: string;
  /** The new side: B, or with one argument A. */
  new: string;
  /** `disks` (diff A B) or `parent` (diff A: A against its own parent chain). */
  mode: 'disks' | 'parent';
  virtualSize: number;
  /** Layers both chains share (their common base): never read. */
  sharedLayers: number;
  /** Bytes where the two views differ. */
  differingBytes: number;
  /** Of those, outside every partition (partition tables, boot code, gaps). */
  outsideBytes: number;
  /** Bytes read and compared to find the differing sectors. */
  bytesCompared: number;
  partitions: DiffPartitionResult[];
  summary: DiffSummary;
  durationMs: number;
}

/** Two views opened for comparison: old and new, as chains and guest layouts. */
export interface OpenedPair {
  oldPath: string;
  newPath: string;
  mode: 'disks' | 'parent';
  oldChain: Chain;
  newChain: Chain;
  /** Every file opened (checked unchanged at the end). */
  close(): Promise<void>;
}

/** `diff A`: A and its parent chain; A must have a parent. */
export async function openChildAndParent(opts: OpBase & { parent?: string }, a: string): Promise<OpenedPair> {
  const fs = resolveFs(opts);
  const chain = await openChain(fs, a, { parent: opts.parent, mode: 'strict', extraCandidates: opts.extraCandidates });
  if (chain.layersLeafFirst.length < 2) {
    await chain.close();
    throw new VhdToolError('USAGE', `is a ${chain.layersLeafFirst[0].meta.type} disk with no parent; \`diff\` with one disk compares a differencing disk with its parent: name two disks to compare`, a);
  }
  const parent: Chain = { layersLeafFirst: chain.layersLeafFirst.slice(1), close: async () => {} };
  return { oldPath: chain.layersLeafFirst[1].path, newPath: a, mode: 'parent', oldChain: parent, newChain: chain, close: () => chain.close() };
}

export async function openTwo(opts: DiffOptions, a: string, b: string): Promise<OpenedPair> {
  const fs = resolveFs(opts);
  const ca = await openChain(fs, a, { parent: opts.parentA, mode: 'strict', extraCandidates: opts.extraCandidates });
  let cb: Chain;
  try {
    cb = await openChain(fs, b, { parent: opts.parentB, mode: 'strict', extraCandidates: opts.extraCandidates });
  } catch (e) {
    await ca.close();
    throw e;
  }
  return { oldPath: a, newPath: b, mode: 'disks', oldChain: ca, newChain: cb, close: async () => { await ca.close(); await cb.close(); } };
}

function resolveFs(opts: OpBase): FileSystem {
  return opts.fs ?? nodeFileSystem;
}

export async function diff(a: string, b?: string, opts: DiffOptions = {}): Promise<DiffResult> {
  const t0 = Date.now();
  const pair = b === undefined ? await openChildAndParent({ ...opts, parent: opts.parentA }, a) : await openTwo(opts, a, b);
  const ctx = resolveBase({ ...opts, threads: threadsFor(opts, pair.oldChain, pair.newChain) }, 4096);
  try {
    return await diffPair(pair, ctx, t0);
  } catch (e) {
    throw whenStopped(e, ctx.signal);
  } finally {
    await pair.close();
    await ctx.close();
  }
}

async function diffPair(pair: OpenedPair, ctx: Resolved, t0: number): Promise<DiffResult> {
  const sizeOld = pair.oldChain.layersLeafFirst[0].meta.virtualSize;
  const sizeNew = pair.newChain.layersLeafFirst[0].meta.virtualSize;
  const found = await differingRanges(ctx.runner, pair.oldChain, pair.newChain, { signal: ctx.signal, progress: ctx.progress });
  refuseDataPastEnd(found.ranges, sizeOld, sizeNew, pair);
  const oldLayout = await layoutOf(pair.oldChain, pair.oldPath);
  const newLayout = await layoutOf(pair.newChain, pair.newPath);
  const views: ViewsOptions = { signal: ctx.signal, progress: ctx.progress, ancestor: await commonAncestor(pair, found.sharedLayers) };
  const parts = await diffViews({ path: pair.oldPath, layout: oldLayout }, { path: pair.newPath, layout: newLayout }, found.ranges, views);
  await assertUnchanged(ctx.fs, [...pair.oldChain.layersLeafFirst, ...pair.newChain.layersLeafFirst], 'the comparison is void');
  const partitions = parts.map(partitionResult);
  const outside = found.ranges.intersect(newLayout.outside.union(oldLayout.outside)).bytes;
  return {
    old: pair.oldPath, new: pair.newPath, mode: pair.mode, virtualSize: Math.max(sizeOld, sizeNew),
    sharedLayers: found.sharedLayers, differingBytes: found.ranges.bytes, outsideBytes: outside, bytesCompared: found.bytesCompared,
    partitions, summary: summarize(partitions), durationMs: Date.now() - t0,
  };
}

/**
 * Two disks that both hold layers of their own above shared ones (two
 * children of one template) diverged from the shared layers' view: their
 * common ancestor, against which file identities are checked (an NTFS record
 * number and sequence, reused alike on both sides, is not one file). Null
 * when one side is itself the shared part (it is the ancestor) or nothing is
 * shared (identities are taken as the file systems give them).
 */
async function commonAncestor(pair: OpenedPair, shared: number): Promise<ViewSide | undefined> {
  const a = pair.oldChain.layersLeafFirst;
  const b = pair.newChain.layersLeafFirst;
  if (pair.mode !== 'disks' || shared === 0 || shared === a.length || shared === b.length) return undefined;
  const tail: Chain = { layersLeafFirst: a.slice(a.length - shared), close: async () => {} };
  const p = tail.layersLeafFirst[0].path;
  try {
    return { path: p, layout: await layoutOf(tail, p) };
  } catch (e) {
    if (isInterruption(e)) throw e;
    return undefined;
  }
}

/** Below this many bytes to compare, worker threads cost more to start than they save. */
const INLINE_BYTES = 256 * 1024 * 1024;

/**
 * Worker threads for finding the differing sectors: as asked, or none when
 * there is little to compare (a child holding a few hundred MiB: the usual
 * case). Diff tasks need no data slot.
 */
export function threadsFor(opts: OpBase, a: Chain, b: Chain): number | undefined {
  if (opts.threads !== undefined || opts.runner) return opts.threads;
  return plannedBytes(a, b) < INLINE_BYTES ? 0 : undefined;
}

/** Disks of different sizes compare only when the larger reads zeros past the smaller's end (as `compare`). */
export function refuseDataPastEnd(ranges: RangeSet, sizeOld: number, sizeNew: number, pair: { oldPath: string; newPath: string }): void {
  if (sizeOld === sizeNew) return;
  const min = Math.min(sizeOld, sizeNew);
  const past = ranges.clip(min, Math.max(sizeOld, sizeNew));
  if (past.isEmpty) return;
  const [small, large] = sizeOld < sizeNew ? [pair.oldPath, pair.newPath] : [pair.newPath, pair.oldPath];
  throw new VhdToolError('REFUSED', `sizes differ (${sizeOld} and ${sizeNew} bytes) and ${large} holds data past ${small}'s end (at byte ${past.first}); the disks do not show the same disk`, large);
}

const byPath = <T extends { path: string }>(x: T, y: T) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0);

/** Renames that follow from a renamed directory (or file, for its named streams) are implied, not listed. */
function impliedRename(moves: Map<string, string>, from: string, to: string): boolean {
  for (let i = lastSep(from, from.length); i > 0; i = lastSep(from, i)) {
    const m = moves.get(from.slice(0, i));
    if (m !== undefined) return m + from.slice(i) === to;
  }
  return false;
}

/** The last '/' (or a named stream's ':' in the last segment) before position `end`, or -1. */
function lastSep(p: string, end: number): number {
  const slash = p.lastIndexOf('/', end - 1);
  const colon = p.indexOf(':', slash + 1);
  return colon >= 0 && colon < end ? colon : slash;
}

export function explicitRenames(d: PartitionDiff): Array<{ a: Light; b: Light }> {
  const all = [...d.changes.renamedDirs, ...d.changes.renamed];
  const moves = new Map(all.map((m) => [m.a.path, m.b.path]));
  return all.filter((m) => !impliedRename(moves, m.a.path, m.b.path));
}

function partitionResult(d: PartitionDiff): DiffPartitionResult {
  const c = d.changes;
  const file = (l: Light): DiffFile => ({ path: l.path, size: l.size });
  return {
    index: d.index, fileSystem: d.fileSystem, oldFileSystem: d.oldFileSystem, layout: d.layout, start: d.start, size: d.size,
    differingBytes: d.differingBytes, compared: d.compared, note: d.note,
    added: c.added.map(file).sort(byPath),
    deleted: c.deleted.map(file).sort(byPath),
    modified: c.modified.map((m) => ({ path: m.b.path, size: m.b.size, oldSize: m.a.size })).sort(byPath),
    renamed: explicitRenames(d).map((m) => ({ from: m.a.path, to: m.b.path, directory: m.b.directory }))
      .sort((x, y) => (x.from < y.from ? -1 : x.from > y.from ? 1 : 0)),
    createdDirectories: c.createdDirs.map((l) => ({ path: l.path })).sort(byPath),
    deletedDirectories: c.deletedDirs.map((l) => ({ path: l.path })).sort(byPath),
    metadataChanged: c.metadata.map((m) => ({ name: m.name, kind: m.kind, bytes: m.changed.bytes })),
    state: { old: c.stateA?.state ?? null, new: c.stateB?.state ?? null, reasons: [...new Set([...(c.stateA?.reasons ?? []), ...(c.stateB?.reasons ?? [])])] },
    filesRead: c.filesRead, bytesRead: c.bytesRead,
  };
}

function summarize(parts: DiffPartitionResult[]): DiffSummary {
  const s: DiffSummary = { added: 0, deleted: 0, modified: 0, renamed: 0, createdDirectories: 0, deletedDirectories: 0 };
  for (const p of parts) {
    s.added += p.added.length;
    s.deleted += p.deleted.length;
    s.modified += p.modified.length;
    s.renamed += p.renamed.length;
    s.createdDirectories += p.createdDirectories.length;
    s.deletedDirectories += p.deletedDirectories.length;
  }
  return s;
}
