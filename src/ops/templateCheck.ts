/**
 * `rebase CHILD --onto NEWTEMPLATE --check`: can a template update flow into
 * a user's disk? CHILD sits on OLD (its parent); the update is OLD ->
 * NEWTEMPLATE, the user's changes OLD -> CHILD. Nothing is written.
 *
 * It reports:
 *  - the files the update changed and the files the user changed (diff's
 *    engine, twice, sharing the old side);
 *  - conflicts: files both changed, and files one side changed inside a
 *    directory the other deleted (templateConflicts.ts);
 *  - the file-system metadata both sides changed (on NTFS nearly always
 *    $MFT, $Bitmap, $LogFile), and the sectors both changed with the files
 *    that own them: what a naive relink (vhd-util modify -p, Set-VHD
 *    -ParentPath) would tear. A naive relink shows the child's sectors over
 *    the new template's: it is safe only when the two sides changed no
 *    common sector and not both changed metadata;
 *  - the verdict: `vhdtool rebase` is always safe (it keeps the user's view
 *    byte for byte; the update does not flow into it).
 *
 * Over a folder of children (`templateCheckRoots`), the update is compared
 * once and every child of OLD found under the roots (discovered as maintain
 * discovers disks) is checked against it.
 */
import { fromSystemError, VhdToolError } from '../errors.js';
import type { Uuid } from '../format/index.js';
import type { Chain } from '../chain/chain.js';
import { openChain } from '../chain/openChain.js';
import type { GuestLayout } from '../guest/layout.js';
import { RangeSet } from '../guest/ranges.js';
import type { Volume } from '../guest/volume.js';
import { discover } from '../maintain/discovery.js';
import { buildForest, type Node } from '../maintain/forest.js';
import { assertUnchanged, refuseSavedState, resolveBase, type OpBase, type Resolved } from './common.js';
import { threadsFor } from './diff.js';
import { layoutOf } from './guestLayout.js';
import { nodeFileSystem } from '../io/fsys.js';
import { hashContent, ownersOf, type Light } from './diffIndex.js';
import { differingRanges } from './diffRanges.js';
import { asInterruption, diffViews, isInterruption, whenStopped, type PartitionDiff } from './diffViews.js';
import { refuseCycle } from './rebase.js';
import { changeList, findConflicts, metadataConflicts, type ChangeEntry, type Conflict, type MetadataConflict } from './templateConflicts.js';

export interface TemplateCheckOptions extends OpBase {
  /** CHILD's parent (OLD), overriding its locators. */
  parent?: string;
}

export interface NaiveRelink {
  safe: boolean;
  /** Why it would corrupt the disk, one sentence each (empty when safe). */
  reasons: string[];
  /** Bytes both sides changed, and where (byte ranges [start, end) on the disk, sector granular). */
  commonBytes: number;
  commonRanges: Array<[number, number]>;
  /** Files owning those bytes on any side (OLD, NEWTEMPLATE, CHILD). */
  tornFiles: Array<{ partition: number; path: string }>;
}

export interface UserCheck {
  child: string;
  old: string;
  newTemplate: string;
  userChanged: ChangeEntry[];
  conflicts: Conflict[];
  /** Files both sides changed the same way (both deleted, or the same path and content): not conflicts. */
  sameChanges: string[];
  metadataConflicts: MetadataConflict[];
  naiveRelinkSafe: boolean;
  verdict: 'safe-to-rebase';
  naiveRelink: NaiveRelink;
  /** Partitions both sides changed that could not be compared file by file (BitLocker, unrecognised...). */
  notCompared: Array<{ partition: number; note: string }>;
  differingBytes: { update: number; user: number; common: number };
}

export interface TemplateCheckResult extends UserCheck {
  updateChanged: ChangeEntry[];
  durationMs: number;
}

export type UserEntry = ({ path: string; ok: true } & UserCheck) | { path: string; ok: false; error: { code: string; exitCode: number; message: string } };

