/**
 * Replacing or creating a file so that a crash at any moment leaves either the
 * old file or the new one whole, never a mix:
 *
 *   1. create `.<name>.vhdtool-<pid>-<random>.tmp` beside the target (O_EXCL);
 *      when it replaces a file, give it that file's owner, group, mode and
 *      extended attributes now, before a byte is written, and read them back:
 *      if any did not carry over, refuse (nothing is written);
 *   2. write it and fsync it; meanwhile verify it (re-open it and check
 *      it against the plan: the bytes re-read are the ones fsync writes);
 *   3. close it once both succeeded;
 *   4. publish: rename over the target (replace) or hard-link to the target
 *      name and unlink the temporary (no-clobber);
 *   5. fsync the directory.
 *
 * Before the rename the temporary's attributes are checked once more, so a
 * crash can never leave a published file with the wrong owner or mode.
 *
 * On any failure the temporary is removed and the target is untouched. A
 * temporary left by a killed process is removed by `cleanStaleTemps` on the
 * next run that touches the same target.
 */
import * as path from 'node:path';
import { VhdToolError, fromSystemError } from '../errors.js';
import type { FileAttributes, FileSystem, RandomAccessFile } from './fsys.js';
import { liveTemps } from './live.js';
import { XattrError } from './xattr.js';

export { liveTemps };

const TEMP_RE = /^\.(.+)\.vhdtool-(\d+)-([0-9a-z]+)\.tmp$/;

export function tempNameFor(target: string): string {
  const rnd = Math.random().toString(36).slice(2, 10);
  return path.join(path.dirname(target), `.${path.basename(target)}.vhdtool-${process.pid}-${rnd}.tmp`);
}

/**
 * Removes a file vhdtool made (a temporary, a lock), retrying once: a
 * transient failure must not leave it behind. Never throws; returns whether
 * the file is gone.
 */
export async function removeQuietly(fs: FileSystem, p: string): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.unlink(p);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    }
  }
  return false;
}

