/**
 * `relink CHILD [--parent PATH | --search DIR...]`: repair a differencing
 * disk's broken link to its parent, after proving the candidate.
 *
 *   1. lock the child (which also rolls back a relink a kill left unfinished);
 *   2. find the candidate: the path given, or by UUID under the folders
 *      (relink/find.ts);
 *   3. prove it (relink/proof.ts): every check reported, any refusal stops;
 *   4. plan the new header and locators (relink/link.ts);
 *   5. write them: in place under an undo journal (io/journal.ts) when they
 *      fit the room the file reserves, else by rewriting the whole file
 *      atomically (relink/rewrite.ts); either way the new link is checked to
 *      resolve to the candidate before it is committed.
 *
 * The child's UUID, data and file times never change; the parent is only
 * read.
 */
import * as path from 'node:path';
import { VhdToolError, fromSystemError } from '../errors.js';
import { dateToVhdTime, sparseLayout, vhdTimeToIso, type DynamicHeader, type LocatorEntry, type Uuid } from '../format/index.js';
import { locatorSlot } from '../vhd/build.js';
import type { FileStat, FileSystem } from '../io/fsys.js';
import { readAt } from '../io/fsys.js';
import { lockDisk, type DiskLock } from '../io/lock.js';
import { pidsHolding } from '../io/inUse.js';
import { applyJournaled, type Patch } from '../io/journal.js';
import { cleanStaleTemps } from '../io/atomic.js';
import { openChain } from '../chain/openChain.js';
import { parentCandidates } from '../chain/candidates.js';
import type { Chain } from '../chain/chain.js';
import { openVhd, readMeta, type Vhd, type VhdMeta } from '../vhd/image.js';
import { resolveBase, type OpBase } from './common.js';
import { describeOrphan, scanGaps } from '../check/gaps.js';
import { findParentByUuid, type SearchReport } from './relink/find.js';
import { prove, refusal, type Proof } from './relink/proof.js';
import type { ProgressSink } from '../progress.js';
import {
  desiredLocators, inPlacePatches, newLinkHeader, placeInPlace, rewriteLocators, type LinkChanges, type PlannedLocator,
} from './relink/link.js';
import { rewriteWithLink } from './relink/rewrite.js';

export interface RelinkOptions extends OpBase {
  /** The new parent. */
  parent?: string;
  /** Folders to search for the parent by UUID. */
  search?: string[];
  dryRun?: boolean;
  /** Accept a candidate whose UUID is not the one the child names (and write its UUID into the header). */
  ignoreIdMismatch?: boolean;
  /** Accept a candidate modified after the link was made (and record its time stamp). */
  force?: boolean;
  /**
   * Skip the lock and the open-by-another-process check: for callers that
   * hold the lock themselves (taking it rolled back any unfinished relink)
   * and have checked the disk is not in use (maintain).
   */
  noLock?: boolean;
}

export interface LinkView {
  parentUuid: string;
  parentTimestamp: string;
  parentUnicodeName: string;
  locators: Array<{ index: number; platform: string; path: string | null; dataOffset: number; dataLength: number; dataSpace: number }>;
}

export interface RelinkResult {
  path: string;
  parent: { path: string; uuid: string; foundBy: string };
  search: SearchReport | null;
  proof: Proof;
  before: LinkView;
  /** The link as written (or as it would be). */
  after: LinkView;
  /** Locators dropped (a Mac alias, a non-ASCII deprecated locator). */
  dropped: string[];
  method: 'in-place' | 'rewrite' | 'unchanged';
  /** Why that method. */
  methodReason: string;
  /** Bytes written in place (header and locator sectors), or the rewritten file's size. */
  bytesWritten: number;
  dryRun: boolean;
  changed: boolean;
  /** In a dry run: the refusal the real run would meet, or null. */
  refusal: { check: string; code: string; exitCode: number; message: string } | null;
  durationMs: number;
}

