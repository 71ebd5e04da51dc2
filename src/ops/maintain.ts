/**
 * `maintain ROOT...`: the nightly job over a storage tree.
 *
 *   1. Discovery: every .vhd / .avhd under the roots, metadata only, 16 files
 *      at a time; the forest of chain families by UUID (src/maintain/forest).
 *      Unreadable files and families whose parent is missing, mismatched,
 *      broken or ambiguous are reported and left alone.
 *   2. The families of this shard (sha256 of the base's UUID mod N) are worked
 *      on, `concurrency` disks at a time, all through ONE task runner split
 *      into lanes. For each family:
 *        a. lock every disk of the family (sorted by path, so of two runs the
 *           first to lock the first disk wins and the other skips the family
 *           as "locked"), then re-read every header: a family another run
 *           changed meanwhile is skipped (the next run sees it fresh);
 *        a'. stale locators (a parent found by UUID, not where the child's
 *           locators point): reported; with --relink rewritten by relink,
 *           after its proof (maintain/relinkStale.ts), parents first. A child
 *           whose relink is refused is not written for the rest of the run;
 *        b. --max-depth N: every childless disk with more than N differencing
 *           layers is coalesced with its parent in place (same path, same
 *           UUID; the parent is never written), until none is left; a layer
 *           that only served those chains is deleted with --remove-orphans
 *           (and only if no disk under the roots names it as parent),
 *           otherwise it is itself a childless disk and is shortened too, so
 *           the next run has nothing left to do;
 *        c. compaction, children before parents: the dry-run figure
 *           (reclaimableBytes, exact) decides; a disk is compacted when it is
 *           at least --min-reclaim (and above 0). A bound from the file size
 *           alone skips the dry run of small disks.
 *      A disk in saved state, open in another process, or outside the roots
 *      is never written. Nothing is written in a dry run, and no lock taken.
 *   3. The report (JSON / human), --report and --metrics (written atomically),
 *      and the exit status: 0 healthy, 1 some family failed or was skipped for
 *      an error, otherwise the fatal error's own code.
 */
import * as path from 'node:path';
import { VhdToolError, fromSystemError } from '../errors.js';
import type { Uuid } from '../format/index.js';
import { nodeFileSystem, type FileSystem } from '../io/fsys.js';
import { lockDisk, type DiskLock } from '../io/lock.js';
import { openFilesByOthers } from '../io/inUse.js';
import { cleanStaleTemps, writeAtomically } from '../io/atomic.js';
import { openChain } from '../chain/openChain.js';
import { defaultThreads, type TaskRunner } from '../parallel/pool.js';
import { noopProgress, type ProgressSink } from '../progress.js';
import { compact, type CompactResult } from './compact.js';
import { emptyReasons, type ReasonBytes } from './dropReport.js';
import type { DropKind } from '../plan/dropPlan.js';
import { coalesceInPlace } from './merge.js';
import { discover, mapLimit, readDisk, walkRoots, DEFAULT_OPEN_CONCURRENCY } from '../maintain/discovery.js';
import { ancestorsOf, buildForest, depthOf, detach, heightOf, leavesOf, relinkToGrandparent, type Node, type Tree } from '../maintain/forest.js';
import { createLanes, type Lanes } from '../maintain/lanes.js';
import { inShard, NO_SHARD, type Shard } from '../maintain/shard.js';
import { addReasons, exitCodeFor, finalize, REPORT_VERSION, type DiskFreeSpace, type ActionReport, type ChainReport, type DiskReport, type ErrorEntry, type MaintainReport, type Skip } from '../maintain/report.js';
import { renderMetrics } from '../maintain/metrics.js';
import type { DiskInfo } from '../maintain/types.js';
import { refuseOutputsOverDisks, refuseOutputsThatAreInputs, type SideOutput } from '../maintain/outputs.js';
import { describeAction } from '../maintain/report.js';
import { relinkStale, staleWarnings, type StaleHost } from '../maintain/relinkStale.js';

import { DEFAULT_CONCURRENCY, DEFAULT_MIN_RECLAIM } from '../maintain/defaults.js';
import { MAX_MIN_RECLAIM } from '../maintain/limits.js';

export { DEFAULT_CONCURRENCY, DEFAULT_MIN_RECLAIM };
/** The scan of files open in other processes is reused for this long. */
const IN_USE_MAX_AGE_MS = 5000;

