/**
 * The files maintain writes besides disks (--report, --metrics) must never
 * be a disk: a parent overwritten with JSON breaks every child. Refused,
 * before anything is done (dry runs included): a path that holds a VHD (by
 * its content, whatever its name), that names an input (a root, a disk found
 * under the roots or one of their ancestors), or that has a disk extension
 * and lies under a root. The two must not name the same file either.
 */
import * as path from 'node:path';
import { VhdToolError } from '../errors.js';
import type { FileStat, FileSystem } from '../io/fsys.js';
import { DISK_NAME, looksLikeVhd } from '../io/reportFile.js';
import type { DiskInfo } from './types.js';

export interface SideOutput {
  flag: '--report' | '--metrics';
  file: string;
}

async function statOrNull(fs: FileSystem, p: string): Promise<FileStat | null> {
  try {
    return await fs.stat(p);
  } catch {
    return null;
  }
}

function within(child: string, root: string): boolean {
  const rel = path.relative(root, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The path with its folder resolved through symbolic links (the file itself need not exist). */
async function resolved(fs: FileSystem, p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return path.join(await fs.realpath(path.dirname(abs)), path.basename(abs));
  } catch {
    return abs;
  }
}

/** Before discovery: content, name under a root, a root itself, and the two outputs being one file. */
export async function refuseOutputsOverDisks(fs: FileSystem, roots: string[], outputs: SideOutput[]): Promise<void> {
  const realRoots = await Promise.all(roots.map(async (r) => fs.realpath(r).catch(() => path.resolve(r))));
  const seen = new Map<string, SideOutput>();
  for (const o of outputs) {
    const real = await resolved(fs, o.file);
    const st = await statOrNull(fs, real);
    const refuse = (why: string) => { throw new VhdToolError('REFUSED', `${o.flag} ${why}; refusing to write there (nothing was done)`, o.file); };
    if (st?.isDirectory) refuse('names a folder');
    if (st?.isFile && await looksLikeVhd(fs, real, st.size)) refuse('names a VHD disk (by its content)');
    for (const r of realRoots) {
      if (real === r) refuse('names a ROOT');
      if (DISK_NAME.test(real) && within(real, r)) refuse(`has a disk's extension and lies under the root ${r}`);
    }
    const other = seen.get(real);
    if (other) refuse(`names the same file as ${other.flag}`);
    seen.set(real, o);
  }
}

/** After discovery: no output may be a disk that was found (by any name: symlinks, hard links). */
export async function refuseOutputsThatAreInputs(fs: FileSystem, disks: DiskInfo[], outputs: SideOutput[]): Promise<void> {
  for (const o of outputs) {
    const real = await resolved(fs, o.file);
    const st = await statOrNull(fs, real);
    const hit = disks.find((d) => d.realPath === real || (st && d.dev === st.dev && d.ino === st.ino));
    if (hit) throw new VhdToolError('REFUSED', `${o.flag} names the disk ${hit.path}; refusing to write there (nothing was done)`, o.file);
  }
}