export interface TemplateRootsResult {
  old: string;
  newTemplate: string;
  roots: string[];
  updateChanged: ChangeEntry[];
  users: UserEntry[];
  summary: { users: number; withConflicts: number; naiveRelinkUnsafe: number; errors: number };
  durationMs: number;
}

/** The update side, compared once: OLD -> NEWTEMPLATE. */
interface Update {
  oldPath: string;
  newPath: string;
  oldLayout: GuestLayout;
  newLayout: GuestLayout;
  ranges: RangeSet;
  parts: PartitionDiff[];
  changed: ChangeEntry[];
}

/** Exit status of a check: 1 when some file conflicts (or a partition both changed could not be compared), else 0. */
export function checkExitCode(r: UserCheck): number {
  return r.conflicts.length || r.notCompared.length ? 1 : 0;
}

export async function templateCheck(child: string, newTemplate: string, opts: TemplateCheckOptions = {}): Promise<TemplateCheckResult> {
  const t0 = Date.now();
  const fs = opts.fs ?? nodeFileSystem;
  const chain = await openChain(fs, child, { parent: opts.parent, mode: 'strict', extraCandidates: opts.extraCandidates });
  let np: Chain | null = null;
  let ctx: Resolved | null = null;
  try {
    if (chain.layersLeafFirst.length < 2) {
      throw new VhdToolError('USAGE', `is a ${chain.layersLeafFirst[0].meta.type} disk with no parent: there is no old template to compare the update with`, child);
    }
    np = await openChain(fs, newTemplate, { mode: 'strict' });
    preflight(chain, np, child, newTemplate);
    const old: Chain = { layersLeafFirst: chain.layersLeafFirst.slice(1), close: async () => {} };
    // Threads only when there is much to compare (the update, or the child, holds GiBs).
    const threads = threadsFor(opts, old, np) === 0 && threadsFor(opts, old, chain) === 0 ? 0 : opts.threads;
    ctx = resolveBase({ ...opts, fs, threads }, 4096);
    const upd = await compareUpdate(ctx, old, np, chain.layersLeafFirst[1].path, newTemplate, child);
    const r = await checkUser(ctx, upd, chain, child);
    await assertUnchanged(ctx.fs, [...chain.layersLeafFirst, ...np.layersLeafFirst], 'the check is void');
    return { ...r, updateChanged: upd.changed, durationMs: Date.now() - t0 };
  } catch (e) {
    throw whenStopped(e, opts.signal);
  } finally {
    await chain.close();
    if (np) await np.close();
    if (ctx) await ctx.close();
  }
}

/** rebase's own refusals (saved state, a cycle, a smaller new template), so that the check says what rebase would. */
function preflight(chain: Chain, np: Chain, child: string, newTemplate: string): void {
  const leaf = chain.layersLeafFirst[0];
  const npLeaf = np.layersLeafFirst[0];
  refuseSavedState(leaf);
  refuseSavedState(npLeaf);
  refuseCycle(leaf, np, newTemplate);
  if (npLeaf.meta.virtualSize < leaf.meta.virtualSize) {
    throw new VhdToolError('REFUSED', `new template is smaller than ${child} (${npLeaf.meta.virtualSize} < ${leaf.meta.virtualSize} bytes); ${child}'s view cannot sit on it`, newTemplate);
  }
}

async function compareUpdate(ctx: Resolved, old: Chain, np: Chain, oldPath: string, newPath: string, child: string): Promise<Update> {
  const found = await differingRanges(ctx.runner, old, np, { signal: ctx.signal, progress: ctx.progress, label: 'finding what the update changed' });
  const size = old.layersLeafFirst[0].meta.virtualSize;
  const past = found.ranges.clip(size, Infinity);
  if (!past.isEmpty) {
    throw new VhdToolError('REFUSED', `new template is larger than ${child} (${np.layersLeafFirst[0].meta.virtualSize} > ${size} bytes) and holds data past its end (at byte ${past.first}); the views would differ there`, newPath);
  }
  const oldLayout = await layoutOf(old, oldPath);
  const newLayout = await layoutOf(np, newPath);
  const parts = await diffViews({ path: oldPath, layout: oldLayout }, { path: newPath, layout: newLayout }, found.ranges, { signal: ctx.signal, progress: ctx.progress });
  return { oldPath, newPath, oldLayout, newLayout, ranges: found.ranges, parts, changed: changeList(parts) };
}

