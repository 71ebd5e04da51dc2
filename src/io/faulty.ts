/**
 * A FileSystem that fails on purpose: the n-th operation of a chosen kind
 * (write, sync, rename, link...) throws a Node-style system error with the
 * chosen errno (EIO, ENOSPC, EACCES...). For tests and fast-check properties:
 * every write vhdtool makes goes through a FileSystem, so wrapping the real
 * one reaches every error path of the writers, the atomic publisher and the
 * lock.
 *
 * Reads are never failed (worker threads read with their own descriptors, so
 * failing reads here would only cover half of them).
 */
import type { Dirent } from 'node:fs';
import type { FileAttributes, FileStat, FileSystem, PatchFile, RandomAccessFile } from './fsys.js';

/** Operations that can be failed. `write` counts write() and writev() calls. */
export type FaultKind = 'create' | 'write' | 'sync' | 'truncate' | 'close' | 'rename' | 'link' | 'unlink' | 'syncDir' | 'mkdir' | 'setAttributes';

export const FAULT_KINDS: readonly FaultKind[] = ['create', 'write', 'sync', 'truncate', 'close', 'rename', 'link', 'unlink', 'syncDir', 'mkdir', 'setAttributes'];

/** Every mutating operation, for plans that count all of them together. */
export type FaultCounter = FaultKind | 'any';

export type FaultErrno = 'EIO' | 'ENOSPC' | 'EACCES' | 'EPERM' | 'EDQUOT' | 'EROFS';

const ERRNO_NUMBERS: Record<FaultErrno, number> = { EIO: -5, ENOSPC: -28, EACCES: -13, EPERM: -1, EDQUOT: -122, EROFS: -30 };
const ERRNO_TEXT: Record<FaultErrno, string> = {
  EIO: 'i/o error', ENOSPC: 'no space left on device', EACCES: 'permission denied', EPERM: 'operation not permitted',
  EDQUOT: 'disk quota exceeded', EROFS: 'read-only file system',
};

export interface FaultPlan {
  /** Which operations are counted. */
  kind: FaultCounter;
  /** The 1-based count at which the fault fires. */
  at: number;
  errno: FaultErrno;
  /** Keep failing every later operation of the kind too (a disk that stays full). Default false. */
  sticky?: boolean;
  /** A failing write first writes half of its bytes (a short write, as a filling disk does). Default false. */
  partial?: boolean;
}

export interface InjectedFault {
  kind: FaultKind;
  count: number;
  path: string;
  errno: FaultErrno;
}

/** A Node-style system error, as fs/promises would throw it. */
export function systemError(errno: FaultErrno, syscall: string, p: string): NodeJS.ErrnoException {
  const e = new Error(`${errno}: ${ERRNO_TEXT[errno]} (injected), ${syscall} '${p}'`) as NodeJS.ErrnoException;
  e.code = errno;
  e.errno = ERRNO_NUMBERS[errno];
  e.syscall = syscall;
  e.path = p;
  return e;
}

export class FaultyFileSystem implements FileSystem {
  /** Operations seen so far, per kind (and `any` for all of them). */
  readonly counts: Record<FaultCounter, number> = {
    any: 0, create: 0, write: 0, sync: 0, truncate: 0, close: 0, rename: 0, link: 0, unlink: 0, syncDir: 0, mkdir: 0, setAttributes: 0,
  };
  /** Faults actually thrown. */
  readonly injected: InjectedFault[] = [];
  /** Paths created through this file system (files and temporaries). */
  readonly created: string[] = [];
  /** Every operation seen, in order, with the path it touched (reads too: `openRead`). */
  readonly log: Array<{ op: FaultKind | 'openRead' | 'openForPatch'; path: string }> = [];
  private readonly plans: FaultPlan[];

  constructor(readonly inner: FileSystem, plans: FaultPlan | FaultPlan[] = []) {
    this.plans = Array.isArray(plans) ? plans : [plans];
  }

  /** Counts one operation; throws when a plan says so. */
  tick(kind: FaultKind, p: string, syscall: string = kind): void {
    this.log.push({ op: kind, path: p });
    const byKind = ++this.counts[kind];
    const any = ++this.counts.any;
    for (const plan of this.plans) {
      const n = plan.kind === 'any' ? any : plan.kind === kind ? byKind : -1;
      if (n < 0) continue;
      if (n === plan.at || (plan.sticky && n > plan.at)) {
        this.injected.push({ kind, count: n, path: p, errno: plan.errno });
        throw systemError(plan.errno, syscall, p);
      }
    }
  }

  /** Would the next `kind` operation fail with a partial write? */
  private partialFor(kind: FaultKind): boolean {
    return this.plans.some((p) => p.partial && (p.kind === kind || p.kind === 'any'));
  }

  openRead(p: string): Promise<RandomAccessFile> {
    this.log.push({ op: 'openRead', path: p });
    return this.inner.openRead(p);
  }

