/**
 * Discovery for maintain: every .vhd / .avhd under the roots, from its
 * metadata alone (footer, header, BAT, locators: never block data), with a
 * bounded number of files open at once.
 *
 * Folders are walked without following symbolic links to folders (no loops);
 * a symbolic link to a file is followed, and a file reached under two names
 * (links, overlapping roots) is taken once. Files and folders that cannot be
 * read are reported, and the walk goes on.
 */
import * as path from 'node:path';
import { VhdToolError, fromSystemError, type ErrorCode } from '../errors.js';
import { decodeFooter, FOOTER_COOKIE, FOOTER_SIZE, sparseLayout, type Uuid } from '../format/index.js';
import type { FileSystem } from '../io/fsys.js';
import { readAt } from '../io/fsys.js';
import { parentCandidates } from '../chain/candidates.js';
import { openVhd, type VhdMeta } from '../vhd/image.js';
import { locatorSpace } from '../vhd/build.js';
import { makeExcluder } from './glob.js';
import type { DiskInfo, Probe, UnreadableFile } from './types.js';

export const VHD_NAME = /\.a?vhd$/i;
/** Files open at once while reading metadata. */
export const DEFAULT_OPEN_CONCURRENCY = 16;

export interface DiscoverOptions {
  exclude?: readonly string[];
  /** Metadata reads in flight (default 16). */
  concurrency?: number;
  signal?: AbortSignal;
}