/** The check of one child (its chain open, its parent OLD) against the compared update. */
async function checkUser(ctx: Resolved, upd: Update, chain: Chain, child: string): Promise<UserCheck> {
  const old: Chain = { layersLeafFirst: chain.layersLeafFirst.slice(1), close: async () => {} };
  const found = await differingRanges(ctx.runner, old, chain, { signal: ctx.signal, progress: ctx.progress, label: `finding what ${child} changed` });
  const common = upd.ranges.intersect(found.ranges);
  const childLayout = await layoutOf(chain, child);
  const usr = await diffViews({ path: upd.oldPath, layout: upd.oldLayout }, { path: child, layout: childLayout }, found.ranges,
    { signal: ctx.signal, progress: ctx.progress, torn: common });
  const same = sameContent(upd.parts, usr, ctx.signal);
  const { conflicts, sameChanges } = await findConflicts(upd.parts, usr, same);
  const meta = metadataConflicts(upd.parts, usr);
  const outside = upd.oldLayout.outside;
  const disk = { update: upd.ranges.intersect(outside.union(upd.newLayout.outside)), user: found.ranges.intersect(outside.union(childLayout.outside)) };
  if (!disk.update.isEmpty && !disk.user.isEmpty) {
    meta.unshift({ partition: null, name: '(partition tables and boot code)', kind: 'disk', updateBytes: disk.update.bytes, userBytes: disk.user.bytes, commonBytes: disk.update.intersectBytes(disk.user) });
  }
  const naive = await naiveRelink(ctx, upd, usr, common, meta);
  return {
    child, old: upd.oldPath, newTemplate: upd.newPath,
    userChanged: changeList(usr), conflicts, sameChanges, metadataConflicts: meta,
    naiveRelinkSafe: naive.safe, verdict: 'safe-to-rebase', naiveRelink: naive,
    notCompared: notCompared(upd.parts, usr),
    differingBytes: { update: upd.ranges.bytes, user: found.ranges.bytes, common: common.bytes },
  };
}

/** Reads a file on the new template and on the child and says whether both hold the same bytes. */
function sameContent(upd: PartitionDiff[], usr: PartitionDiff[], signal?: AbortSignal) {
  const vols = new Map<number, [Volume | null, Volume | null]>();
  for (const d of upd) vols.set(d.index, [d.volB, null]);
  for (const d of usr) vols.set(d.index, [vols.get(d.index)?.[0] ?? null, d.volB]);
  return async (partition: number, a: Light, b: Light): Promise<boolean> => {
    const [va, vb] = vols.get(partition) ?? [null, null];
    if (!va || !vb) return false;
    const [ha, hb] = await Promise.all([hashContent(va, a, signal), hashContent(vb, b, signal)]);
    return ha === hb;
  };
}

function notCompared(upd: PartitionDiff[], usr: PartitionDiff[]): Array<{ partition: number; note: string }> {
  const u = new Map(upd.filter((d) => !d.compared && d.differingBytes > 0).map((d) => [d.index, d]));
  return usr.filter((d) => !d.compared && d.differingBytes > 0 && u.has(d.index)).map((d) => ({ partition: d.index, note: d.note ?? 'not compared' }));
}