export interface MaintainOptions {
  fs?: FileSystem;
  dryRun?: boolean;
  /** Compact a disk when its dry-run figure is at least this (and above 0). Default 64 MiB. */
  minReclaim?: number;
  /** Shorten chains with more than this many differencing layers above their base. Default: no shortening. */
  maxDepth?: number | null;
  /** Delete intermediate layers that shortening left unused. */
  removeOrphans?: boolean;
  /** Rewrite the locators of children whose parent was found only by UUID (after relink's proof). */
  relink?: boolean;
  exclude?: string[];
  shard?: Shard;
  /** Worker threads of the one runner (0 = inline). */
  threads?: number;
  /** Disks worked on at once. Default 2. */
  concurrency?: number;
  /** Files whose metadata is read at once during discovery. Default 16. */
  discoveryConcurrency?: number;
  /** Write the JSON report here (atomically). */
  reportFile?: string;
  /** Write a Prometheus textfile here (atomically). */
  metricsFile?: string;
  /** compact --free-space on every leaf (disks with children get plain compaction). */
  freeSpace?: boolean;
  /** With freeSpace: the opted-in drops (compact --drop). */
  drop?: DropKind[];
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** "dev:ino" -> pids of other processes holding the file open (default: a /proc scan). */
  openFiles?: () => Promise<Map<string, number[]>>;
  /** Told as the run goes, one call per disk acted on, skipped or failed (the CLI's log lines off a terminal). */
  onEvent?: (e: MaintainEvent) => void;
}

/** Something maintain did (or decided) about one disk, as it happens. */
export interface MaintainEvent {
  at: Date;
  /** The disk (or folder, or root) it is about. */
  path: string;
  /** What happened, in words (no path). */
  text: string;
}

export { MAX_MIN_RECLAIM };

/** Files open in other processes, rescanned when stale; a holder must persist to count. */
class InUse {
  private index: Map<string, number[]> | null = null;
  private at = 0;
  private pending: Promise<Map<string, number[]>> | null = null;

  constructor(private readonly scan: () => Promise<Map<string, number[]>>) {}

  private async fresh(maxAgeMs: number): Promise<Map<string, number[]>> {
    if (this.index && Date.now() - this.at <= maxAgeMs) return this.index;
    if (!this.pending) {
      this.pending = this.scan().then((m) => {
        this.index = m;
        this.at = Date.now();
        return m;
      }).finally(() => { this.pending = null; });
    }
    return this.pending;
  }

  /**
   * Pids holding the file open. A hit is re-checked twice, 250 ms apart, so a
   * file another vhdtool opens for a moment (its discovery) is not "in use".
   */
  async holders(dev: number, ino: number): Promise<number[]> {
    const key = `${dev}:${ino}`;
    let pids = (await this.fresh(IN_USE_MAX_AGE_MS)).get(key) ?? [];
    for (let i = 0; i < 2 && pids.length; i++) {
      await new Promise((r) => setTimeout(r, 250));
      pids = (await this.fresh(0)).get(key) ?? [];
    }
    return pids;
  }
}

/** Who still names a UUID as parent, from a fresh walk of the roots (headers re-read only for changed files). */
class Pointers {
  private cache = new Map<string, { dev: number; ino: number; size: number; mtimeMs: number; parentUuid: Uuid | null }>();

  constructor(private readonly fs: FileSystem, private readonly roots: string[], known: DiskInfo[]) {
    for (const d of known) this.cache.set(d.path, { dev: d.dev, ino: d.ino, size: d.size, mtimeMs: d.mtimeMs, parentUuid: d.parentUuid });
  }

  async to(uuid: Uuid): Promise<string[]> {
    // Excluded folders count too: "no disk under the roots" means all of them.
    const { files } = await walkRoots(this.fs, this.roots);
    const out: string[] = [];
    await mapLimit(files, DEFAULT_OPEN_CONCURRENCY, async (f) => {
      let st;
      try {
        st = await this.fs.stat(f.path);
      } catch {
        return;
      }
      let c = this.cache.get(f.path);
      if (!c || c.dev !== st.dev || c.ino !== st.ino || c.size !== st.size || c.mtimeMs !== st.mtimeMs) {
        const r = await readDisk(this.fs, f);
        c = { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, parentUuid: r.ok ? r.disk.parentUuid : null };
        this.cache.set(f.path, c);
      }
      if (c.parentUuid === uuid) out.push(f.path);
    });
    return out.sort();
  }
}

interface NodeState {
  sizeBefore: number;
  reclaimable: number | null;
  atMost: number | null;
  reclaimed: number;
  changed: boolean;
  /** Dry run: would be coalesced (its compaction is then not measured). */
  rewritten: boolean;
  /** Its locators do not lead to its parent (found by UUID under the roots). */
  stale: boolean;
  /** Its relink failed or was refused: not written for the rest of the run. */
  relinkFailed: boolean;
  skip: Skip | null;
  dropped: ReasonBytes | null;
  freeSpace: DiskFreeSpace | null;
}

interface Ctx {
  fs: FileSystem;
  dryRun: boolean;
  minReclaim: number;
  maxDepth: number | null;
  removeOrphans: boolean;
  relink: boolean;
  freeSpace: boolean;
  drop: DropKind[];
  lanes: Lanes;
  inUse: InUse;
  pointers: Pointers;
  signal?: AbortSignal;
  progress: ProgressSink;
  log(path: string, text: string): void;
}

/** One family being worked on. */
class FamilyRun {
  readonly state = new Map<Node, NodeState>();
  readonly readOnly = new Set<Node>();
  readonly cr: ChainReport;

