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
import * as fsp from 'node:fs/promises';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from '../errors.js';
import { readXattrs, writeXattrs, type Xattr } from './xattr.js';

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

class NodePatchFile implements PatchFile {
  constructor(readonly path: string, private readonly fh: fsp.FileHandle) {}

  async read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
    return (await this.fh.read(buf, off, len, pos)).bytesRead;
  }

  async write(buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
    const size = (await this.fh.stat()).size;
    if (pos < 0 || pos + len > size) throw Object.assign(new Error(`in-place write of ${len} bytes at ${pos} would extend the file (${size} bytes)`), { code: 'EINVAL' });
    let done = 0;
    while (done < len) {
      const r = await this.fh.write(buf, off + done, len - done, pos + done);
      if (r.bytesWritten <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
      done += r.bytesWritten;
    }
  }

  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }

  async stat(): Promise<FileStat> {
    return toStat(await this.fh.stat());
  }

  setTimes(atimeMs: number, mtimeMs: number): Promise<void> {
    return this.fh.utimes(atimeMs / 1000, mtimeMs / 1000);
  }

  sync(): Promise<void> {
    return this.fh.sync();
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

class NodeFile implements RandomAccessFile {
  constructor(readonly path: string, private readonly fh: fsp.FileHandle) {}

  async read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
    const r = await this.fh.read(buf, off, len, pos);
    return r.bytesRead;
  }

  readSync(buf: Uint8Array, off: number, len: number, pos: number): number {
    return fs.readSync(this.fh.fd, buf, off, len, pos);
  }

  async write(buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
    let done = 0;
    while (done < len) {
      const r = await this.fh.write(buf, off + done, len - done, pos + done);
      if (r.bytesWritten <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
      done += r.bytesWritten;
    }
  }

  async writev(bufs: Uint8Array[], pos: number): Promise<void> {
    let total = 0;
    for (const b of bufs) total += b.length;
    const r = await this.fh.writev(bufs, pos);
    if (r.bytesWritten === total) return;
    // Short vectored write: finish buffer by buffer.
    let skip = r.bytesWritten;
    let p = pos;
    for (const b of bufs) {
      if (skip >= b.length) { skip -= b.length; p += b.length; continue; }
      await this.write(b, skip, b.length - skip, p + skip);
      p += b.length;
      skip = 0;
    }
  }

  async size(): Promise<number> {
    return (await this.fh.stat()).size;
  }

  truncate(len: number): Promise<void> {
    return this.fh.truncate(len);
  }

  setTimes(atimeMs: number, mtimeMs: number): Promise<void> {
    return this.fh.utimes(atimeMs / 1000, mtimeMs / 1000);
  }

  sync(): Promise<void> {
    return this.fh.sync();
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

export const nodeFileSystem: FileSystem = {
  async openRead(p) {
    return new NodeFile(p, await fsp.open(p, fs.constants.O_RDONLY));
  },
  async createExclusive(p, mode = 0o644) {
    return new NodeFile(p, await fsp.open(p, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, mode));
  },
  async openForPatch(p) {
    const fh = await fsp.open(p, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
    const st = await fh.stat().catch(async (e: unknown) => { await fh.close(); throw e; });
    if (!st.isFile()) {
      await fh.close();
      throw Object.assign(new Error(`${p} is not a regular file`), { code: 'EINVAL' });
    }
    return new NodePatchFile(p, fh);
  },
  async stat(p) {
    return toStat(await fsp.stat(p));
  },
  async lstat(p) {
    return toStat(await fsp.lstat(p));
  },
  realpath: (p) => fsp.realpath(p),
  readdir: (p) => fsp.readdir(p, { withFileTypes: true }),
  rename: (a, b) => fsp.rename(a, b),
  link: (a, b) => fsp.link(a, b),
  unlink: (p) => fsp.unlink(p),
  async syncDir(dir) {
    const fh = await fsp.open(dir, fs.constants.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  async readFile(p) {
    return new Uint8Array(await fsp.readFile(p));
  },
  async mkdir(p) {
    await fsp.mkdir(p, { recursive: true });
  },
  async getAttributes(p) {
    const st = await fsp.stat(p);
    return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777, xattrs: await readXattrs(p) };
  },
  async setAttributes(p, attrs) {
    // Through a descriptor opened without following a link: the owner and mode go to the file made, nothing else.
    const fh = await fsp.open(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      await fh.chown(attrs.uid, attrs.gid);
      // After chown, which clears setuid and setgid; an ACL (an extended attribute) then sets its own mask.
      await fh.chmod(attrs.mode);
    } finally {
      await fh.close();
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
