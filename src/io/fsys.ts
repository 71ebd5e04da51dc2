/**
 * The only door to the file system. Everything vhdtool reads or writes goes
 * through a `FileSystem`, so tests can inject faults at any operation.
 *
 * There is deliberately no general way to open an existing file for writing:
 * vhdtool creates new files (exclusively) and renames them into place, so a
 * parent, or any input, cannot be written to by construction. The one
 * exception is `openForPatch`, which only the undo journal (io/journal.ts)
 * calls, for relink's in-place rewrite of a child's header and locator
 * sectors and for rolling such a rewrite back (see that module).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from '../errors.js';
import { readXattrs, writeXattrs, type Xattr } from './xattr.js';

/**
 * Node's callback file API as promises. Not node:fs/promises: loading that
 * module (with the readline, watcher and directory modules it pulls in) cost
 * every command ~4 ms of start-up, and its FileHandle gives nothing more here.
 */
function call<T = void>(f: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => f((err, value) => (err ? reject(err) : resolve(value))));
}

/**
 * Metadata calls (stat, realpath, open for reading, fstat, a read-only
 * close), reads of at most SMALL_READ bytes, and writes are made
 * synchronously, inside the promise-returning methods (a failure is still a
 * rejection). Each asynchronous call is a round trip to libuv's thread pool:
 * two thread wake-ups, 100-300 us on this project's 2-core VMs, against
 * 5-20 us for a cached metadata call itself. `vhdtool info` on a two-disk
 * chain made ~45 such round trips one after another; merge waited on ~1,300
 * writes, one at a time, in its single writer (exec/rewrite.ts), and took
 * 1.4-1.6 s against 1.2-1.3 s with the writes made here. Bulk reads, fsync
 * (which the executor runs in the background while it goes on writing) and
 * directory listings stay asynchronous.
 */
export const SMALL_READ = 64 * 1024;

/**
 * A caller that loops over such calls (`while (…) await file.read(…)`) would
 * never let the event loop turn: no signal handler, timer or child-process
 * event would run. So a synchronous call first gives the event loop a turn
 * (setImmediate) when TURN_MS have passed since it last did.
 */
export const TURN_MS = 10;
let lastTurn = Date.now();

function turn(): Promise<void> | undefined {
  if (Date.now() - lastTurn < TURN_MS) return undefined;
  return new Promise<void>((resolve) => setImmediate(() => {
    lastTurn = Date.now();
    resolve();
  }));
}

function openFd(p: string, flags: number, mode?: number): Promise<number> {
  return call<number>((cb) => fs.open(p, flags, mode, cb));
}

class Descriptor {
  constructor(readonly path: string, protected readonly fd: number, private readonly readOnly = false) {}

  async read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
    if (len <= SMALL_READ) {
      await turn();
      return fs.readSync(this.fd, buf, off, len, pos);
    }
    return call<number>((cb) => fs.read(this.fd, buf, off, len, pos, cb));
  }

  protected async writeAll(buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
    await turn();
    let done = 0;
    while (done < len) {
      const n = fs.writeSync(this.fd, buf, off + done, len - done, pos + done);
      if (n <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
      done += n;
    }
  }

  protected async fstat(): Promise<fs.Stats> {
    await turn();
    return fs.fstatSync(this.fd);
  }

  async size(): Promise<number> {
    return (await this.fstat()).size;
  }

  setTimes(atimeMs: number, mtimeMs: number): Promise<void> {
    return call((cb) => fs.futimes(this.fd, atimeMs / 1000, mtimeMs / 1000, cb));
  }

  sync(): Promise<void> {
    return call((cb) => fs.fsync(this.fd, cb));
  }

  /** A file opened for writing closes asynchronously: on some file systems (NFS) close flushes. */
  async close(): Promise<void> {
    if (!this.readOnly) return call((cb) => fs.close(this.fd, cb));
    await turn();
    fs.closeSync(this.fd);
  }
}