  constructor(private readonly ctx: Ctx, readonly tree: Tree) {
    for (const n of tree.nodes) {
      this.state.set(n, {
        sizeBefore: n.disk.size, reclaimable: null, atMost: null, reclaimed: 0, changed: false, rewritten: false,
        stale: n.parent !== null && n.parentBy !== 'locator', relinkFailed: false, skip: null, dropped: null, freeSpace: null,
      });
    }
    const r = tree.root.disk;
    this.cr = {
      base: { path: r.path, uuid: r.uuid, type: r.type, external: r.external },
      key: tree.key, status: 'ok', changed: false, skip: null, disks: [], chains: [], actions: [],
      bytesReclaimed: 0, bytesReclaimable: 0, droppedBytes: emptyReasons(), removedTemporaries: [], errors: [],
    };
  }

  private st(n: Node): NodeState {
    return this.state.get(n)!;
  }

  error(p: string, e: unknown, during: string): void {
    const err = e instanceof VhdToolError ? e
      : new VhdToolError('INTERNAL', `internal error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)} (please report this)`, p);
    this.cr.errors.push({ path: err.path ?? p, code: err.code, exitCode: err.exitCode, message: err.message, during });
    this.ctx.log(err.path ?? p, `failed (${during}): ${err.message}`);
  }

  private skip(n: Node, reason: Skip['reason'], message: string): void {
    this.st(n).skip = { reason, message };
    if (reason !== 'chain-broken' && reason !== 'rewritten') this.ctx.log(n.disk.path, `skipped (${reason}): ${message}`);
  }

  private skipFamily(reason: Skip['reason'], message: string): void {
    this.cr.skip = { reason, message };
    this.ctx.log(this.tree.root.disk.path, `family skipped (${reason}): ${message}`);
  }

  private act(a: ActionReport): void {
    this.cr.actions.push(a);
    this.ctx.log(a.disk, describeAction(a));
  }

  /** Everything `fn` throws but an interrupt is an error of this disk; true when it succeeded. */
  private async guard(n: Node, during: string, fn: () => Promise<void>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (e) {
      if (e instanceof VhdToolError && e.code === 'INTERRUPTED') throw e;
      this.error(n.disk.path, e, during);
      return false;
    }
  }

  async run(): Promise<void> {
    const { tree, ctx } = this;
    if (tree.problem) {
      this.cr.errors.push({ path: tree.problem.path, code: tree.problem.code, exitCode: exitCodeFor(tree.problem.code), message: tree.problem.message, during: 'discover' });
      ctx.log(tree.problem.path, `failed (discover): ${tree.problem.message}`);
      for (const n of tree.nodes) this.skip(n, 'chain-broken', tree.problem.message);
      return;
    }
    let locks: DiskLock[] = [];
    try {
      if (!ctx.dryRun) {
        const r = await this.lockAll();
        if (typeof r === 'string') {
          this.skipFamily('locked', r);
          return;
        }
        locks = r;
        const changed = await this.refresh();
        if (changed) {
          this.skipFamily('changed-during-run', changed);
          return;
        }
        // Temporaries a killed run left beside these disks (under the locks, no live vhdtool is writing them).
        for (const n of this.tree.nodes) {
          if (!n.disk.external && !this.readOnly.has(n)) this.cr.removedTemporaries.push(...await cleanStaleTemps(ctx.fs, n.disk.realPath));
        }
      }
      await relinkStale(this.staleHost());
      if (ctx.maxDepth !== null) await this.shorten(ctx.maxDepth);
      await this.compactAll();
    } finally {
      for (const l of locks.reverse()) await l.release();
    }
  }

  /** Locks every disk of the family in path order; a string says who holds one (nothing is kept then). */
  private async lockAll(): Promise<DiskLock[] | string> {
    const members = [...this.tree.nodes].sort((a, b) => (a.disk.realPath < b.disk.realPath ? -1 : a.disk.realPath > b.disk.realPath ? 1 : 0));
    const held: DiskLock[] = [];
    for (const n of members) {
      try {
        held.push(await lockDisk(this.ctx.fs, n.disk.realPath));
      } catch (e) {
        if (e instanceof VhdToolError && e.code === 'WRITE_FAILED') {
          // No lock file can be made beside it, so no vhdtool can replace it either: read it, never write it.
          this.readOnly.add(n);
          continue;
        }
        for (const l of held.reverse()) await l.release();
        if (e instanceof VhdToolError && e.code === 'LOCKED') return `${n.disk.path}: ${e.message}`;
        throw e;
      }
    }
    return held;
  }