export async function relink(child: string, opts: RelinkOptions = {}): Promise<RelinkResult> {
  const t0 = Date.now();
  validate(child, opts);
  const ctx = resolveBase(opts);
  const fs = ctx.fs;
  let lock: DiskLock | null = null;
  let vhd: Vhd | null = null;
  let chain: Chain | VhdToolError | null = null;
  try {
    const real = await fs.realpath(child).catch((e) => { throw fromSystemError(e, child, false); });
    if (!opts.dryRun && !opts.noLock) {
      // Taking the lock also rolls back a relink a kill left half done (io/lock.ts).
      lock = await lockDisk(fs, real);
    }
    if (!opts.dryRun) await cleanStaleTemps(fs, real);
    vhd = await openVhd(fs, child, { mode: 'strict' });
    const childStat = await preflight(fs, child, real, vhd.meta, (opts.dryRun ?? false) || (opts.noLock ?? false));
    const cand = await findCandidate(fs, child, real, vhd.meta, childStat, opts, ctx.signal);
    chain = await openCandidateChain(fs, cand.path, opts.extraCandidates);
    if (ctx.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
    const proof = await prove({
      fs, runner: ctx.runner, progress: ctx.progress, signal: ctx.signal,
      child: { path: child, meta: vhd.meta, stat: childStat }, childVhd: vhd,
      candidate: { path: cand.path, meta: cand.meta, stat: cand.stat },
      chain, force: opts.force ?? false, ignoreIdMismatch: opts.ignoreIdMismatch ?? false,
    });
    const plan = await planLink(vhd, real, childStat, cand, proof, opts);
    const no = refusal(proof);
    const result: RelinkResult = {
      path: child,
      parent: { path: cand.path, uuid: cand.meta.footer.uniqueId, foundBy: cand.foundBy },
      search: cand.search, proof,
      before: viewOf(vhd.meta.header!, vhd.meta.header!.locators.map((e, i) => ({ e, text: locatorText(vhd!.meta, i) }))),
      after: plan.after,
      dropped: plan.dropped,
      method: plan.method,
      methodReason: plan.reason,
      bytesWritten: 0,
      dryRun: opts.dryRun ?? false,
      changed: false,
      refusal: no && { check: no.name, code: no.code!, exitCode: new VhdToolError(no.code!, '').exitCode, message: refusalMessage(no.name, no.evidence, no.override) },
      durationMs: 0,
    };
    if (no && !opts.dryRun) throw new VhdToolError(no.code!, result.refusal!.message, child, { proof, parent: result.parent });
    if (!opts.dryRun && plan.method !== 'unchanged') {
      if (ctx.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      // A parent is never written: the disk written is none of the candidate's chain.
      const layers = 'layersLeafFirst' in chain ? chain.layersLeafFirst : [];
      if (layers.some((l) => l.dev === childStat.dev && l.ino === childStat.ino)) {
        throw new VhdToolError('INTERNAL', 'internal error: the disk to write is in the parent chain', child);
      }
      result.bytesWritten = await writeLink(fs, child, real, vhd, childStat, cand, plan, ctx);
      result.changed = true;
    }
    result.durationMs = Date.now() - t0;
    return result;
  } finally {
    if (chain && 'layersLeafFirst' in chain) await chain.close();
    if (vhd) await vhd.close();
    if (lock) await lock.release();
    await ctx.close();
  }
}

/** The child must be a differencing disk, not in saved state, and (unless `skipInUse`) not open elsewhere. */
async function preflight(fs: FileSystem, child: string, real: string, m: VhdMeta, skipInUse: boolean): Promise<FileStat> {
  if (m.type !== 'differencing') throw new VhdToolError('REFUSED', `not a differencing disk (${m.type}): it has no parent to link`, child);
  if (m.footer.savedState !== 0) {
    throw new VhdToolError('SAVED_STATE', 'disk is in saved state (a virtual machine was saved with it attached); resume and shut down the VM first', child);
  }
  const st = await fs.stat(real);
  if (!skipInUse) {
    const holders = await pidsHolding(st.dev, st.ino);
    if (holders.length) throw new VhdToolError('LOCKED', `disk is open in another process (pid ${holders.join(', ')}); shut the VM down first`, child);
  }
  return st;
}

interface Candidate {
  /** As given or found. */
  path: string;
  realPath: string;
  stat: FileStat;
  meta: VhdMeta;
  foundBy: string;
  search: SearchReport | null;
}

async function findCandidate(fs: FileSystem, child: string, real: string, m: VhdMeta, childStat: FileStat, opts: RelinkOptions, signal?: AbortSignal): Promise<Candidate> {
  let search: SearchReport | null = null;
  let p: string;
  let foundBy: string;
  if (opts.parent !== undefined) {
    p = path.resolve(opts.parent);
    foundBy = '--parent';
  } else {
    search = await findParentByUuid(fs, opts.search!, { path: child, realPath: real, dev: childStat.dev, ino: childStat.ino, meta: m }, signal);
    p = search.chosen;
    foundBy = `--search: ${search.how}`;
  }
  const realPath = await fs.realpath(p).catch((e) => { throw fromSystemError(e, p, false); });
  const stat = await fs.stat(realPath);
  if (stat.dev === childStat.dev && stat.ino === childStat.ino) throw new VhdToolError('REFUSED', 'the candidate parent is the child itself', child);
  const v = await openVhd(fs, p, { mode: 'strict' });
  await v.close();
  return { path: p, realPath, stat, meta: v.meta, foundBy, search };
}

/**
 * The candidate's own chain, or why it does not open (the parent-chain check
 * reports it). `extra`: maintain's UUID index, for a candidate whose own
 * locators are stale too (its relink comes first in a real run).
 */
async function openCandidateChain(fs: FileSystem, p: string, extra?: (uuid: Uuid) => string[]): Promise<Chain | VhdToolError> {
  try {
    return await openChain(fs, p, { mode: 'strict', extraCandidates: extra });
  } catch (e) {
    if (!(e instanceof VhdToolError) || e.code === 'INTERNAL' || e.code === 'INTERRUPTED') throw e;
    return e;
  }
}

interface LinkPlan {
  header: DynamicHeader;
  wanted: PlannedLocator[];
  dropped: string[];
  /** The in-place writes (null on the rewrite path). */
  patches: Patch[] | null;
  method: RelinkResult['method'];
  reason: string;
  after: LinkView;
}

/** The new header and locators, and how they will be written. */
async function planLink(vhd: Vhd, real: string, st: FileStat, cand: Candidate, proof: Proof, opts: RelinkOptions): Promise<LinkPlan> {
  const m = vhd.meta;
  const changes: LinkChanges = {
    childPath: real,
    parentPath: cand.realPath,
    parentUuid: opts.ignoreIdMismatch ? cand.meta.footer.uniqueId : null,
    parentTimestamp: proof.checks.some((c) => c.name === 'parent-time' && c.overridden) ? dateToVhdTime(new Date(cand.stat.mtimeMs)) : null,
  };
  const { locators: wanted, dropped } = desiredLocators(m, changes);
  const place = placeInPlace(m, wanted);
  if (!('entries' in place) || st.nlink > 1) {
    const header = newLinkHeader(m, changes, m.header!.locators);
    const reason = !('entries' in place) ? `${place.reason}: the file is rewritten`
      : `the file has ${st.nlink} hard links, which an in-place write would change together: this name is rewritten`;
    return { header, wanted, dropped, patches: null, method: 'rewrite', reason, after: plannedView(header, wanted) };
  }
  const header = newLinkHeader(m, changes, place.entries);
  const patches = await inPlacePatches(m, header, place, (o, n) => readAt(vhd.file, o, n));
  const after = viewOf(header, header.locators.map((e) => ({ e, text: wanted.find((w) => w.platform === e.platform)?.text ?? null })));
  if (patches.length === 0) return { header, wanted, dropped, patches, method: 'unchanged', reason: 'the child already holds exactly this link', after };
  return {
    header, wanted, dropped, patches, method: 'in-place', after,
    reason: 'the new locators fit the space the file reserves: header and locator sectors are rewritten in place',
  };
}

/** Writes the planned link; returns the bytes written in place, or the rewritten file's size. */
async function writeLink(fs: FileSystem, child: string, real: string, vhd: Vhd, st: FileStat, cand: Candidate, plan: LinkPlan,
  ctx: { progress: ProgressSink; signal?: AbortSignal }): Promise<number> {
  const expectParent = { dev: cand.stat.dev, ino: cand.stat.ino, uuid: plan.header.parentUniqueId! };
  const times = { atimeMs: st.atimeMs ?? st.mtimeMs, mtimeMs: st.mtimeMs };
  if (plan.patches) {
    await applyJournaled(fs, {
      disk: real, patches: plan.patches, expect: { dev: st.dev, ino: st.ino, size: vhd.meta.fileSize }, times,
      beforeCommit: () => verifyRawLink(fs, real, child, expectParent),
    });
    return plan.patches.reduce((n, p) => n + p.new.length, 0);
  }
  const gaps = await scanGaps(vhd);
  if (gaps.orphans.length) {
    throw new VhdToolError('BAD_FORMAT', `${describeOrphan(gaps.orphans[0])}; its locators do not fit in place, and rewriting it would lose that data: see \`vhdtool check\``, child);
  }
  return rewriteWithLink(fs, real, vhd, plan.header, rewriteLocators(plan.wanted), {
    mode: st.mode & 0o7777, times, progress: ctx.progress, signal: ctx.signal,
    verify: (temp) => verifyRawLink(fs, temp, temp, expectParent),
    beforePublish: () => assertSame(fs, real, st),
  });
}

function validate(child: string, o: RelinkOptions): void {
  const usage = (msg: string) => new VhdToolError('USAGE', msg, child);
  if (o.parent === undefined && (!o.search || o.search.length === 0)) throw usage('give the new parent with --parent PATH, or folders to find it in with --search DIR');
  if (o.parent !== undefined && o.search && o.search.length) throw usage('--parent and --search exclude each other');
  if (o.ignoreIdMismatch && o.parent === undefined) throw usage('--ignore-id-mismatch needs --parent (--search finds the parent by its UUID)');
}

function refusalMessage(check: string, evidence: string, override: string | null): string {
  return `relink refused by the ${check} check: ${evidence}${override ? ` (${override} accepts this)` : ''}`;
}

function locatorText(m: VhdMeta, index: number): string | null {
  const l = m.locators.find((x) => x.index === index);
  return l && l.value.ok ? l.value.path : null;
}

function viewOf(h: DynamicHeader, entries: Array<{ e: LocatorEntry; text: string | null }>): LinkView {
  return {
    parentUuid: h.parentUniqueId ?? '',
    parentTimestamp: vhdTimeToIso(h.parentTimestamp),
    parentUnicodeName: h.parentUnicodeName,
    locators: entries.flatMap(({ e, text }, index) => e.platform === null ? [] : [{
      index, platform: String(e.platform), path: text, dataOffset: e.dataOffset, dataLength: e.dataLength, dataSpace: e.dataSpace,
    }]),
  };
}

/** A rewritten file's link: offsets are the writer's (Hyper-V's layout). */
function plannedView(h: DynamicHeader, wanted: PlannedLocator[]): LinkView {
  const data = rewriteLocators(wanted);
  const spaces = data.map((d) => locatorSlot(d));
  const layout = sparseLayout({ maxTableEntries: h.maxTableEntries, blockSize: h.blockSize, locatorSpaces: spaces, align: 4096, hyperV: true });
  return {
    ...viewOf(h, []),
    locators: wanted.map((w, index) => ({
      index, platform: w.platform, path: w.text, dataOffset: layout.locatorOffsets[index], dataLength: w.data.length, dataSpace: spaces[index],
    })),
  };
}

/**
 * The link as written resolves to the candidate: the file's own bytes (not
 * a reader's view through the journal) are decoded strictly, and the first
 * locator candidate that is a disk with the parent's UUID, in the order
 * openChain tries them, must be the candidate itself.
 */
async function verifyRawLink(fs: FileSystem, file: string, childPath: string, want: { dev: number; ino: number; uuid: Uuid }): Promise<void> {
  const raw = await fs.openRead(file);
  let meta: VhdMeta;
  try {
    meta = await readMeta(raw, file, 'strict');
  } finally {
    await raw.close();
  }
  const h = meta.header!;
  if (h.parentUniqueId !== want.uuid) throw new VhdToolError('VERIFY_FAILED', 'the new header does not name the parent\'s UUID; nothing was changed', childPath);
  for (const c of parentCandidates(file, meta.locators, h.parentUnicodeName)) {
    let st: FileStat;
    try {
      st = await fs.stat(c.path);
    } catch {
      continue;
    }
    if (!st.isFile) continue;
    if (st.dev === want.dev && st.ino === want.ino) return;
    const other = await openVhd(fs, c.path, { mode: 'strict' }).catch(() => null);
    if (!other) continue;
    const uuid = other.meta.footer.uniqueId;
    await other.close();
    if (uuid === want.uuid) {
      throw new VhdToolError('VERIFY_FAILED', `the new locators would lead to ${c.path} (${c.source}) before the chosen parent; nothing was changed`, childPath);
    }
  }
  throw new VhdToolError('VERIFY_FAILED', 'the new locators do not lead to the chosen parent; nothing was changed', childPath);
}

async function assertSame(fs: FileSystem, p: string, before: FileStat): Promise<void> {
  const now = await fs.stat(p).catch(() => null);
  if (!now || now.ino !== before.ino || now.dev !== before.dev || now.size !== before.size || now.mtimeMs !== before.mtimeMs) {
    throw new VhdToolError('VERIFY_FAILED', 'the disk changed while relink ran (another process wrote to it); nothing was replaced', p);
  }
}