export interface Discovery {
  disks: DiskInfo[];
  unreadable: UnreadableFile[];
  /** Ancestors found outside the roots (or excluded), where a child's locators point. */
  external: DiskInfo[];
  /** What was found at parent candidates outside the discovered set. */
  probes: Map<string, Probe>;
  durationMs: number;
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

const toPosix = (p: string) => p.split(path.sep).join('/');

interface Found {
  path: string;
  root: string;
  rel: string;
}

/** Lists candidate files under the roots. A root that does not exist is fatal (storage not mounted?). */
export async function walkRoots(fs: FileSystem, roots: readonly string[], opts: DiscoverOptions = {}): Promise<{ files: Found[]; unreadable: UnreadableFile[] }> {
  const excluded = makeExcluder(opts.exclude ?? []);
  const files: Found[] = [];
  const unreadable: UnreadableFile[] = [];
  const dirs: Array<{ dir: string; root: string }> = [];
  for (const r of roots) {
    const root = path.resolve(r);
    let st;
    try {
      st = await fs.stat(root);
    } catch (e) {
      throw fromSystemError(e, root, false);
    }
    if (st.isDirectory) dirs.push({ dir: root, root });
    else if (st.isFile) files.push({ path: root, root: path.dirname(root), rel: path.basename(root) });
    else throw new VhdToolError('NOT_A_FILE', 'root is neither a folder nor a file', root);
  }
  const limit = opts.concurrency ?? DEFAULT_OPEN_CONCURRENCY;
  const seenDirs = new Set<string>();
  while (dirs.length) {
    if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
    const batch = dirs.splice(0, dirs.length).filter((d) => !seenDirs.has(d.dir));
    for (const d of batch) seenDirs.add(d.dir);
    await mapLimit(batch, limit, async ({ dir, root }) => {
      let entries;
      try {
        entries = await fs.readdir(dir);
      } catch (e) {
        const err = fromSystemError(e, dir, false);
        unreadable.push({ path: dir, root, rel: toPosix(path.relative(root, dir)), kind: 'directory', code: err.code, message: `cannot list folder: ${err.message}`, uuid: null });
        return;
      }
      for (const ent of entries) {
        const abs = path.join(dir, ent.name);
        const rel = toPosix(path.relative(root, abs));
        if (ent.isDirectory()) {
          if (!excluded(rel, abs, true)) dirs.push({ dir: abs, root });
          continue;
        }
        if (!VHD_NAME.test(ent.name)) continue;
        if (!ent.isFile() && !ent.isSymbolicLink()) continue;
        if (excluded(rel, abs, false)) continue;
        files.push({ path: abs, root, rel });
      }
    });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files, unreadable };
}

/** Turns opened metadata into DiskInfo. */
export function diskInfoOf(meta: VhdMeta, at: { path: string; realPath: string; root: string; rel: string; dev: number; ino: number; mtimeMs: number }, external = false): DiskInfo {
  const h = meta.header;
  let minSize = meta.fileSize;
  if (meta.type !== 'fixed' && h) {
    const spaces = meta.locators.filter((l) => l.data !== null && typeof l.entry.platform === 'string').map((l) => locatorSpace(l.data!.length));
    minSize = sparseLayout({ maxTableEntries: h.maxTableEntries, blockSize: h.blockSize, locatorSpaces: spaces, align: 512 }).emptyFileSize;
  }
  return {
    path: at.path,
    realPath: at.realPath,
    root: at.root,
    rel: at.rel,
    dev: at.dev,
    ino: at.ino,
    size: meta.fileSize,
    mtimeMs: at.mtimeMs,
    uuid: meta.footer.uniqueId,
    type: meta.type,
    parentUuid: meta.type === 'differencing' ? h!.parentUniqueId : null,
    parentCandidates: meta.type === 'differencing' ? parentCandidates(at.path, meta.locators, h!.parentUnicodeName).map((c) => c.path) : [],
    savedState: meta.footer.savedState !== 0,
    virtualSize: meta.virtualSize,
    minSize,
    external,
    warnings: meta.issues.filter((i) => i.severity === 'warning').map((i) => i.message),
  };
}

export type ReadResult = { ok: true; disk: DiskInfo } | { ok: false; bad: UnreadableFile };

/**
 * Reads one disk's metadata (never block data). A file whose metadata breaks
 * the format (what every command refuses) comes back as unreadable.
 */
export async function readDisk(fs: FileSystem, f: Found, external = false): Promise<ReadResult> {
  const fail = (code: ErrorCode, message: string, uuid: Uuid | null = null): ReadResult =>
    ({ ok: false, bad: { path: f.path, root: f.root, rel: f.rel, kind: 'file', code, message, uuid } });
  let st;
  let realPath: string;
  try {
    st = await fs.stat(f.path);
    realPath = await fs.realpath(f.path);
  } catch (e) {
    const err = fromSystemError(e, f.path, false);
    return fail(err.code, err.message);
  }
  let vhd;
  try {
    // The one validation path every command uses, in the same (strict) mode: a damaged file gets the
    // diagnosis `info` and `compact` give it, the first problem found.
    vhd = await openVhd(fs, f.path, { mode: 'strict' });
  } catch (e) {
    const err = e instanceof VhdToolError ? e : fromSystemError(e, f.path, false);
    return fail(err.code, err.message, await rawUuid(fs, f.path));
  }
  try {
    return { ok: true, disk: diskInfoOf(vhd.meta, { ...f, realPath, dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs }, external) };
  } finally {
    await vhd.close().catch(() => undefined);
  }
}

/** The UUID of a file whose footer still decodes (a disk too broken to open, but still someone's parent). */
async function rawUuid(fs: FileSystem, p: string): Promise<Uuid | null> {
  let file;
  try {
    file = await fs.openRead(p);
  } catch {
    return null;
  }
  try {
    const size = await file.size();
    for (const at of [size - FOOTER_SIZE, 0]) {
      if (at < 0) continue;
      try {
        const f = decodeFooter(await readAt(file, at, FOOTER_SIZE));
        if (f.cookie === FOOTER_COOKIE) return f.uniqueId;
      } catch {
        /* not a footer */
      }
    }
    return null;
  } finally {
    await file.close().catch(() => undefined);
  }
}

/** Finds every disk under the roots; see the module comment. */
export async function discover(fs: FileSystem, roots: readonly string[], opts: DiscoverOptions = {}): Promise<Discovery> {
  const t0 = Date.now();
  const { files, unreadable } = await walkRoots(fs, roots, opts);
  const limit = opts.concurrency ?? DEFAULT_OPEN_CONCURRENCY;
  const results = await mapLimit(files, limit, async (f) => {
    if (opts.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
    return readDisk(fs, f);
  });
  const disks: DiskInfo[] = [];
  const seen = new Set<string>();
  for (const r of results) {
    if (!r.ok) {
      unreadable.push(r.bad);
      continue;
    }
    const id = `${r.disk.dev}:${r.disk.ino}`;
    if (seen.has(id)) continue;
    seen.add(id);
    disks.push(r.disk);
  }
  const { external, probes } = await resolveExternal(fs, disks, unreadable, limit);
  return { disks, unreadable, external, probes, durationMs: Date.now() - t0 };
}

/**
 * A child whose parent UUID is nowhere under the roots may still find its
 * parent where its locators point (a base outside the roots, or excluded):
 * those ancestors are read (metadata only) and used read-only.
 */
async function resolveExternal(fs: FileSystem, disks: DiskInfo[], unreadable: UnreadableFile[], limit: number): Promise<{ external: DiskInfo[]; probes: Map<string, Probe> }> {
  const known = new Set<string>(disks.map((d) => d.uuid));
  for (const u of unreadable) if (u.uuid) known.add(u.uuid);
  const paths = new Set<string>();
  for (const d of disks) {
    paths.add(d.path);
    paths.add(d.realPath);
  }
  for (const u of unreadable) paths.add(u.path);
  const probes = new Map<string, Probe>();
  const external: DiskInfo[] = [];
  let pending = disks.filter((d) => d.parentUuid !== null && !known.has(d.parentUuid));
  while (pending.length) {
    const next: DiskInfo[] = [];
    await mapLimit(pending, limit, async (child) => {
      for (const cand of child.parentCandidates) {
        if (paths.has(cand) || probes.has(cand)) {
          const p = probes.get(cand);
          if (p && 'uuid' in p && p.uuid === child.parentUuid) return;
          continue;
        }
        const r = await readDisk(fs, { path: cand, root: path.dirname(cand), rel: path.basename(cand) }, true);
        if (!r.ok) {
          if (r.bad.code !== 'NOT_FOUND') probes.set(cand, { error: r.bad.message });
          continue;
        }
        probes.set(cand, { uuid: r.disk.uuid });
        if (r.disk.uuid !== child.parentUuid || known.has(r.disk.uuid)) continue;
        known.add(r.disk.uuid);
        paths.add(cand);
        paths.add(r.disk.realPath);
        external.push(r.disk);
        if (r.disk.parentUuid !== null && !known.has(r.disk.parentUuid)) next.push(r.disk);
        return;
      }
    });
    pending = next;
  }
  return { external, probes };
}