  /** Re-reads every header under the locks; returns why the family is no longer as discovered, or null. */
  private async refresh(): Promise<string | null> {
    const fresh = await mapLimit(this.tree.nodes, DEFAULT_OPEN_CONCURRENCY, (n) => readDisk(this.ctx.fs, { path: n.disk.path, root: n.disk.root, rel: n.disk.rel }, n.disk.external));
    for (const [i, n] of this.tree.nodes.entries()) {
      const r = fresh[i];
      if (!r.ok) return `${n.disk.path} changed since discovery (${r.bad.message})`;
      const d = r.disk;
      if (d.uuid !== n.disk.uuid || d.type !== n.disk.type || d.parentUuid !== n.disk.parentUuid) {
        return `${n.disk.path} changed since discovery (another run maintained it?)`;
      }
      n.disk = d;
      this.st(n).sizeBefore = d.size;
    }
    return null;
  }

  /** Why `n` must not be written now, or null. An `error` is reported as one; a `skip` is not. */
  private async blocked(n: Node): Promise<{ skip?: Skip; error?: VhdToolError } | null> {
    const d = n.disk;
    if (d.external) return { skip: { reason: 'external', message: 'outside the roots (or excluded): read, never written' } };
    if (d.savedState) return { skip: { reason: 'saved-state', message: 'in saved state (a VM was saved with it attached); never touched' } };
    const pids = await this.ctx.inUse.holders(d.dev, d.ino);
    if (pids.length) return { skip: { reason: 'in-use', message: `open in another process (pid ${pids.join(', ')})` } };
    if (this.readOnly.has(n)) {
      return { error: new VhdToolError('WRITE_FAILED', 'cannot create the lock file beside it (read-only folder or no permission), so it cannot be maintained', d.path) };
    }
    if (this.st(n).relinkFailed) return { skip: { reason: 'relink-refused', message: 'its parent is in doubt (its relink failed, see the error): not written this run' } };
    return null;
  }

  /** What relinkStale needs of this family run. */
  private staleHost(): StaleHost {
    return {
      ctx: this.ctx, nodes: this.tree.nodes,
      state: (n) => this.st(n),
      blocked: (n) => this.blocked(n),
      skip: (n, reason, message) => this.skip(n, reason, message),
      act: (a) => this.act(a),
      guard: (n, during, fn) => this.guard(n, during, fn),
      reread: (n) => this.reread(n),
      extraFor: (n) => this.extraFor(n),
    };
  }

  private extraFor(n: Node): (uuid: Uuid) => string[] {
    const m = new Map<string, string>();
    for (const a of ancestorsOf(n)) if (!m.has(a.disk.uuid)) m.set(a.disk.uuid, a.disk.path);
    return (uuid) => {
      const p = m.get(uuid);
      return p ? [p] : [];
    };
  }

  /** Opens the chain the way the operations will and checks it is the one discovered (same files). */
  private async verifyChain(n: Node): Promise<void> {
    const expected = [n, ...ancestorsOf(n)];
    const chain = await openChain(this.ctx.fs, n.disk.path, { mode: 'strict', extraCandidates: this.extraFor(n) });
    try {
      const layers = chain.layersLeafFirst;
      const same = layers.length === expected.length && layers.every((l, i) => l.dev === expected[i].disk.dev && l.ino === expected[i].disk.ino);
      if (!same) {
        throw new VhdToolError('PARENT_MISMATCH',
          `the chain opens as ${layers.map((l) => l.path).join(' -> ')}, not as discovered (${expected.map((x) => x.disk.path).join(' -> ')}); left alone`, n.disk.path);
      }
    } finally {
      await chain.close();
    }
  }

  private async reread(n: Node): Promise<void> {
    const r = await readDisk(this.ctx.fs, { path: n.disk.path, root: n.disk.root, rel: n.disk.rel }, n.disk.external);
    if (!r.ok) throw new VhdToolError(r.bad.code, `after rewriting it: ${r.bad.message}`, n.disk.path);
    n.disk = r.disk;
  }

  // --- Shortening -----------------------------------------------------------

