/**
 * Stale locators in maintain: a child whose parent discovery found by UUID
 * under the roots, not where the child's locators (or parent name) point.
 * The chain opens in maintain (through its UUID index) but in no other tool.
 *
 * Without --relink each such child is reported (DiskReport.staleLocators, a
 * warning per family, an event line): a warning, not an error. With --relink
 * its locators are rewritten to the parent found, by `relink` with its whole
 * proof, under the locks the run already holds (noLock), parents before
 * children (a child's proof opens its parent's chain). A dry run proves and
 * plans without writing. A child whose relink fails or is refused is an
 * error of the run, and is not written for the rest of it (no shortening, no
 * compaction): its parent is in doubt, and compacting it against that parent
 * would drop the sectors that still tell.
 */
import { VhdToolError } from '../errors.js';
import { relink, type RelinkResult } from '../ops/relink.js';
import type { TaskRunner } from '../parallel/pool.js';
import type { FileSystem } from '../io/fsys.js';
import type { Uuid } from '../format/index.js';
import type { Node } from './forest.js';
import type { Lanes } from './lanes.js';
import type { ActionReport, ChainReport, SkipReason } from './report.js';
import { plural } from '../plural.js';

/** What relinkStale needs of the family run it works for. */
export interface StaleHost {
  ctx: {
    fs: FileSystem;
    dryRun: boolean;
    relink: boolean;
    lanes: Lanes;
    signal?: AbortSignal;
    log(path: string, text: string): void;
  };
  /** The family, parents before children. */
  nodes: readonly Node[];
  state(n: Node): { stale: boolean; relinkFailed: boolean; changed: boolean };
  /** Why `n` must not be written now (a skip, or an error to report), or null. */
  blocked(n: Node): Promise<{ skip?: { reason: SkipReason; message: string }; error?: VhdToolError } | null>;
  skip(n: Node, reason: SkipReason, message: string): void;
  act(a: ActionReport): void;
  /** Runs `fn`; an error (but an interrupt) is reported as this disk's, during `during`; true when it succeeded. */
  guard(n: Node, during: string, fn: () => Promise<void>): Promise<boolean>;
  reread(n: Node): Promise<void>;
  extraFor(n: Node): (uuid: Uuid) => string[];
}

export async function relinkStale(h: StaleHost): Promise<void> {
  for (const n of h.nodes) {
    if (!h.state(n).stale || n.removed) continue;
    if (h.ctx.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
    if (!h.ctx.relink) {
      h.ctx.log(n.disk.path, `stale locators: its parent ${n.parent!.disk.path} was found by UUID under the roots, not where its locators point; ` +
        'other tools cannot open this disk (maintain --relink rewrites them)');
      continue;
    }
    await relinkOne(h, n);
  }
}

async function relinkOne(h: StaleHost, n: Node): Promise<void> {
  const s = h.state(n);
  const b = await h.blocked(n);
  if (b?.skip) return h.skip(n, b.skip.reason, `stale locators not rewritten: ${b.skip.message}`);
  const parent = n.parent!.disk.path;
  const ok = await h.ctx.lanes.with((lane) => h.guard(n, 'relink', async () => {
    if (b?.error) throw b.error;
    const t0 = Date.now();
    const r = await relink(n.disk.path, {
      fs: h.ctx.fs, parent, noLock: true, dryRun: h.ctx.dryRun, runner: lane as TaskRunner, signal: h.ctx.signal, extraCandidates: h.extraFor(n),
    }).catch((e) => { throw withHint(e, n.disk.path, parent); });
    if (r.refusal) throw withHint(new VhdToolError(r.refusal.code as VhdToolError['code'], r.refusal.message, n.disk.path, { proof: r.proof }), n.disk.path, parent);
    s.stale = false;
    if (!h.ctx.dryRun && r.changed) {
      s.changed = true;
      await h.reread(n);
    }
    h.act(action(n.disk.path, parent, r, h.ctx.dryRun, Date.now() - t0));
  }));
  if (!ok) s.relinkFailed = true;
}

/** A refusal that `vhdtool relink --force` would accept says how to accept it (maintain has no --force). */
function withHint(e: unknown, child: string, parent: string): unknown {
  if (!(e instanceof VhdToolError) || !/\(--force accepts this\)$/.test(e.message)) return e;
  return new VhdToolError(e.code, `${e.message}: after checking, run vhdtool relink ${JSON.stringify(child)} --parent ${JSON.stringify(parent)} --force`, e.path, e.data);
}

function action(disk: string, parent: string, r: RelinkResult, dryRun: boolean, durationMs: number): ActionReport {
  return { action: 'relink', disk, dryRun, parent, method: r.method, proof: r.proof.verdict as 'proven' | 'accepted', durationMs };
}

/** One warning per family that keeps disks with stale locators at the end of the run. */
export function staleWarnings(chains: readonly ChainReport[], relinkGiven: boolean): string[] {
  const out: string[] = [];
  for (const c of chains) {
    const stale = c.disks.filter((d) => d.staleLocators).map((d) => d.path);
    if (!stale.length) continue;
    const names = stale.length > 5 ? `${stale.slice(0, 5).join(', ')} and ${stale.length - 5} more` : stale.join(', ');
    const fix = relinkGiven ? 'their relink did not happen (see the errors and skips)' : 'maintain --relink (or vhdtool relink --search) rewrites them';
    out.push(`stale locators: ${plural(stale.length, 'disk')} of the family of ${c.base.path} open only through maintain's UUID index, ` +
      `not where their locators point (${names}); other tools cannot open them; ${fix}`);
  }
  return out;
}
