/**
 * A lock per disk, so two vhdtool runs never work on the same disk at once:
 * `.<name>.vhdtool.lock` beside the disk, created with O_EXCL and holding
 * "<pid> <hostname>". A lock whose process is gone (same host) is stale and is
 * broken by renaming it aside first, so two breakers cannot both win.
 *
 * Taking a lock also rolls back an in-place rewrite that a killed relink left
 * unfinished (io/journal.ts), so every command that locks a disk starts from
 * a disk whose link is whole.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { VhdToolError } from '../errors.js';
import type { FileSystem } from './fsys.js';
import { removeQuietly } from './atomic.js';
import { liveLocks } from './live.js';
import { recoverJournal } from './journal.js';

export interface DiskLock {
  path: string;
  release(): Promise<void>;
}

export function lockPathFor(disk: string): string {
  return path.join(path.dirname(disk), `.${path.basename(disk)}.vhdtool.lock`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(fs: FileSystem, p: string): Promise<{ pid: number; host: string } | null> {
  try {
    const text = new TextDecoder().decode(await fs.readFile(p)).trim();
    const [pid, host] = text.split(/\s+/);
    const n = Number(pid);
    return Number.isInteger(n) && n > 0 ? { pid: n, host: host ?? '' } : null;
  } catch {
    return null;
  }
}

async function tryCreate(fs: FileSystem, p: string): Promise<boolean> {
  let f;
  try {
    f = await fs.createExclusive(p, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    const body = new TextEncoder().encode(`${process.pid} ${os.hostname()}\n`);
    await f.write(body, 0, body.length, 0);
    await f.close();
    return true;
  } catch (e) {
    // Could not write our name into it (disk full, I/O error): leave no half-made lock behind.
    await f.close().catch(() => undefined);
    await removeQuietly(fs, p);
    throw e;
  }
}

/** A lock file younger than this with no owner written yet is being taken, not stale. */
const FRESH_LOCK_MS = 5000;

/** Takes the lock of `disk`, or throws LOCKED naming the holder. */
export async function lockDisk(fs: FileSystem, disk: string): Promise<DiskLock> {
  const p = lockPathFor(disk);
  for (let attempt = 0; attempt < 3; attempt++) {
    let created: boolean;
    try {
      created = await tryCreate(fs, p);
    } catch (e) {
      // Not contention (that is EEXIST, handled below): the lock cannot be written at all.
      const code = (e as NodeJS.ErrnoException).code;
      throw new VhdToolError('WRITE_FAILED', `cannot create lock file ${p} (${code ?? 'error'})`, disk, { errno: code ?? null });
    }
    if (created) {
      liveLocks.add(p);
      const release = async () => { await removeQuietly(fs, p); liveLocks.delete(p); };
      try {
        // No live vhdtool holds this disk now: undo a relink that was killed half way, before anyone reads or writes it.
        await recoverJournal(fs, disk);
      } catch (e) {
        await release();
        throw e;
      }
      return { path: p, release };
    }
    const owner = await readOwner(fs, p);
    if (owner && (owner.host !== os.hostname() || alive(owner.pid))) {
      throw new VhdToolError('LOCKED', `disk is locked by another vhdtool (pid ${owner.pid} on ${owner.host || 'unknown host'}; lock ${p})`, disk);
    }
    if (!owner) {
      // Created but not yet written by its owner (the create and the write are two steps): not stale yet.
      const st = await fs.stat(p).catch(() => null);
      if (st && Date.now() - st.mtimeMs < FRESH_LOCK_MS) {
        throw new VhdToolError('LOCKED', `disk is being locked by another vhdtool (lock ${p}); try again in a few seconds`, disk);
      }
    }
    // Stale (dead owner) or unreadable: move it aside, then check what we moved.
    const aside = `${p}.stale-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      await fs.rename(p, aside);
    } catch {
      continue;
    }
    const moved = await readOwner(fs, aside);
    if (moved && owner && moved.pid !== owner.pid && alive(moved.pid)) {
      // We moved a live lock taken meanwhile: put it back and give way.
      await fs.link(aside, p).catch(() => undefined);
      await fs.unlink(aside).catch(() => undefined);
      throw new VhdToolError('LOCKED', `disk is locked by another vhdtool (pid ${moved.pid})`, disk);
    }
    await fs.unlink(aside).catch(() => undefined);
  }
  throw new VhdToolError('LOCKED', `could not take the lock ${p}`, disk);
}
