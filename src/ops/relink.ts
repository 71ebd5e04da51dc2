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
import { dateToVhdTime, sparseLayout, vhdTimeToIso, type LocatorEntry, type Uuid } from '../format/index.js';
import { locatorSlot } from '../vhd/build.js';
import type { FileStat, FileSystem } from '../io/fsys.js';
import { readAt } from '../io/fsys.js';
import { lockDisk, type DiskLock } from '../io/lock.js';
import { pidsHolding } from '../io/inUse.js';
import { applyJournaled } from '../io/journal.js';
import { cleanStaleTemps } from '../io/atomic.js';
import { openChain } from '../chain/openChain.js';
import { parentCandidates } from '../chain/candidates.js';
import type { Chain } from '../chain/chain.js';
import { openVhd, readMeta, type Vhd, type VhdMeta } from '../vhd/image.js';
import { resolveBase, type OpBase } from './common.js';
import { describeOrphan, scanGaps } from '../check/gaps.js';
import { findParentByUuid, type SearchReport } from './relink/find.js';
import { prove, refusal, type Proof } from './relink/proof.js';
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
  let chain: Chain | null = null;
  try {
    const real = await fs.realpath(child).catch((e) => { throw fromSystemError(e, child, false); });
    if (!opts.dryRun) {
      lock = await lockDisk(fs, real);
      await cleanStaleTemps(fs, real);
    }
    vhd = await openVhd(fs, child, { mode: 'strict' });
    const m = vhd.meta;
    if (m.type !== 'differencing') throw new VhdToolError('REFUSED', `not a differencing disk (${m.type}): it has no parent to link`, child);
    if (m.footer.savedState !== 0) {
      throw new VhdToolError('SAVED_STATE', 'disk is in saved state (a virtual machine was saved with it attached); resume and shut down the VM first', child);
    }
    const childStat = await fs.stat(real);
    if (!opts.dryRun) {
      const holders = await pidsHolding(childStat.dev, childStat.ino);
      if (holders.length) throw new VhdToolError('LOCKED', `disk is open in another process (pid ${holders.join(', ')}); shut the VM down first`, child);
    }

    // 2. The candidate.
    let search: SearchReport | null = null;
    let candidatePath: string;
    let foundBy: string;
    if (opts.parent !== undefined) {
      candidatePath = path.resolve(opts.parent);
      foundBy = '--parent';
    } else {
      search = await findParentByUuid(fs, opts.search!, { path: child, realPath: real, dev: childStat.dev, ino: childStat.ino, meta: m }, ctx.signal);
      candidatePath = search.chosen;
      foundBy = `--search: ${search.how}`;
    }
    const candReal = await fs.realpath(candidatePath).catch((e) => { throw fromSystemError(e, candidatePath, false); });
    const candStat = await fs.stat(candReal);
    if (candStat.dev === childStat.dev && candStat.ino === childStat.ino) throw new VhdToolError('REFUSED', 'the candidate parent is the child itself', child);
    const cand = await openVhd(fs, candidatePath, { mode: 'strict' });
    const candMeta = cand.meta;
    await cand.close();
    let chainOrError: Chain | VhdToolError;
    try {
      chain = await openChain(fs, candidatePath, { mode: 'strict' });
      chainOrError = chain;
    } catch (e) {
      if (!(e instanceof VhdToolError) || e.code === 'INTERNAL') throw e;
      chainOrError = e;
    }

    // 3. The proof.
    if (ctx.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
    const proof = await prove({
      fs, runner: ctx.runner, progress: ctx.progress, signal: ctx.signal,
      child: { path: child, meta: m, stat: childStat },
      candidate: { path: candidatePath, meta: candMeta, stat: candStat },
      chain: chainOrError, force: opts.force ?? false, ignoreIdMismatch: opts.ignoreIdMismatch ?? false,
    });
    const no = refusal(proof);

    // 4. The plan.
    const changes: LinkChanges = {
      childPath: real,
      parentPath: candReal,
      parentUuid: opts.ignoreIdMismatch ? candMeta.footer.uniqueId : null,
      parentTimestamp: proof.checks.some((c) => c.name === 'parent-time' && c.overridden) ? dateToVhdTime(new Date(candStat.mtimeMs)) : null,
    };
    const { locators: wanted, dropped } = desiredLocators(m, changes);
    const place = placeInPlace(m, wanted);
    const inPlace = 'entries' in place && childStat.nlink === 1;
    const methodWhy = !('entries' in place) ? `${place.reason}: the file is rewritten` :
      childStat.nlink > 1 ? `the file has ${childStat.nlink} hard links, which an in-place write would change together: this name is rewritten` :
        'the new locators fit the space the file reserves: header and locator sectors are rewritten in place';
    const header = newLinkHeader(m, changes, 'entries' in place ? place.entries : m.header!.locators);
    const patches = 'entries' in place ? await inPlacePatches(m, header, place, (o, n) => readAt(vhd!.file, o, n)) : null;
    const unchanged = inPlace && patches!.length === 0;
    const result: RelinkResult = {
      path: child,
      parent: { path: candidatePath, uuid: candMeta.footer.uniqueId, foundBy },
      search, proof,
      before: viewOf(m, m.header!.locators.map((e, i) => ({ e, text: locatorText(m, i) }))),
      after: inPlace
        ? viewOf({ ...m, header }, header.locators.map((e) => ({ e, text: wanted.find((w) => w.platform === e.platform)?.text ?? null })))
        : plannedView(header, wanted),
      dropped,
      method: unchanged ? 'unchanged' : inPlace ? 'in-place' : 'rewrite',
      methodReason: unchanged ? 'the child already holds exactly this link' : methodWhy,
      bytesWritten: 0,
      dryRun: opts.dryRun ?? false,
      changed: false,
      refusal: no && { check: no.name, code: no.code!, exitCode: new VhdToolError(no.code!, '').exitCode, message: refusalMessage(no.name, no.evidence, no.override) },
      durationMs: 0,
    };
    if (no && !opts.dryRun) {
      throw new VhdToolError(no.code!, result.refusal!.message, child, { proof, parent: result.parent });
    }
    if (opts.dryRun || unchanged) return { ...result, durationMs: Date.now() - t0 };

    // 5. The write.
    if (ctx.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
    const layers = chain!.layersLeafFirst;
    if (layers.some((l) => l.dev === childStat.dev && l.ino === childStat.ino)) {
      throw new VhdToolError('INTERNAL', 'internal error: the disk to write is in the parent chain', child);
    }
    const expectParent = { dev: candStat.dev, ino: candStat.ino, uuid: header.parentUniqueId! };
    const times = { atimeMs: childStat.atimeMs ?? childStat.mtimeMs, mtimeMs: childStat.mtimeMs };
    if (inPlace) {
      await applyJournaled(fs, {
        disk: real, patches: patches!, expect: { dev: childStat.dev, ino: childStat.ino, size: m.fileSize }, times,
        beforeCommit: () => verifyRawLink(fs, real, child, expectParent),
      });
      result.bytesWritten = patches!.reduce((n, p) => n + p.new.length, 0);
    } else {
      const gaps = await scanGaps(vhd);
      if (gaps.orphans.length) {
        throw new VhdToolError('BAD_FORMAT', `${describeOrphan(gaps.orphans[0])}; its locators do not fit in place, and rewriting it would lose that data: see \`vhdtool check\``, child);
      }
      result.bytesWritten = await rewriteWithLink(fs, real, vhd, header, rewriteLocators(wanted), {
        mode: childStat.mode & 0o7777, times, progress: ctx.progress, signal: ctx.signal,
        verify: (temp) => verifyRawLink(fs, temp, temp, expectParent),
        beforePublish: () => assertSame(fs, real, childStat),
      });
    }
    result.changed = true;
    result.durationMs = Date.now() - t0;
    return result;
  } finally {
    if (chain) await chain.close();
    if (vhd) await vhd.close();
    if (lock) await lock.release();
    await ctx.close();
  }
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

function viewOf(m: Pick<VhdMeta, 'header'>, entries: Array<{ e: LocatorEntry; text: string | null }>): LinkView {
  const h = m.header!;
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
function plannedView(h: ReturnType<typeof newLinkHeader>, wanted: PlannedLocator[]): LinkView {
  const data = rewriteLocators(wanted);
  const spaces = data.map((d) => locatorSlot(d));
  const layout = sparseLayout({ maxTableEntries: h.maxTableEntries, blockSize: h.blockSize, locatorSpaces: spaces, align: 4096, hyperV: true });
  return {
    ...viewOf({ header: h }, []),
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
