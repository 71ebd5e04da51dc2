/**
 * The forest of chains: every differencing disk linked to its parent by UUID.
 * Pure: metadata in, trees out. A tree is a family: one base (or one disk
 * whose parent cannot be found) and every disk above it; a parent may have
 * many children.
 *
 * Choosing a parent for a child whose header names parent UUID u:
 *   1. the first of the child's locator / parent-name candidates (openChain's
 *      order) that is a discovered disk with UUID u;
 *   2. else the only discovered disk with UUID u;
 *   3. else, among several, the only one in the child's folder;
 *   4. else the child's family is reported (missing, mismatched, broken or
 *      ambiguous parent) and left alone.
 */
import * as path from 'node:path';
import type { ErrorCode } from '../errors.js';
import type { Uuid } from '../format/index.js';
import type { DiskInfo, Probe, UnreadableFile } from './types.js';

export interface Node {
  disk: DiskInfo;
  parent: Node | null;
  children: Node[];
  /** How the parent was chosen (null for a root). */
  parentBy: 'locator' | 'uuid' | 'uuid, same folder' | null;
  /** Had children when discovered: an intermediate layer (only those can become orphans). */
  wasIntermediate: boolean;
  /** Deleted during the run (an orphan removed with --remove-orphans). */
  removed: boolean;
}

export type ProblemReason = 'parent-missing' | 'parent-mismatch' | 'parent-broken' | 'parent-ambiguous' | 'cycle';

export interface TreeProblem {
  reason: ProblemReason;
  code: ErrorCode;
  message: string;
  /** The disk the problem is about (the family's top disk). */
  path: string;
}

export interface Tree {
  /** Shard key: the base's UUID (for a broken family: the UUID of the parent it cannot find). */
  key: string;
  root: Node;
  /** Root first; every parent before its children; siblings by path. */
  nodes: Node[];
  /** Set when the family cannot be opened: it is reported and left alone. */
  problem: TreeProblem | null;
}

export interface Forest {
  trees: Tree[];
  /** UUIDs carried by more than one discovered disk (copied disks). */
  duplicates: Array<{ uuid: Uuid; paths: string[] }>;
}

const byPathOrder = (a: Node, b: Node) => (a.disk.path < b.disk.path ? -1 : a.disk.path > b.disk.path ? 1 : 0);

