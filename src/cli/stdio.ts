/**
 * Lines to standard output and standard error, written straight to their
 * descriptors.
 *
 * Why not process.stdout and process.stderr: the first touch of either makes
 * a stream object, and on a pipe (a script reading vhdtool's output) that
 * loads Node's stream and net modules: ~5-8 ms of a command's start-up here,
 * more than `vhdtool info` spends on its work. A line written here is
 * written whole before the call returns, so lines keep their order and
 * nothing is left in a buffer when the process exits.
 *
 * On a descriptor another process made non-blocking, a write can meet
 * EAGAIN; from then on that descriptor's lines go through Node's stream
 * (which waits for the pipe), in order. Standard output closed early (EPIPE)
 * stops the process as SIGPIPE would (exit 141), after removing
 * temporaries; any other failure to write it exits 7. A failing standard
 * error is ignored: there is nowhere left to report to.
 */
import { fstatSync, writeSync } from 'node:fs';
import { ErrorCodes } from '../errors.js';
import { removeLiveFilesSync } from '../io/live.js';

/** Exit status when standard output is closed early, as for a process killed by SIGPIPE (128 + 13). */
export const EXIT_PIPE = 141;

type Fd = 1 | 2;

/** Descriptors whose writes go through Node's stream since a write met EAGAIN. */
const streamed = new Set<Fd>();

function nodeStream(fd: Fd): NodeJS.WriteStream {
  return fd === 1 ? process.stdout : process.stderr;
}

/** Writes all of `buf` to `fd`; returns what is left when the descriptor would block. */
function writeAll(fd: Fd, buf: Buffer): Buffer | null {
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return buf.subarray(off);
      throw e;
    }
  }
  return null;
}

function failed(fd: Fd, e: unknown): void {
  if (fd === 2) return;
  removeLiveFilesSync();
  process.exit((e as NodeJS.ErrnoException).code === 'EPIPE' ? EXIT_PIPE : ErrorCodes.WRITE_FAILED);
}

/** Node's stream for `fd`, with the same failure handling as writeText's (installed once). */
function guarded(fd: Fd): NodeJS.WriteStream {
  const s = nodeStream(fd);
  if (s.listenerCount('error') === 0) s.on('error', (e) => failed(fd, e));
  return s;
}

function toStream(fd: Fd, data: Buffer): void {
  streamed.add(fd);
  guarded(fd).write(data);
}

/** Writes `text` to standard output (1) or standard error (2). */
export function writeText(fd: Fd, text: string): void {
  const buf = Buffer.from(text);
  if (streamed.has(fd)) {
    toStream(fd, buf);
    return;
  }
  try {
    const rest = writeAll(fd, buf);
    if (rest) toStream(fd, rest);
  } catch (e) {
    failed(fd, e);
  }
}

/**
 * Is the descriptor a terminal? Only a character device can be one, and
 * fstat costs nothing to load; only then is Node's stream asked (which
 * loads the tty and stream modules).
 */
export function isTerminal(fd: Fd): boolean {
  try {
    const st = fstatSync(fd);
    // Linux's memory devices (major 1: /dev/null, /dev/zero, /dev/full) are character devices, never terminals.
    if (!st.isCharacterDevice() || (process.platform === 'linux' && ((st.rdev >> 8) & 0xfff) === 1)) return false;
  } catch {
    return false;
  }
  return Boolean(nodeStream(fd).isTTY);
}

/** Standard output as Node's stream, for cat's bytes; a failing write stops the process as writeText's does. */
export function stdoutStream(): NodeJS.WriteStream {
  return guarded(1);
}

/** Standard error's stream, when it is a terminal (for the spinner, which draws there); null otherwise. */
export function stderrTerminal(): NodeJS.WriteStream | null {
  return isTerminal(2) ? guarded(2) : null;
}
