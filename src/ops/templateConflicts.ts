/**
 * The template check's verdicts, from two file-level differences that share
 * their old side: update = OLD -> NEWTEMPLATE, user = OLD -> CHILD (pure:
 * partition differences in, report entries out; reading files to tell two
 * equal changes apart is the caller's, through `sameContent`).
 *
 * A conflict is a file both changed (matched by its identity on OLD, or by
 * path when both added it), or a file one side changed inside a directory
 * the other deleted. Two sides that made the same change (both deleted a
 * file; both left it with the same path and content) do not conflict.
 */
import type { RangeSet } from '../guest/ranges.js';
import { explicitRenames } from './diff.js';
import type { Light } from './diffIndex.js';
import type { PartitionDiff } from './diffViews.js';
import type { MetaItem } from './diffVolume.js';

export type Change = 'added' | 'deleted' | 'modified';

export interface ChangeEntry {
  partition: number;
  path: string;
  change: Change;
  directory: boolean;
  /** A rename is the old path deleted and the new one added, each naming the other. */
  renamedTo?: string;
  renamedFrom?: string;
}

export interface Conflict {
  partition: number;
  path: string;
  update: Change;
  user: Change;
  /** Why: both changed the file, or one side changed it inside a directory the other deleted. */
  reason: 'both-changed' | 'both-added' | 'directory-deleted-by-update' | 'directory-deleted-by-user';
  /** The deleted directory (for the directory reasons). */
  directory?: string;
  /** Where a side renamed the file to (a rename is a deletion of the old path). */
  updateRenamedTo?: string;
  userRenamedTo?: string;
}

export interface MetadataConflict {
  /** null: the disk's own structures outside every partition (partition tables, boot code). */
  partition: number | null;
  name: string;
  kind: MetaItem['kind'] | 'disk';
  updateBytes: number;
  userBytes: number;
  /** Bytes both changed. */
  commonBytes: number;
}

/** The file changes one side made, as the report lists them (explicit renames as delete + add). */
export function changeList(parts: PartitionDiff[]): ChangeEntry[] {
  const out: ChangeEntry[] = [];
  for (const d of parts) {
    const c = d.changes;
    const push = (l: Light, change: Change, extra: Partial<ChangeEntry> = {}) =>
      out.push({ partition: d.index, path: l.path, change, directory: l.directory, ...extra });
    for (const l of c.added) push(l, 'added');
    for (const l of c.deleted) push(l, 'deleted');
    for (const m of c.modified) push(m.b, 'modified');
    for (const l of c.createdDirs) push(l, 'added');
    for (const l of c.deletedDirs) push(l, 'deleted');
    for (const m of explicitRenames(d)) {
      push(m.a, 'deleted', { renamedTo: m.b.path });
      push(m.b, 'added', { renamedFrom: m.a.path });
    }
  }
  return out.sort((x, y) => x.partition - y.partition || (x.path < y.path ? -1 : x.path > y.path ? 1 : 0) || (x.change < y.change ? -1 : 1));
}

/** What one side did to a file that existed on OLD (by OLD identity). */
interface OldChange {
  a: Light;
  /** The file on the new side (absent when deleted). */
  b: Light | null;
  modified: boolean;
}

function byOldId(d: PartitionDiff): Map<string, OldChange> {
  const m = new Map<string, OldChange>();
  const c = d.changes;
  for (const a of c.deleted) m.set(a.id, { a, b: null, modified: false });
  for (const x of c.renamed) m.set(x.a.id, { a: x.a, b: x.b, modified: false });
  for (const x of c.modified) m.set(x.a.id, { a: x.a, b: x.b, modified: true });
  return m;
}

/** Files a side added at a path (added files and rename targets), by normalised path. */
function byNewPath(d: PartitionDiff, norm: (p: string) => string): Map<string, { l: Light; oldId: string | null }> {
  const m = new Map<string, { l: Light; oldId: string | null }>();
  for (const l of d.changes.added) m.set(norm(l.path), { l, oldId: null });
  for (const x of d.changes.renamed) m.set(norm(x.b.path), { l: x.b, oldId: x.a.id });
  return m;
}

/** A file gone from its old path (deleted, or renamed away) is 'deleted' there; one still there changed is 'modified'. */
const label = (x: OldChange): Change => (x.b === null || x.b.path !== x.a.path ? 'deleted' : 'modified');

/** The paths under which a side's change shows: its path on OLD and its new one. */
function pathsOf(x: OldChange | { l: Light }): string[] {
  if ('l' in x) return [x.l.path];
  return x.b ? [x.a.path, x.b.path] : [x.a.path];
}

/** The deepest of `dirs` (normalised path -> path) that contains `p`, or null. */
function insideOf(dirs: Map<string, string>, p: string, norm: (p: string) => string): string | null {
  const q = norm(p);
  for (let i = q.lastIndexOf('/'); i > 0; i = q.lastIndexOf('/', i - 1)) {
    const d = dirs.get(q.slice(0, i));
    if (d !== undefined) return d;
  }
  return null;
}