export function buildForest(disks: readonly DiskInfo[], unreadable: readonly UnreadableFile[] = [], probes: ReadonlyMap<string, Probe> = new Map()): Forest {
  const nodes: Node[] = [...disks]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((disk) => ({ disk, parent: null, children: [], parentBy: null, wasIntermediate: false, removed: false }));
  const byPath = new Map<string, Node>();
  const byUuid = new Map<string, Node[]>();
  for (const n of nodes) {
    byPath.set(n.disk.path, n);
    if (!byPath.has(n.disk.realPath)) byPath.set(n.disk.realPath, n);
    const list = byUuid.get(n.disk.uuid) ?? [];
    list.push(n);
    byUuid.set(n.disk.uuid, list);
  }
  const badByPath = new Map<string, UnreadableFile>();
  const badByUuid = new Map<string, UnreadableFile>();
  for (const u of unreadable) {
    badByPath.set(u.path, u);
    if (u.uuid) badByUuid.set(u.uuid, u);
  }
  const problems = new Map<Node, TreeProblem>();

  for (const c of nodes) {
    if (c.disk.type !== 'differencing' || c.disk.parentUuid === null) continue;
    const want = c.disk.parentUuid;
    let parent: Node | null = null;
    let by: Node['parentBy'] = null;
    const mismatched: string[] = [];
    let broken: UnreadableFile | null = null;
    for (const cand of c.disk.parentCandidates) {
      const n = byPath.get(cand);
      if (n) {
        if (n === c) continue;
        if (n.disk.uuid === want) {
          parent = n;
          by = 'locator';
          break;
        }
        mismatched.push(`${cand} has UUID ${n.disk.uuid}`);
        continue;
      }
      const bad = badByPath.get(cand);
      if (bad) {
        broken ??= bad;
        continue;
      }
      const probe = probes.get(cand);
      if (probe && 'uuid' in probe && probe.uuid !== want) mismatched.push(`${cand} has UUID ${probe.uuid}`);
    }
    if (!parent) {
      const same = (byUuid.get(want) ?? []).filter((n) => n !== c);
      if (same.length === 1) {
        parent = same[0];
        by = 'uuid';
      } else if (same.length > 1) {
        const dir = path.dirname(c.disk.path);
        const near = same.filter((n) => path.dirname(n.disk.path) === dir);
        if (near.length === 1) {
          parent = near[0];
          by = 'uuid, same folder';
        } else {
          problems.set(c, {
            reason: 'parent-ambiguous', code: 'PARENT_MISMATCH', path: c.disk.path,
            message: `${same.length} disks have the parent UUID ${want} (${same.map((n) => n.disk.path).join(', ')}) and the child's locators name none of them; left alone`,
          });
          continue;
        }
      }
    }
    if (parent) {
      c.parent = parent;
      c.parentBy = by;
      parent.children.push(c);
      continue;
    }
    broken ??= badByUuid.get(want) ?? null;
    if (broken) {
      problems.set(c, {
        reason: 'parent-broken', code: 'PARENT_NOT_FOUND', path: c.disk.path,
        message: `parent ${want} is ${broken.path}, which cannot be used (${broken.message}); left alone`,
      });
    } else if (mismatched.length) {
      problems.set(c, {
        reason: 'parent-mismatch', code: 'PARENT_MISMATCH', path: c.disk.path,
        message: `parent UUID mismatch: expects parent ${want}, but ${mismatched.join('; ')}; left alone`,
      });
    } else {
      const tried = c.disk.parentCandidates.length ? `; tried ${c.disk.parentCandidates.join(', ')} and the UUID index of the roots` : '';
      problems.set(c, {
        reason: 'parent-missing', code: 'PARENT_NOT_FOUND', path: c.disk.path,
        message: `parent ${want} not found${tried}; left alone`,
      });
    }
  }

  // Cycles: cut each at its first disk by path and report it.
  const state = new Map<Node, 'active' | 'done'>();
  for (const start of nodes) {
    const trail: Node[] = [];
    let n: Node | null = start;
    while (n && !state.has(n)) {
      state.set(n, 'active');
      trail.push(n);
      n = n.parent;
    }
    if (n && state.get(n) === 'active') {
      const cycle = trail.slice(trail.indexOf(n));
      const cut = [...cycle].sort(byPathOrder)[0];
      cut.parent!.children = cut.parent!.children.filter((x) => x !== cut);
      cut.parent = null;
      cut.parentBy = null;
      problems.set(cut, {
        reason: 'cycle', code: 'CHAIN_CYCLE', path: cut.disk.path,
        message: `chain loops: ${cycle.map((x) => x.disk.path).join(' -> ')} -> ${cycle[0].disk.path}; left alone`,
      });
    }
    for (const t of trail) state.set(t, 'done');
  }

  const trees: Tree[] = [];
  for (const n of nodes) n.children.sort(byPathOrder);
  for (const n of nodes) n.wasIntermediate = n.children.length > 0;
  for (const root of nodes) {
    if (root.parent) continue;
    const members: Node[] = [];
    const queue = [root];
    while (queue.length) {
      const x = queue.shift()!;
      members.push(x);
      queue.push(...x.children);
    }
    const problem = problems.get(root) ?? (root.disk.type === 'differencing'
      ? { reason: 'parent-missing' as const, code: 'PARENT_NOT_FOUND' as const, path: root.disk.path, message: 'parent not found; left alone' }
      : null);
    const key = problem && problem.reason !== 'cycle' ? (root.disk.parentUuid ?? root.disk.uuid) : root.disk.uuid;
    trees.push({ key, root, nodes: members, problem });
  }

  const duplicates: Forest['duplicates'] = [];
  for (const [uuid, list] of byUuid) {
    const internal = list.filter((n) => !n.disk.external);
    if (internal.length > 1) duplicates.push({ uuid: uuid as Uuid, paths: internal.map((n) => n.disk.path) });
  }
  return { trees, duplicates };
}

/** Differencing layers from `n` down to its base, `n` included (a base is 0). */
export function depthOf(n: Node): number {
  let d = 0;
  for (let x: Node | null = n; x; x = x.parent) if (x.disk.type === 'differencing') d++;
  return d;
}

/** Longest distance from `n` down to a disk above it with no children (a childless disk is 0). */
export function heightOf(n: Node): number {
  let h = 0;
  for (const c of n.children) h = Math.max(h, heightOf(c) + 1);
  return h;
}

/** `n`'s parent, its parent's parent, ... down to the base. */
export function ancestorsOf(n: Node): Node[] {
  const out: Node[] = [];
  for (let x = n.parent; x; x = x.parent) out.push(x);
  return out;
}

/** Childless disks above (and including) `n`: the leaves of the chains through it. */
export function leavesOf(n: Node): Node[] {
  if (n.children.length === 0) return [n];
  return n.children.flatMap(leavesOf);
}

/** Re-links `n` to its grandparent (after coalescing it with its parent). */
export function relinkToGrandparent(n: Node): void {
  const p = n.parent;
  if (!p) throw new Error('relinkToGrandparent: no parent');
  p.children = p.children.filter((x) => x !== n);
  n.parent = p.parent;
  if (n.parent) {
    n.parent.children.push(n);
    n.parent.children.sort(byPathOrder);
  }
}

/** Detaches a removed disk from its parent. */
export function detach(n: Node): void {
  if (n.parent) n.parent.children = n.parent.children.filter((x) => x !== n);
  n.removed = true;
}