/** Whether showing the child's sectors over the new template would tear the file system, and where. */
async function naiveRelink(ctx: Resolved, upd: Update, usr: PartitionDiff[], common: RangeSet, meta: MetadataConflict[]): Promise<NaiveRelink> {
  const reasons: string[] = [];
  if (!common.isEmpty) reasons.push(`${common.bytes} bytes were changed by both the update and the user: the user's sectors would hide the update's there`);
  const userParts = new Map(usr.map((d) => [d.index, d]));
  for (const u of upd.parts) {
    const v = userParts.get(u.index);
    if (!v || !u.changes.metadata.length || !v.changes.metadata.length) continue;
    const both = meta.filter((m) => m.partition === u.index).map((m) => m.name);
    reasons.push(`partition ${u.index} (${u.fileSystem}): both changed file-system metadata${both.length ? ` (${both.join(', ')})` : ''}; mixing the two sides' sectors leaves it inconsistent`);
  }
  const disk = meta.find((m) => m.partition === null);
  if (disk) reasons.push('both changed the disk\'s own structures outside every partition (partition tables, boot code)');
  const torn = new Map<string, { partition: number; path: string }>();
  for (const d of usr) for (const p of d.changes.torn) torn.set(`${d.index}\0${p}`, { partition: d.index, path: p });
  // The new template's owners of the common sectors (the user's diff saw OLD's and CHILD's).
  for (const d of upd.parts) {
    if (!d.volB || common.isEmpty) continue;
    const part = upd.newLayout.partitions.find((p) => p.partition.index === d.index)!.partition;
    const local = common.clip(part.start, part.start + part.size).shift(-part.start);
    if (local.isEmpty) continue;
    for (const p of await ownersOf(d.volB, local, ctx.signal)) torn.set(`${d.index}\0${p}`, { partition: d.index, path: p });
  }
  return {
    safe: reasons.length === 0, reasons, commonBytes: common.bytes, commonRanges: common.toArray(),
    tornFiles: [...torn.values()].sort((x, y) => x.partition - y.partition || (x.path < y.path ? -1 : x.path > y.path ? 1 : 0)),
  };
}

// ---- over a folder of children ------------------------------------------------------------------

export interface TemplateRootsOptions extends OpBase {
  /** OLD, the template the children sit on; inferred when the roots' children all sit on one disk outside the roots. */
  old?: string;
  exclude?: string[];
}