  async createExclusive(p: string, mode?: number): Promise<RandomAccessFile> {
    this.tick('create', p, 'open');
    const f = await this.inner.createExclusive(p, mode);
    this.created.push(p);
    return new FaultyFile(this, f, this.partialFor('write'));
  }

  async openForPatch(p: string): Promise<PatchFile> {
    this.log.push({ op: 'openForPatch', path: p });
    return new FaultyPatchFile(this, await this.inner.openForPatch(p), this.partialFor('write'));
  }

  stat(p: string): Promise<FileStat> {
    return this.inner.stat(p);
  }

  lstat(p: string): Promise<FileStat> {
    return this.inner.lstat(p);
  }

  realpath(p: string): Promise<string> {
    return this.inner.realpath(p);
  }

  readdir(p: string): Promise<Dirent[]> {
    return this.inner.readdir(p);
  }

  async rename(from: string, to: string): Promise<void> {
    this.log.push({ op: 'rename', path: to });
    this.tick('rename', from);
    await this.inner.rename(from, to);
  }

  async link(existing: string, newPath: string): Promise<void> {
    this.log.push({ op: 'link', path: existing });
    this.tick('link', newPath);
    await this.inner.link(existing, newPath);
  }

  async unlink(p: string): Promise<void> {
    this.tick('unlink', p);
    await this.inner.unlink(p);
  }

  async syncDir(dir: string): Promise<void> {
    this.tick('syncDir', dir, 'fsync');
    await this.inner.syncDir(dir);
  }

  readFile(p: string): Promise<Uint8Array> {
    return this.inner.readFile(p);
  }

  async mkdir(p: string): Promise<void> {
    this.tick('mkdir', p);
    await this.inner.mkdir(p);
  }

  getAttributes(p: string): Promise<FileAttributes> {
    return this.inner.getAttributes(p);
  }

  async setAttributes(p: string, attrs: FileAttributes): Promise<void> {
    this.tick('setAttributes', p, 'fchown');
    await this.inner.setAttributes(p, attrs);
  }
}

class FaultyFile implements RandomAccessFile {
  constructor(private readonly fs: FaultyFileSystem, private readonly f: RandomAccessFile, private readonly partial: boolean) {}

  get path(): string {
    return this.f.path;
  }

  read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
    return this.f.read(buf, off, len, pos);
  }

  readSync(buf: Uint8Array, off: number, len: number, pos: number): number {
    return this.f.readSync(buf, off, len, pos);
  }

  async write(buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
    try {
      this.fs.tick('write', this.f.path);
    } catch (e) {
      if (this.partial && len > 1) await this.f.write(buf, off, len >>> 1, pos);
      throw e;
    }
    await this.f.write(buf, off, len, pos);
  }

  async writev(bufs: Uint8Array[], pos: number): Promise<void> {
    try {
      this.fs.tick('write', this.f.path, 'writev');
    } catch (e) {
      if (this.partial && bufs.length > 0 && bufs[0].length > 1) await this.f.write(bufs[0], 0, bufs[0].length >>> 1, pos);
      throw e;
    }
    await this.f.writev(bufs, pos);
  }

  size(): Promise<number> {
    return this.f.size();
  }

  async truncate(len: number): Promise<void> {
    this.fs.tick('truncate', this.f.path, 'ftruncate');
    await this.f.truncate(len);
  }

  async sync(): Promise<void> {
    this.fs.tick('sync', this.f.path, 'fsync');
    await this.f.sync();
  }

  async close(): Promise<void> {
    try {
      this.fs.tick('close', this.f.path);
    } catch (e) {
      // A failed close still releases the descriptor (as close(2) does).
      await this.f.close().catch(() => undefined);
      throw e;
    }
    await this.f.close();
  }
}

/** An in-place patch handle whose writes, syncs and close count (and fail) like a new file's. */
class FaultyPatchFile implements PatchFile {
  constructor(private readonly fs: FaultyFileSystem, private readonly f: PatchFile, private readonly partial: boolean) {}

  get path(): string {
    return this.f.path;
  }

  read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
    return this.f.read(buf, off, len, pos);
  }

  async write(buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
    try {
      this.fs.tick('write', this.f.path);
    } catch (e) {
      if (this.partial && len > 1) await this.f.write(buf, off, len >>> 1, pos);
      throw e;
    }
    await this.f.write(buf, off, len, pos);
  }

  size(): Promise<number> {
    return this.f.size();
  }

  stat(): Promise<FileStat> {
    return this.f.stat();
  }

  setTimes(atimeMs: number, mtimeMs: number): Promise<void> {
    return this.f.setTimes(atimeMs, mtimeMs);
  }

  async sync(): Promise<void> {
    this.fs.tick('sync', this.f.path, 'fsync');
    await this.f.sync();
  }

  async close(): Promise<void> {
    try {
      this.fs.tick('close', this.f.path);
    } catch (e) {
      await this.f.close().catch(() => undefined);
      throw e;
    }
    await this.f.close();
  }
}
