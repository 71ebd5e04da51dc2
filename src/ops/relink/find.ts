/**
 * Finding a child's parent by UUID under folders (`relink --search`), with
 * maintain's discovery rules: folders are walked without following symbolic
 * links to folders; a link to a file is followed, and a file reached under
 * two names counts once; only metadata is read.
 *
 * Several disks may carry the parent's UUID (copies). The one at a path the
 * child's old locators name wins; else the only one; else the only one in a
 * folder the old locators name (the child's own folder included, where
 * relative locators and bare file names point). Anything else is ambiguous
 * and refused: the user names the parent with --parent.
 */
import * as path from 'node:path';
import { VhdToolError } from '../../errors.js';
import type { Uuid } from '../../format/index.js';
import type { FileSystem } from '../../io/fsys.js';
import { parentCandidates } from '../../chain/candidates.js';
import { mapLimit, readDisk, walkRoots, DEFAULT_OPEN_CONCURRENCY } from '../../maintain/discovery.js';
import type { VhdMeta } from '../../vhd/image.js';

export interface SearchReport {
  /** The folders searched, absolute. */
  roots: string[];
  /** VHD files read. */
  examined: number;
  /** Files that could not be read as VHDs (skipped). */
  unreadable: number;
  /** Every disk carrying the parent's UUID. */
  matches: string[];
  chosen: string;
  /** Why that one. */
  how: string;
}

export interface SearchChild {
  /** The child's path as given and its real path (locators resolve from either folder). */
  path: string;
  realPath: string;
  dev: number;
  ino: number;
  meta: VhdMeta;
}

export async function findParentByUuid(fs: FileSystem, dirs: string[], child: SearchChild, signal?: AbortSignal): Promise<SearchReport> {
  const want = child.meta.header!.parentUniqueId! as Uuid;
  const roots = dirs.map((d) => path.resolve(d));
  const { files } = await walkRoots(fs, roots, { signal });
  const read = await mapLimit(files, DEFAULT_OPEN_CONCURRENCY, (f) => readDisk(fs, f));
  const seen = new Set<string>([`${child.dev}:${child.ino}`]);
  const matches: Array<{ path: string; realPath: string }> = [];
  let unreadable = 0;
  for (const r of read) {
    if (!r.ok) {
      unreadable++;
      continue;
    }
    const id = `${r.disk.dev}:${r.disk.ino}`;
    if (seen.has(id)) continue;
    seen.add(id);
    if (r.disk.uuid === want) matches.push({ path: r.disk.path, realPath: r.disk.realPath });
  }
  const report = { roots, examined: files.length, unreadable, matches: matches.map((m) => m.path) };
  if (matches.length === 0) {
    throw new VhdToolError('PARENT_NOT_FOUND',
      `no disk with the parent's UUID ${want} under ${roots.join(', ')} (${files.length} VHD file(s) examined${unreadable ? `, ${unreadable} unreadable` : ''})`, child.path, { search: report });
  }
  const h = child.meta.header!;
  const named = [...parentCandidates(child.path, child.meta.locators, h.parentUnicodeName), ...parentCandidates(child.realPath, child.meta.locators, h.parentUnicodeName)];
  for (const c of named) {
    const m = matches.find((x) => x.path === c.path || x.realPath === c.path);
    if (m) return { ...report, chosen: m.path, how: `the path the child's ${c.source} names` };
  }
  if (matches.length === 1) return { ...report, chosen: matches[0].path, how: `the only disk with UUID ${want} under the searched folders` };
  const folders = new Set(named.map((c) => path.dirname(c.path)));
  const near = matches.filter((m) => folders.has(path.dirname(m.path)) || folders.has(path.dirname(m.realPath)));
  if (near.length === 1) return { ...report, chosen: near[0].path, how: `the only copy in a folder the child's locators name (${path.dirname(near[0].path)})` };
  throw new VhdToolError('PARENT_MISMATCH',
    `${matches.length} disks carry the parent's UUID ${want} (${matches.map((m) => m.path).join(', ')}) and the child's old locators ` +
    `name the folder of ${near.length ? 'several' : 'none'} of them; copies are ambiguous: name the parent with --parent`, child.path, { search: report });
}