export async function templateCheckRoots(roots: string[], newTemplate: string, opts: TemplateRootsOptions = {}): Promise<TemplateRootsResult> {
  const t0 = Date.now();
  const ctx = resolveBase(opts, 4096);
  try {
    const found = await discover(ctx.fs, roots, { exclude: opts.exclude, signal: ctx.signal });
    const forest = buildForest([...found.disks, ...found.external], found.unreadable, found.probes);
    const nodes = forest.trees.flatMap((t) => t.nodes);
    const newStat = await statOf(ctx, newTemplate);
    const oldNode = await findOld(ctx, nodes, opts.old, newStat);
    const children = oldNode.children.filter((n) => !n.disk.external && !(n.disk.dev === newStat.dev && n.disk.ino === newStat.ino));
    const byUuid = new Map<string, string>();
    for (const n of nodes) if (!byUuid.has(n.disk.uuid)) byUuid.set(n.disk.uuid, n.disk.path);
    const extraCandidates = (u: Uuid) => (byUuid.has(u) ? [byUuid.get(u)!] : []);
    const old = await openChain(ctx.fs, oldNode.disk.path, { mode: 'strict', extraCandidates });
    let np: Chain | null = null;
    try {
      np = await openChain(ctx.fs, newTemplate, { mode: 'strict' });
      refuseSavedState(np.layersLeafFirst[0]);
      if (np.layersLeafFirst[0].meta.virtualSize < old.layersLeafFirst[0].meta.virtualSize) {
        throw new VhdToolError('REFUSED', `new template is smaller than the old template ${oldNode.disk.path} (${np.layersLeafFirst[0].meta.virtualSize} < ${old.layersLeafFirst[0].meta.virtualSize} bytes)`, newTemplate);
      }
      ctx.runner.warm();
      const upd = await compareUpdate(ctx, old, np, oldNode.disk.path, newTemplate, oldNode.disk.path);
      const users: UserEntry[] = [];
      for (const n of children) {
        if (ctx.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
        users.push(await checkOne(ctx, upd, old, np, n, extraCandidates));
      }
      await assertUnchanged(ctx.fs, [...old.layersLeafFirst, ...np.layersLeafFirst], 'the check is void');
      const ok = users.filter((u): u is Extract<UserEntry, { ok: true }> => u.ok);
      return {
        old: oldNode.disk.path, newTemplate, roots, updateChanged: upd.changed, users,
        summary: { users: users.length, withConflicts: ok.filter((u) => checkExitCode(u) === 1).length, naiveRelinkUnsafe: ok.filter((u) => !u.naiveRelinkSafe).length, errors: users.length - ok.length },
        durationMs: Date.now() - t0,
      };
    } finally {
      await old.close();
      if (np) await np.close();
    }
  } catch (e) {
    throw whenStopped(e, opts.signal);
  } finally {
    await ctx.close();
  }
}

async function statOf(ctx: Resolved, p: string): Promise<{ dev: number; ino: number }> {
  try {
    const s = await ctx.fs.stat(p);
    return { dev: s.dev, ino: s.ino };
  } catch (e) {
    throw fromSystemError(e, p, false);
  }
}

/** OLD: the disk named by --old, or the one disk outside the roots that the roots' disks sit on. */
async function findOld(ctx: Resolved, nodes: Node[], old: string | undefined, newStat: { dev: number; ino: number }): Promise<Node> {
  if (old !== undefined) {
    const s = await statOf(ctx, old);
    const n = nodes.find((x) => x.disk.dev === s.dev && x.disk.ino === s.ino);
    if (!n) throw new VhdToolError('USAGE', 'no disk under the roots sits on this old template (it is neither under the roots nor the parent of a disk there)', old);
    return n;
  }
  const parents = new Map<Node, number>();
  for (const n of nodes) {
    if (n.disk.external || !n.parent || !n.parent.disk.external) continue;
    if (n.disk.dev === newStat.dev && n.disk.ino === newStat.ino) continue;
    parents.set(n.parent, (parents.get(n.parent) ?? 0) + 1);
  }
  if (parents.size === 1) return [...parents.keys()][0];
  if (parents.size === 0) throw new VhdToolError('USAGE', 'no disk under the roots sits on a template outside them: name the old template with --old');
  const list = [...parents.keys()].map((n) => n.disk.path).sort().join(', ');
  throw new VhdToolError('USAGE', `the disks under the roots sit on ${parents.size} different templates (${list}): name the old one with --old`);
}

async function checkOne(ctx: Resolved, upd: Update, old: Chain, np: Chain, n: Node, extraCandidates: (u: Uuid) => string[]): Promise<UserEntry> {
  const p = n.disk.path;
  let chain: Chain | null = null;
  try {
    chain = await openChain(ctx.fs, p, { mode: 'strict', extraCandidates });
    const parent = chain.layersLeafFirst[1];
    const want = old.layersLeafFirst[0];
    if (!parent || parent.dev !== want.dev || parent.ino !== want.ino) {
      throw new VhdToolError('PARENT_MISMATCH', `opens on ${parent ? parent.path : 'no parent'}, not on the old template ${want.path}`, p);
    }
    preflight(chain, np, p, upd.newPath);
    const r = await checkUser(ctx, upd, chain, p);
    await assertUnchanged(ctx.fs, chain.layersLeafFirst, 'the check is void');
    return { path: p, ok: true, ...r };
  } catch (e) {
    if (ctx.signal?.aborted) throw whenStopped(e, ctx.signal);
    if (isInterruption(e)) throw asInterruption(e);
    const err = e instanceof VhdToolError ? e.withPath(p) : new VhdToolError('INTERNAL', `internal error: ${e instanceof Error ? e.message : String(e)} (please report this)`, p);
    return { path: p, ok: false, error: { code: err.code, exitCode: err.exitCode, message: err.line } };
  } finally {
    if (chain) await chain.close();
  }
}