export interface RandomAccessFile {
  readonly path: string;
  /** Reads up to `len` bytes at `pos` into `buf[off..]`; returns the count read (0 at EOF). */
  read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number>;
  /**
   * The same, synchronously: for small metadata reads on hot paths (block
   * bitmaps), where an asynchronous read costs the main thread more CPU
   * (~25-100 us in Node 20) than the read itself.
   */
  readSync(buf: Uint8Array, off: number, len: number, pos: number): number;
  /** Writes all of `buf[off..off+len)` at `pos`. */
  write(buf: Uint8Array, off: number, len: number, pos: number): Promise<void>;
  /** Writes the buffers back to back starting at `pos`. */
  writev(bufs: Uint8Array[], pos: number): Promise<void>;
  size(): Promise<number>;
  truncate(len: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
  /** Sets access and modification times (ms); a new file that replaces one with the same content keeps its times. */
  setTimes?(atimeMs: number, mtimeMs: number): Promise<void>;
}

/**
 * An existing file opened for rewriting a few bytes in place. It cannot
 * create, truncate or extend the file: it writes only over bytes that exist
 * (a write past the end is refused), so the inode stays the same and with it
 * owner, group, mode, xattrs, ACLs and hard links.
 */
export interface PatchFile {
  readonly path: string;
  read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number>;
  /** Writes all of `buf[off..off+len)` at `pos`, which must lie inside the file. */
  write(buf: Uint8Array, off: number, len: number, pos: number): Promise<void>;
  size(): Promise<number>;
  /** Identity of the open file. */
  stat(): Promise<FileStat>;
  /** Sets access and modification times (ms since the epoch). */
  setTimes(atimeMs: number, mtimeMs: number): Promise<void>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface FileStat {
  size: number;
  isFile: boolean;
  isDirectory: boolean;
  isSymbolicLink: boolean;
  dev: number;
  ino: number;
  nlink: number;
  mtimeMs: number;
  mode: number;
  /** Access and status-change times (ms); absent from file systems that do not report them. */
  atimeMs?: number;
  ctimeMs?: number;
}

/**
 * What a file vhdtool replaces keeps: owner, group, permission bits
 * (setuid/setgid/sticky included) and every extended attribute.
 */
export interface FileAttributes {
  uid: number;
  gid: number;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  /** Sorted by name (see io/xattr.ts). */
  xattrs: Xattr[];
}

export type { Xattr };

export interface FileSystem {
  /** Opens an existing file read-only. */
  openRead(p: string): Promise<RandomAccessFile>;
  /** Creates a new file for reading and writing; fails if it exists. */
  createExclusive(p: string, mode?: number): Promise<RandomAccessFile>;
  /**
   * Opens an existing regular file (not through a symbolic link) to rewrite
   * bytes in place. Only io/journal.ts calls this: relink's journaled
   * rewrite of a child's header and locators, and its rollback. Never used
   * on a parent or on a disk's data.
   */
  openForPatch(p: string): Promise<PatchFile>;
  stat(p: string): Promise<FileStat>;
  lstat(p: string): Promise<FileStat>;
  realpath(p: string): Promise<string>;
  readdir(p: string): Promise<fs.Dirent[]>;
  /** Renames, replacing `to` if it exists. */
  rename(from: string, to: string): Promise<void>;
  /** Hard-links `existing` as `newPath`; fails if `newPath` exists (a no-clobber publish). */
  link(existing: string, newPath: string): Promise<void>;
  unlink(p: string): Promise<void>;
  /** fsyncs a directory so a rename or unlink in it is durable. */
  syncDir(dir: string): Promise<void>;
  readFile(p: string): Promise<Uint8Array>;
  mkdir(p: string): Promise<void>;
  /** Owner, group, mode and extended attributes of `p` (following a final symbolic link). */
  getAttributes(p: string): Promise<FileAttributes>;
  /** Gives the regular file `p` (one this process created) this owner, group, mode and these extended attributes. */
  setAttributes(p: string, attrs: FileAttributes): Promise<void>;
}

function toStat(s: fs.Stats): FileStat {
  return {
    size: s.size, isFile: s.isFile(), isDirectory: s.isDirectory(), isSymbolicLink: s.isSymbolicLink(),
    dev: s.dev, ino: s.ino, nlink: s.nlink, mtimeMs: s.mtimeMs, mode: s.mode, atimeMs: s.atimeMs, ctimeMs: s.ctimeMs,
  };
}

class NodePatchFile extends Descriptor implements PatchFile {
  async write(buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
    const size = await this.size();
    if (pos < 0 || pos + len > size) throw Object.assign(new Error(`in-place write of ${len} bytes at ${pos} would extend the file (${size} bytes)`), { code: 'EINVAL' });
    await this.writeAll(buf, off, len, pos);
  }

  async stat(): Promise<FileStat> {
    return toStat(await this.fstat());
  }
}

class NodeFile extends Descriptor implements RandomAccessFile {
  readSync(buf: Uint8Array, off: number, len: number, pos: number): number {
    return fs.readSync(this.fd, buf, off, len, pos);
  }

  write(buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
    return this.writeAll(buf, off, len, pos);
  }

