/**
 * The kernel's reads: exact positional reads on read-only descriptors opened
 * for one task and closed after it.
 *
 * A short read (under SMALL_READ) is served from a read-ahead window of its
 * file, from which the many one-sector stretches of a unit whose runs
 * alternate between layers (a child written sector by sector over its
 * parent, or the sectors compact keeps) are copied. Measured on the benchmark
 * chain: compact's tasks made 294,000 reads, nearly all of one sector, each a
 * system call; windows make them about 5,500. A window starts at MIN_AHEAD
 * bytes and grows fourfold, up to READ_AHEAD, while the reads of its file
 * move forward without skipping more than a window; a jump starts it small
 * again, so scattered sectors do not each cost a large read.
 *
 * A window lives for one task only (closeAll drops them all): the files a
 * task reads do not change while it runs (its part of an output being
 * verified was written before the task was handed out), but a later task
 * may read bytes of an output written since.
 */
import * as fs from 'node:fs';

/** Prefix of the message of a short-read error, so the main thread can type it. */
export const TRUNCATED_MARK = 'VHDTOOL_TRUNCATED:';

/** Reads shorter than this go through their file's window. */
export const SMALL_READ = 64 * 1024;
/** A window's first read, and its read after a jump. */
export const MIN_AHEAD = 16 * 1024;
/** A window's largest read. */
export const READ_AHEAD = 256 * 1024;
/** Windows kept at once (files a task reads: its chain's layers and an output); past it one is reused. */
const MAX_WINDOWS = 8;

interface Window {
  buf: Buffer;
  /** File offset of buf[0]. */
  pos: number;
  /** Valid bytes in buf. */
  len: number;
  /** Bytes the next refill reads. */
  ahead: number;
  /** End of the last request served (for telling forward reads from jumps). */
  next: number;
}

export class TaskReader {
  private readonly fds = new Map<string, number>();
  private readonly windows = new Map<string, Window>();
  private readonly spare: Buffer[] = [];

  /** Reads exactly `len` bytes at `pos` of `path` into `buf[off..]`; a file that ends first is an error marked TRUNCATED_MARK. */
  read(path: string, buf: Buffer, off: number, len: number, pos: number): void {
    const done = len < SMALL_READ ? this.fromWindow(path, buf, off, len, pos) : 0;
    if (done < len) this.readExact(path, buf, off + done, len - done, pos + done, pos, len);
  }

  /** Closes every descriptor and drops every window (the task is over). */
  closeAll(): void {
    for (const fd of this.fds.values()) {
      try { fs.closeSync(fd); } catch { /* already closed */ }
    }
    this.fds.clear();
    for (const w of this.windows.values()) this.spare.push(w.buf);
    this.windows.clear();
  }

  private fd(path: string): number {
    let fd = this.fds.get(path);
    if (fd === undefined) {
      fd = fs.openSync(path, fs.constants.O_RDONLY);
      this.fds.set(path, fd);
    }
    return fd;
  }

  /** `pos0` and `len0`: the whole request, for the error message. */
  private readExact(path: string, buf: Buffer, off: number, len: number, pos: number, pos0: number, len0: number): void {
    const fd = this.fd(path);
    let done = 0;
    while (done < len) {
      const n = fs.readSync(fd, buf, off + done, len - done, pos + done);
      if (n <= 0) {
        throw new Error(`${TRUNCATED_MARK}${path}\0file ends at byte ${pos + done} while reading ${len0} bytes at offset ${pos0}`);
      }
      done += n;
    }
  }

  /** Copies what the window holds (refilling it from `pos` on a miss); returns the bytes copied (fewer at the end of the file). */
  private fromWindow(path: string, buf: Buffer, off: number, len: number, pos: number): number {
    const w = this.windowOf(path);
    let done = 0;
    while (done < len) {
      const p = pos + done;
      if (p < w.pos || p >= w.pos + w.len) {
        const forward = p >= w.next && p - w.next <= w.len;
        w.ahead = forward ? Math.min(READ_AHEAD, w.ahead * 4) : MIN_AHEAD;
        w.pos = p;
        w.len = 0;
        w.len = fs.readSync(this.fd(path), w.buf, 0, Math.max(w.ahead, len - done), p);
        if (w.len <= 0) break;
      }
      const from = p - w.pos;
      const take = Math.min(len - done, w.len - from);
      w.buf.copy(buf, off + done, from, from + take);
      done += take;
    }
    w.next = pos + done;
    return done;
  }

  private windowOf(path: string): Window {
    let w = this.windows.get(path);
    if (w) return w;
    if (this.windows.size >= MAX_WINDOWS) {
      const [oldest, old] = this.windows.entries().next().value as [string, Window];
      this.windows.delete(oldest);
      this.spare.push(old.buf);
    }
    w = { buf: this.spare.pop() ?? Buffer.allocUnsafe(READ_AHEAD), pos: 0, len: 0, ahead: MIN_AHEAD / 4, next: -1 };
    this.windows.set(path, w);
    return w;
  }
}