/** Decides whether both sides left a file with the same content (the caller reads both). */
export type SameContent = (partition: number, update: Light, user: Light) => Promise<boolean>;

export async function findConflicts(upd: PartitionDiff[], usr: PartitionDiff[], same: SameContent): Promise<{ conflicts: Conflict[]; sameChanges: string[] }> {
  const conflicts: Conflict[] = [];
  const sameChanges: string[] = [];
  const userParts = new Map(usr.map((d) => [d.index, d]));
  for (const u of upd) {
    const v = userParts.get(u.index);
    if (!v) continue;
    const norm = (p: string) => (u.caseInsensitive ? p.toLowerCase() : p);
    const taken = new Set<string>();
    const add = (c: Conflict) => {
      const k = norm(c.path);
      if (taken.has(k)) return;
      taken.add(k);
      conflicts.push(c);
    };
    const uOld = byOldId(u);
    const vOld = byOldId(v);
    for (const [id, x] of uOld) {
      const y = vOld.get(id);
      if (!y) continue;
      if (await agreed(x, y, u.index, same)) {
        sameChanges.push(x.a.path);
        taken.add(norm(x.a.path));
        continue;
      }
      add({
        partition: u.index, path: x.a.path, update: label(x), user: label(y), reason: 'both-changed',
        ...(x.b && x.b.path !== x.a.path ? { updateRenamedTo: x.b.path } : {}),
        ...(y.b && y.b.path !== y.a.path ? { userRenamedTo: y.b.path } : {}),
      });
    }
    const uNew = byNewPath(u, norm);
    const vNew = byNewPath(v, norm);
    for (const [p, x] of uNew) {
      const y = vNew.get(p);
      if (!y || (x.oldId !== null && x.oldId === y.oldId)) continue;
      if (x.l.size === y.l.size && await same(u.index, x.l, y.l)) {
        sameChanges.push(x.l.path);
        taken.add(p);
        continue;
      }
      add({ partition: u.index, path: x.l.path, update: 'added', user: 'added', reason: 'both-added' });
    }
    directoryConflicts(u, v, uOld, vOld, uNew, vNew, norm, add);
  }
  conflicts.sort((x, y) => x.partition - y.partition || (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  return { conflicts, sameChanges: sameChanges.sort() };
}

async function agreed(x: OldChange, y: OldChange, partition: number, same: SameContent): Promise<boolean> {
  if (!x.b || !y.b) return !x.b && !y.b;
  if (x.b.path !== y.b.path) return false;
  if (!x.modified && !y.modified) return true;
  return x.b.size === y.b.size && same(partition, x.b, y.b);
}

/** Files one side changed inside a directory the other deleted. */
function directoryConflicts(u: PartitionDiff, v: PartitionDiff, uOld: Map<string, OldChange>, vOld: Map<string, OldChange>,
  uNew: Map<string, { l: Light }>, vNew: Map<string, { l: Light }>, norm: (p: string) => string, add: (c: Conflict) => void): void {
  const uDirs = new Map(u.changes.deletedDirs.map((l) => [norm(l.path), l.path]));
  const vDirs = new Map(v.changes.deletedDirs.map((l) => [norm(l.path), l.path]));
  const sides: Array<[Map<string, string>, Map<string, OldChange>, Map<string, { l: Light }>, 'update' | 'user']> = [
    [uDirs, vOld, vNew, 'user'],
    [vDirs, uOld, uNew, 'update'],
  ];
  for (const [dirs, olds, news, who] of sides) {
    if (!dirs.size) continue;
    const changes: Array<[OldChange | { l: Light }, Change]> = [
      ...[...olds.values()].map((x): [OldChange, Change] => [x, label(x)]),
      ...[...news.values()].map((x): [{ l: Light }, Change] => [x, 'added']),
    ];
    for (const [x, change] of changes) {
      for (const p of pathsOf(x)) {
        const dir = insideOf(dirs, p, norm);
        if (dir === null) continue;
        const path = 'l' in x ? x.l.path : x.a.path;
        if (who === 'user') add({ partition: u.index, path, update: 'deleted', user: change, reason: 'directory-deleted-by-update', directory: dir });
        else add({ partition: u.index, path, update: change, user: 'deleted', reason: 'directory-deleted-by-user', directory: dir });
        break;
      }
    }
  }
}

/** File-system metadata both sides changed (same partition, same system file, directory or structures). */
export function metadataConflicts(upd: PartitionDiff[], usr: PartitionDiff[]): MetadataConflict[] {
  const out: MetadataConflict[] = [];
  const userParts = new Map(usr.map((d) => [d.index, d]));
  for (const u of upd) {
    const v = userParts.get(u.index);
    if (!v) continue;
    const mine = new Map<string, RangeSet>(v.changes.metadata.map((m) => [`${m.kind}:${m.name}`, m.changed]));
    for (const m of u.changes.metadata) {
      const w = mine.get(`${m.kind}:${m.name}`);
      if (!w) continue;
      out.push({ partition: u.index, name: m.name, kind: m.kind, updateBytes: m.changed.bytes, userBytes: w.bytes, commonBytes: m.changed.intersectBytes(w) });
    }
  }
  return out;
}