  async writev(bufs: Uint8Array[], pos: number): Promise<void> {
    await turn();
    let total = 0;
    for (const b of bufs) total += b.length;
    const written = fs.writevSync(this.fd, bufs, pos);
    if (written === total) return;
    // Short vectored write: finish buffer by buffer.
    let skip = written;
    let p = pos;
    for (const b of bufs) {
      if (skip >= b.length) { skip -= b.length; p += b.length; continue; }
      await this.writeAll(b, skip, b.length - skip, p + skip);
      p += b.length;
      skip = 0;
    }
  }

  truncate(len: number): Promise<void> {
    return call((cb) => fs.ftruncate(this.fd, len, cb));
  }
}

export const nodeFileSystem: FileSystem = {
  async openRead(p) {
    await turn();
    return new NodeFile(p, fs.openSync(p, fs.constants.O_RDONLY), true);
  },
  async createExclusive(p, mode = 0o644) {
    return new NodeFile(p, await openFd(p, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, mode));
  },
  async openForPatch(p) {
    const fd = await openFd(p, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
    const file = new NodePatchFile(p, fd);
    const st = await file.stat().catch(async (e: unknown) => { await file.close(); throw e; });
    if (!st.isFile) {
      await file.close();
      throw Object.assign(new Error(`${p} is not a regular file`), { code: 'EINVAL' });
    }
    return file;
  },
  async stat(p) {
    await turn();
    return toStat(fs.statSync(p));
  },
  async lstat(p) {
    await turn();
    return toStat(fs.lstatSync(p));
  },
  // One realpath(3) call; fs.realpath's own walk makes an lstat per path component.
  async realpath(p) {
    await turn();
    return fs.realpathSync.native(p);
  },
  readdir: (p) => call<fs.Dirent[]>((cb) => fs.readdir(p, { withFileTypes: true }, cb)),
  rename: (a, b) => call((cb) => fs.rename(a, b, cb)),
  link: (a, b) => call((cb) => fs.link(a, b, cb)),
  unlink: (p) => call((cb) => fs.unlink(p, cb)),
  async syncDir(dir) {
    const fd = await openFd(dir, fs.constants.O_RDONLY);
    try {
      await call((cb) => fs.fsync(fd, cb));
    } finally {
      await call((cb) => fs.close(fd, cb));
    }
  },
  async readFile(p) {
    return new Uint8Array(await call<Buffer>((cb) => fs.readFile(p, cb)));
  },
  async mkdir(p) {
    await call((cb) => fs.mkdir(p, { recursive: true }, (e) => cb(e, undefined)));
  },
  async getAttributes(p) {
    const st = await call<fs.Stats>((cb) => fs.stat(p, cb));
    return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, xattrs: await readXattrs(p) };
  },
  async setAttributes(p, attrs) {
    // Through a descriptor opened without following a link: the owner and mode go to the file made, nothing else.
    const fd = await openFd(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      await call((cb) => fs.fchown(fd, attrs.uid, attrs.gid, cb));
      // After chown, which clears setuid and setgid; an ACL (an extended attribute) then sets its own mask.
      await call((cb) => fs.fchmod(fd, attrs.mode, cb));
    } finally {
      await call((cb) => fs.close(fd, cb));
    }
    await writeXattrs(p, attrs.xattrs);
  },
};

/** Reads exactly `len` bytes at `pos`; a short read means the file is shorter than its metadata says. */
export async function readExact(file: RandomAccessFile, buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
  let done = 0;
  while (done < len) {
    const n = await file.read(buf, off + done, len - done, pos + done);
    if (n <= 0) {
      throw new FormatError(`file ends at byte ${pos + done} while reading ${len} bytes at offset ${pos}`, file.path, 'TRUNCATED');
    }
    done += n;
  }
}

/** readExact, synchronously (see RandomAccessFile.readSync). */
export function readExactSync(file: RandomAccessFile, buf: Uint8Array, off: number, len: number, pos: number): void {
  let done = 0;
  while (done < len) {
    const n = file.readSync(buf, off + done, len - done, pos + done);
    if (n <= 0) {
      throw new FormatError(`file ends at byte ${pos + done} while reading ${len} bytes at offset ${pos}`, file.path, 'TRUNCATED');
    }
    done += n;
  }
}

/** Reads `len` bytes at `pos` into a new buffer. */
export async function readAt(file: RandomAccessFile, pos: number, len: number): Promise<Uint8Array> {
  const b = new Uint8Array(len);
  await readExact(file, b, 0, len, pos);
  return b;
}

export function dirOf(p: string): string {
  return path.dirname(path.resolve(p));
}