  private async shorten(maxDepth: number): Promise<void> {
    const stuck = new Set<Node>();
    for (;;) {
      if (this.ctx.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      const wave = this.tree.nodes.filter((n) => !n.removed && n.parent && n.children.length === 0 && !stuck.has(n) && depthOf(n) > maxDepth);
      if (wave.length === 0) break;
      await Promise.all(wave.map(async (n) => {
        if (!(await this.coalesceOne(n))) stuck.add(n);
      }));
      if (this.ctx.removeOrphans) await this.removeOrphans(stuck);
    }
  }

  private async coalesceOne(n: Node): Promise<boolean> {
    const b = await this.blocked(n);
    if (b?.skip) {
      this.skip(n, b.skip.reason, b.skip.message);
      return false;
    }
    if (b?.error) {
      this.error(n.disk.path, b.error, 'coalesce');
      return false;
    }
    const p = n.parent!;
    const gp = p.parent;
    const t0 = Date.now();
    if (this.ctx.dryRun) {
      this.act({ action: 'coalesce', disk: n.disk.path, dryRun: true, parent: p.disk.path, newParent: gp?.disk.path ?? null, bytesBefore: n.disk.size, durationMs: 0 });
      n.disk = { ...n.disk, parentUuid: gp ? gp.disk.uuid : null, type: gp ? 'differencing' : 'dynamic' };
      relinkToGrandparent(n);
      this.st(n).rewritten = true;
      this.st(n).stale = false;
      return true;
    }
    return this.ctx.lanes.with((lane) => this.guard(n, 'coalesce', async () => {
      await this.verifyChain(n);
      const before = n.disk.size;
      await coalesceInPlace(n.disk.path, { fs: this.ctx.fs, noLock: true, runner: lane, signal: this.ctx.signal, extraCandidates: this.extraFor(n) });
      relinkToGrandparent(n);
      // Coalescing writes fresh locators to the new parent.
      this.st(n).changed = true;
      this.st(n).stale = false;
      await this.reread(n);
      const a: ActionReport = {
        action: 'coalesce', disk: n.disk.path, dryRun: false, parent: p.disk.path, newParent: gp?.disk.path ?? null,
        bytesBefore: before, bytesAfter: n.disk.size, durationMs: Date.now() - t0,
      };
      this.act(a);
      const want = gp ? gp.disk.uuid : null;
      if (n.disk.parentUuid !== want) {
        throw new VhdToolError('INTERNAL', `after coalescing, the parent UUID is ${n.disk.parentUuid}, expected ${want}`, n.disk.path);
      }
    }));
  }

  /** Deletes layers shortening left unused (differencing, intermediate at discovery, now childless). */
  private async removeOrphans(stuck: Set<Node>): Promise<void> {
    const done = new Set<Node>();
    for (;;) {
      const cands = this.tree.nodes.filter((m) => !m.removed && !done.has(m) && m.wasIntermediate && m.children.length === 0 && m.disk.type === 'differencing' && !m.disk.external);
      if (cands.length === 0) return;
      for (const m of cands) {
        done.add(m);
        // Whatever happens, it is not shortened as if it were a leaf.
        stuck.add(m);
        await this.removeOne(m);
      }
    }
  }

  private async removeOne(m: Node): Promise<void> {
    const b = await this.blocked(m);
    if (b?.skip) {
      this.skip(m, b.skip.reason, `unused, but ${b.skip.message}`);
      return;
    }
    if (b?.error) {
      this.error(m.disk.path, b.error, 'remove-orphan');
      return;
    }
    if (m.disk.path !== m.disk.realPath) {
      this.skip(m, 'symlink', `unused, but reached through a symbolic link (${m.disk.realPath}); not deleted`);
      return;
    }
    await this.guard(m, 'remove-orphan', async () => {
      const byPath = new Map(this.tree.nodes.map((x) => [x.disk.path, x]));
      // Disks of this family that no longer name it (in a dry run, only in memory) do not count.
      const users = (await this.ctx.pointers.to(m.disk.uuid)).filter((p) => {
        const x = byPath.get(p);
        return !x || (!x.removed && x.disk.parentUuid === m.disk.uuid);
      });
      if (users.length) {
        this.skip(m, 'still-referenced', `unused by its family, but ${users.join(', ')} still names it as parent; kept`);
        return;
      }
      const t0 = Date.now();
      if (!this.ctx.dryRun) {
        await this.ctx.fs.unlink(m.disk.realPath).catch((e) => { throw fromSystemError(e, m.disk.path, true); });
        await this.ctx.fs.syncDir(path.dirname(m.disk.realPath)).catch(() => undefined);
      }
      detach(m);
      this.act({ action: 'remove-orphan', disk: m.disk.path, dryRun: this.ctx.dryRun, bytesBefore: m.disk.size, durationMs: Date.now() - t0 });
    });
  }

  // --- Compaction -----------------------------------------------------------

  private async compactAll(): Promise<void> {
    const alive = this.tree.nodes.filter((n) => !n.removed);
    const byHeight = new Map<number, Node[]>();
    for (const n of alive) {
      const h = heightOf(n);
      byHeight.set(h, [...(byHeight.get(h) ?? []), n]);
    }
    // Children before parents: nothing in flight ever reads a disk being replaced.
    for (const h of [...byHeight.keys()].sort((a, b) => a - b)) {
      if (this.ctx.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      await Promise.all(byHeight.get(h)!.map((n) => this.compactOne(n)));
    }
  }

  private async compactOne(n: Node): Promise<void> {
    const s = this.st(n);
    const d = n.disk;
    try {
      if (d.external) return this.skip(n, 'external', 'outside the roots (or excluded): read, never written');
      if (d.type === 'fixed') return this.skip(n, 'fixed', 'a fixed disk has no unallocated space to reclaim');
      if (this.ctx.dryRun && s.rewritten) return this.skip(n, 'rewritten', 'would be coalesced first; compaction not measured');
      const bound = d.size - d.minSize;
      if (bound <= 0) {
        s.reclaimable = 0;
        this.ctx.log(d.path, 'nothing to reclaim');
        return;
      }
      if (this.ctx.minReclaim > 0 && bound < this.ctx.minReclaim) {
        // Even an empty disk would free less than the threshold: no need to read any data.
        s.atMost = bound;
        this.ctx.log(d.path, `at most ${bound} bytes to reclaim, below --min-reclaim ${this.ctx.minReclaim}: left as it is`);
        return;
      }
      const b = await this.blocked(n);
      if (b?.skip) return this.skip(n, b.skip.reason, b.skip.message);
      await this.ctx.lanes.with((lane) => this.guard(n, 'compact', async () => {
        await this.verifyChain(n);
        // --free-space only on leaves: dropping what a parent's own view calls free would change what its children read.
        const leaf = n.children.every((c) => c.removed);
        const free = this.ctx.freeSpace && leaf ? { freeSpace: true, drop: this.ctx.drop, noChildCheck: true } : {};
        const opts = { fs: this.ctx.fs, noLock: true, runner: lane as TaskRunner, signal: this.ctx.signal, extraCandidates: this.extraFor(n), ...free };
        const dry = await compact(d.path, { ...opts, dryRun: true });
        s.reclaimable = dry.reclaimableBytes;
        s.dropped = droppedOf(dry);
        if (this.ctx.freeSpace) {
          s.freeSpace = freeSpaceOf(dry, leaf);
          for (const p of s.freeSpace.partitions) if (p.status === 'skipped') this.ctx.log(d.path, `free space: partition ${p.index} (${p.fs}) left as it is: ${p.reason}`);
          for (const p of s.freeSpace.partitions) for (const x of p.refused) this.ctx.log(d.path, `free space: partition ${p.index}: --drop ${x.drop} refused: ${x.reason}`);
        }
        if (dry.reclaimableBytes <= 0 || dry.reclaimableBytes < this.ctx.minReclaim) {
          this.ctx.log(d.path, dry.reclaimableBytes <= 0 ? 'nothing to reclaim' : `${dry.reclaimableBytes} bytes to reclaim, below --min-reclaim ${this.ctx.minReclaim}: left as it is`);
          return;
        }
        this.cr.bytesReclaimable += dry.reclaimableBytes;
        this.cr.droppedBytes = addReasons([this.cr.droppedBytes, s.dropped]);
        if (b?.error) throw b.error;
        if (this.ctx.dryRun) {
          this.act({ action: 'compact', disk: d.path, dryRun: true, bytesBefore: d.size, bytesAfter: dry.newSize, reclaimedBytes: dry.reclaimableBytes, droppedBytes: s.dropped, durationMs: dry.durationMs });
          return;
        }
        const t0 = Date.now();
        const real = await compact(d.path, opts);
        if (!real.changed) return;
        s.changed = true;
        s.reclaimed += real.reclaimedBytes;
        this.cr.bytesReclaimed += real.reclaimedBytes;
        await this.reread(n);
        this.act({ action: 'compact', disk: d.path, dryRun: false, bytesBefore: real.originalSize, bytesAfter: real.newSize, reclaimedBytes: real.reclaimedBytes, droppedBytes: droppedOf(real), durationMs: Date.now() - t0 });
      }));
    } finally {
      this.ctx.progress.advance(s.sizeBefore);
    }
  }

  // --- Report ---------------------------------------------------------------

  finish(): ChainReport {
    const cr = this.cr;
    cr.disks = this.tree.nodes.map((n): DiskReport => {
      const s = this.st(n);
      return {
        path: n.disk.path,
        uuid: n.disk.uuid,
        type: n.disk.type,
        parent: n.parent?.disk.path ?? null,
        parentUuid: n.disk.parentUuid,
        depth: this.tree.problem ? null : depthOf(n),
        external: n.disk.external,
        sizeBefore: s.sizeBefore,
        sizeAfter: n.removed ? null : n.disk.size,
        reclaimableBytes: s.reclaimable,
        reclaimableAtMost: s.atMost,
        reclaimedBytes: s.reclaimed,
        changed: s.changed || n.removed,
        removed: n.removed,
        staleLocators: s.stale && !n.removed,
        skip: s.skip,
        droppedBytes: s.dropped,
        freeSpace: s.freeSpace,
      };
    });
    const roots = this.tree.nodes.filter((n) => !n.removed && (n === this.tree.root || !n.parent));
    cr.chains = roots.flatMap((r) => leavesOf(r)).filter((l) => !l.removed).map((l) => [l, ...ancestorsOf(l)].map((x) => x.disk.path));
    cr.changed = cr.actions.length > 0;
    cr.status = cr.errors.length ? 'failed' : cr.skip ? 'skipped' : 'ok';
    return cr;
  }
}

/** A compaction's dropped bytes by reason (without --free-space: the compare kernel's two). */
function droppedOf(r: CompactResult): ReasonBytes {
  if (r.freeSpace) return r.freeSpace.bytes;
  const out = emptyReasons();
  out.sameAsParent = r.sectors.sameAsParent * 512;
  out.zeroOverZero = r.sectors.zeroOverZero * 512;
  return out;
}

function freeSpaceOf(r: CompactResult, leaf: boolean): DiskFreeSpace {
  if (!leaf || !r.freeSpace) {
    return { applied: false, reason: 'has children: their views would change where they read this disk; plain compaction only', tableError: null, partitions: [], blocksKept: { count: 0, usedBytes: 0 } };
  }
  const f = r.freeSpace;
  return { applied: true, reason: null, tableError: f.tableError, partitions: f.partitions, blocksKept: f.blocksKept };
}

function errorEntry(e: unknown, during: string): ErrorEntry {
  const err = e instanceof VhdToolError ? e
    : new VhdToolError('INTERNAL', `internal error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)} (please report this; set VHDTOOL_DEBUG=1 for details)`);
  return { path: err.path ?? '', code: err.code, exitCode: err.exitCode, message: err.message, during };
}

async function writeText(fs: FileSystem, file: string, text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  await writeAtomically(fs, path.resolve(file), async (f) => { await f.write(bytes, 0, bytes.length, 0); }, { replace: true, mode: 0o644 });
}

function checkOptions(roots: string[], o: MaintainOptions): void {
  if (roots.length === 0) throw new VhdToolError('USAGE', 'maintain needs at least one ROOT folder');
  const nonNeg = (v: number | null | undefined, name: string, int = true) => {
    if (v === undefined || v === null) return;
    if (!Number.isFinite(v) || v < 0 || (int && !Number.isInteger(v))) throw new VhdToolError('USAGE', `${name} must be a whole number, at least 0`);
  };
  nonNeg(o.minReclaim, '--min-reclaim');
  if (o.minReclaim !== undefined && o.minReclaim > MAX_MIN_RECLAIM) {
    throw new VhdToolError('USAGE', `--min-reclaim ${o.minReclaim} is more than any VHD holds (at most 2040 GiB)`);
  }
  nonNeg(o.maxDepth, '--max-depth');
  if (o.drop?.length && !o.freeSpace) throw new VhdToolError('USAGE', '--drop needs --free-space');
  nonNeg(o.threads, '--threads');
  if (o.concurrency !== undefined && (!Number.isInteger(o.concurrency) || o.concurrency < 1)) throw new VhdToolError('USAGE', '--concurrency must be at least 1');
  const s = o.shard;
  if (s && (!Number.isInteger(s.index) || !Number.isInteger(s.count) || s.count < 1 || s.index < 0 || s.index >= s.count)) {
    throw new VhdToolError('USAGE', '--shard must be K/N with 0 <= K < N');
  }
}

export async function maintain(roots: string[], opts: MaintainOptions = {}): Promise<MaintainReport> {
  const t0 = Date.now();
  const startedAt = new Date();
  const fs = opts.fs ?? nodeFileSystem;
  const shard = opts.shard ?? NO_SHARD;
  const threads = opts.threads ?? defaultThreads();
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const minReclaim = opts.minReclaim ?? DEFAULT_MIN_RECLAIM;
  const progress = opts.progress ?? noopProgress;
  const report: MaintainReport = {
    tool: 'vhdtool', command: 'maintain', reportVersion: REPORT_VERSION,
    startedAt: startedAt.toISOString(), finishedAt: '', durationMs: 0,
    dryRun: opts.dryRun ?? false,
    roots: roots.map((r) => path.resolve(r)),
    shard,
    options: {
      minReclaim, maxDepth: opts.maxDepth ?? null, removeOrphans: opts.removeOrphans ?? false, relink: opts.relink ?? false, exclude: opts.exclude ?? [], threads, concurrency,
      freeSpace: opts.freeSpace ?? false, drop: opts.drop ?? [],
    },
    exitCode: 0, status: 'healthy', fatal: null,
    summary: {
      disksFound: 0, unreadable: 0, chains: 0, chainsInShard: 0, chainsOk: 0, chainsChanged: 0, chainsSkipped: 0, chainsFailed: 0,
      disksCompacted: 0, bytesReclaimed: 0, bytesReclaimable: 0, droppedBytes: emptyReasons(), chainsShortened: 0, layersCoalesced: 0, orphansRemoved: 0,
      disksRelinked: 0, staleLocators: 0,
      disksSkipped: 0, errors: 0, discoveryMs: 0,
    },
    chains: [], unreadable: [], errors: [], warnings: [],
  };
  let lanes: Lanes | null = null;
  const log = (p: string, text: string) => opts.onEvent?.({ at: new Date(), path: p, text });
  const sideOutputs: SideOutput[] = [];
  if (opts.reportFile) sideOutputs.push({ flag: '--report', file: opts.reportFile });
  if (opts.metricsFile) sideOutputs.push({ flag: '--metrics', file: opts.metricsFile });
  /** Set when a side output names a disk: then nothing is written there, not even the report of the refusal. */
  let outputsRefused = false;
  try {
    checkOptions(roots, opts);
    try {
      await refuseOutputsOverDisks(fs, roots, sideOutputs);
    } catch (e) {
      outputsRefused = true;
      throw e;
    }
    const found = await discover(fs, roots, { exclude: opts.exclude, concurrency: opts.discoveryConcurrency, signal: opts.signal });
    try {
      await refuseOutputsThatAreInputs(fs, [...found.disks, ...found.external], sideOutputs);
    } catch (e) {
      outputsRefused = true;
      throw e;
    }
    report.summary.discoveryMs = found.durationMs;
    report.summary.disksFound = found.disks.length + found.unreadable.filter((u) => u.kind === 'file').length;
    const forest = buildForest([...found.disks, ...found.external], found.unreadable, found.probes);
    report.summary.chains = forest.trees.length;
    for (const dup of forest.duplicates) report.warnings.push(`UUID ${dup.uuid} is carried by ${dup.paths.length} disks (${dup.paths.join(', ')}): copies of one disk?`);
    // An unreadable file belongs to the shard of its UUID (its children's family) or of its path below the root.
    report.unreadable = found.unreadable
      .filter((u) => inShard(u.uuid ?? `path:${u.rel}`, shard))
      .map((u) => ({ path: u.path, kind: u.kind, code: u.code, message: u.message, uuid: u.uuid }));
    const mine = forest.trees.filter((t) => inShard(t.key, shard));
    log(report.roots.join(' '), `found ${report.summary.disksFound} disk file${report.summary.disksFound === 1 ? '' : 's'} in ${forest.trees.length} chain famil${forest.trees.length === 1 ? 'y' : 'ies'} (${mine.length} in this shard)${opts.dryRun ? '; dry run' : ''}`);
    for (const u of report.unreadable) log(u.path, `unreadable ${u.kind}: ${u.message}`);

    lanes = createLanes({ threads, lanes: concurrency });
    const ctx: Ctx = {
      fs, dryRun: opts.dryRun ?? false, minReclaim, maxDepth: opts.maxDepth ?? null, removeOrphans: opts.removeOrphans ?? false, relink: opts.relink ?? false,
      freeSpace: opts.freeSpace ?? false, drop: opts.drop ?? [], lanes, inUse: new InUse(opts.openFiles ?? openFilesByOthers), pointers: new Pointers(fs, report.roots, found.disks),
      signal: opts.signal, progress, log,
    };
    const runs = mine.map((t) => new FamilyRun(ctx, t));
    progress.start('maintaining', mine.reduce((n, t) => n + t.nodes.reduce((m, x) => m + x.disk.size, 0), 0));
    let interrupted: VhdToolError | null = null;
    try {
      // Families are independent; each disk operation also waits for a lane.
      await mapLimit(runs, concurrency, async (fr) => {
        if (interrupted || opts.signal?.aborted) {
          fr.cr.skip = { reason: 'interrupted', message: 'interrupted before this family was reached' };
          return;
        }
        try {
          await fr.run();
        } catch (e) {
          if (e instanceof VhdToolError && e.code === 'INTERRUPTED') {
            interrupted = e;
            fr.cr.skip = { reason: 'interrupted', message: 'interrupted; every disk is intact' };
            return;
          }
          fr.error(fr.tree.root.disk.path, e, 'maintain');
        }
      });
    } finally {
      progress.done();
      report.chains = runs.map((r) => r.finish());
      report.warnings.push(...staleWarnings(report.chains, opts.relink ?? false));
    }
    // Interrupted between two families: nothing threw, but the run did not finish.
    if (!interrupted && opts.signal?.aborted) interrupted = new VhdToolError('INTERRUPTED', 'interrupted');
    if (interrupted) throw interrupted;
  } catch (e) {
    report.fatal = errorEntry(e, 'maintain');
    if (process.env.VHDTOOL_DEBUG && !(e instanceof VhdToolError)) console.error(e);
  } finally {
    if (lanes) await lanes.close().catch(() => undefined);
  }

  const finish = () => {
    report.finishedAt = new Date().toISOString();
    report.durationMs = Date.now() - t0;
    finalize(report);
  };
  finish();
  if (opts.reportFile && !outputsRefused) {
    try {
      await writeText(fs, opts.reportFile, JSON.stringify(report, null, 2) + '\n');
    } catch (e) {
      report.fatal ??= errorEntry(e instanceof VhdToolError ? e : fromSystemError(e, opts.reportFile, true), 'write-report');
      finish();
    }
  }
  if (opts.metricsFile && !outputsRefused) {
    try {
      const previous = await fs.readFile(opts.metricsFile).then((b) => new TextDecoder().decode(b), () => null);
      await writeText(fs, opts.metricsFile, renderMetrics(report, previous));
    } catch (e) {
      report.fatal ??= errorEntry(e instanceof VhdToolError ? e : fromSystemError(e, opts.metricsFile, true), 'write-metrics');
      finish();
    }
  }
  return report;
}