export function isTempName(name: string): boolean {
  return TEMP_RE.test(name);
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporaries for `target` whose writer process is gone; returns their paths. */
export async function cleanStaleTemps(fs: FileSystem, target: string): Promise<string[]> {
  const dir = path.dirname(target);
  const base = path.basename(target);
  const removed: string[] = [];
  let entries;
  try {
    entries = await fs.readdir(dir);
  } catch {
    return removed;
  }
  for (const e of entries) {
    const m = TEMP_RE.exec(e.name);
    if (!m || m[1] !== base) continue;
    if (pidAlive(Number(m[2]))) continue;
    const p = path.join(dir, e.name);
    try {
      await fs.unlink(p);
      removed.push(p);
    } catch {
      /* raced with another cleaner */
    }
  }
  if (removed.length) await fs.syncDir(dir).catch(() => undefined);
  return removed;
}

export interface AtomicOptions {
  /**
   * Replace an existing target (rename); otherwise refuse to clobber (link + unlink).
   * A replaced target's owner, group, mode and extended attributes are kept.
   */
  replace: boolean;
  /** Permission bits for a new file (a replaced one keeps its own). */
  mode?: number;
  /** Checks the fsynced temporary before it is published; throw to abort. */
  verify?: (tempPath: string) => Promise<void>;
  /** Decides, after verification, whether to publish at all (false: discard, target untouched; throw: abort). */
  shouldPublish?: () => boolean | Promise<boolean>;
  /**
   * A replaced target keeps its access and modification times too: for
   * rewrites that keep a disk's content and identity (compact, maintain's
   * shortening), so the parent time stamp its children recorded still
   * matches, as a relink's proof checks.
   */
  keepTimes?: boolean;
}

/**
 * Writes `target` atomically through `produce`, which receives the open
 * temporary file. Returns what `produce` returned.
 */
export async function writeAtomically<T>(fs: FileSystem, target: string, produce: (file: RandomAccessFile, tempPath: string) => Promise<T>, opts: AtomicOptions): Promise<T> {
  const temp = tempNameFor(target);
  let file: RandomAccessFile | null = null;
  let published = false;
  const keep = opts.replace ? await attributesToKeep(fs, target) : null;
  const times = opts.replace && opts.keepTimes ? await fs.stat(target).catch(() => null) : null;
  liveTemps.add(temp);
  try {
    try {
      // Private until it has the replaced file's attributes.
      file = await fs.createExclusive(temp, keep ? 0o600 : opts.mode ?? 0o644);
    } catch (e) {
      // Name the file the user asked for, not a temporary that does not exist.
      throw fromSystemError(e, target, true);
    }
    if (keep) await giveAttributes(fs, temp, keep, target);
    let result: T;
    try {
      result = await produce(file, temp);
    } catch (e) {
      throw e instanceof VhdToolError ? e : fromSystemError(e, target, true);
    }
    // The final fsync and the verification (a re-read from the page cache) run
    // side by side; publishing waits for both.
    const synced = file.sync().then(() => null, (e: unknown) => fromSystemError(e, target, true));
    const verified = opts.verify ? opts.verify(temp).then(() => null, (e: unknown) => e) : Promise.resolve(null);
    const [syncErr, verifyErr] = await Promise.all([synced, verified]);
    if (syncErr) throw syncErr;
    if (verifyErr) {
      // The temporary is about to be removed: name the target in the message instead.
      throw verifyErr instanceof VhdToolError && verifyErr.path === temp
        ? new VhdToolError(verifyErr.code, verifyErr.message, target, verifyErr.data) : verifyErr;
    }
    const f = file;
    file = null;
    try {
      if (times && f.setTimes) await f.setTimes(times.atimeMs ?? times.mtimeMs, times.mtimeMs);
      await f.close();
    } catch (e) {
      throw fromSystemError(e, target, true);
    }
    if (opts.shouldPublish && !(await opts.shouldPublish())) return result;
    // A write may have cleared setuid bits or a capability: what is published must be what was there.
    if (keep) await checkAttributes(fs, temp, keep, target, 'after writing');
    try {
      if (opts.replace) {
        await fs.rename(temp, target);
      } else {
        await fs.link(temp, target);
        published = true;
        await fs.unlink(temp);
      }
      published = true;
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (!published && err.code === 'EEXIST') throw new VhdToolError('OUTPUT_EXISTS', 'output already exists (use --force to replace it)', target);
      if (!published) throw fromSystemError(e, target, true);
    }
    try {
      await fs.syncDir(path.dirname(target));
    } catch {
      /* the rename happened; durability of the directory entry is best effort here */
    }
    return result;
  } finally {
    if (file) await file.close().catch(() => undefined);
    if (!published || !opts.replace) {
      // Not published: remove the temporary. Published by link: the temporary name is a second link to remove.
      await removeQuietly(fs, temp);
    }
    liveTemps.delete(temp);
  }
}

/** The attributes of the file `target` names, or null when there is none (a new file). */
async function attributesToKeep(fs: FileSystem, target: string): Promise<FileAttributes | null> {
  try {
    await fs.stat(target);
  } catch {
    return null;
  }
  try {
    return await fs.getAttributes(target);
  } catch (e) {
    if (e instanceof XattrError) {
      throw new VhdToolError('REFUSED', `cannot read its extended attributes, so the new file could not keep them: ${e.message}; nothing was changed`, target);
    }
    throw fromSystemError(e, target, false);
  }
}

async function giveAttributes(fs: FileSystem, temp: string, keep: FileAttributes, target: string): Promise<void> {
  try {
    await fs.setAttributes(temp, keep);
  } catch (e) {
    if (e instanceof XattrError) {
      throw new VhdToolError('REFUSED', `the new file cannot be given the extended attributes of the original (${e.message}); nothing was changed`, target);
    }
    const err = fromSystemError(e, target, true);
    throw new VhdToolError(err.code, `the new file cannot be given the owner ${keep.uid}:${keep.gid}, mode ${keep.mode.toString(8).padStart(4, '0')} and extended attributes of the original (${err.message}); nothing was changed`, target, err.data);
  }
  await checkAttributes(fs, temp, keep, target, 'before writing');
}

/** Refuses when the temporary's attributes are not exactly `keep`. */
async function checkAttributes(fs: FileSystem, temp: string, keep: FileAttributes, target: string, when: string): Promise<void> {
  let got: FileAttributes;
  try {
    got = await fs.getAttributes(temp);
  } catch (e) {
    if (e instanceof XattrError) throw new VhdToolError('REFUSED', `cannot read back the attributes of the new file (${e.message}); nothing was changed`, target);
    throw fromSystemError(e, target, true);
  }
  const diff = attributeDifference(keep, got);
  if (diff) throw new VhdToolError('REFUSED', `the new file would not keep the original's ${diff} (${when}; the file system does not carry it over); nothing was changed`, target);
}

/**
 * What of `want` the file does not have, in words, or null. Attributes the new
 * file has in addition (a label or an ACL the folder gives every new file)
 * lose nothing and are not counted.
 */
export function attributeDifference(want: FileAttributes, got: FileAttributes): string | null {
  const diffs: string[] = [];
  if (want.uid !== got.uid || want.gid !== got.gid) diffs.push(`owner ${want.uid}:${want.gid} (got ${got.uid}:${got.gid})`);
  if (want.mode !== got.mode) diffs.push(`mode ${want.mode.toString(8).padStart(4, '0')} (got ${got.mode.toString(8).padStart(4, '0')})`);
  const have = new Map(got.xattrs.map((x) => [x.name, x.hex]));
  const missing = want.xattrs.filter((x) => have.get(x.name) !== x.hex).map((x) => x.name);
  if (missing.length) diffs.push(`extended attribute${missing.length === 1 ? '' : 's'} ${missing.join(', ')}`);
  return diffs.length ? diffs.join(', ') : null;
}
