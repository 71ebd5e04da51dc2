/**
 * One typed error hierarchy for everything vhdtool reports to a user.
 *
 * Every failure carries a stable `code`, the `path` of the file it is about
 * (when there is one) and a one-line `message` saying what is wrong. The CLI
 * maps codes to exit statuses in one place (see `exitCodeFor`), and prints
 * `vhdtool: <path>: <message>` with no stack trace.
 */

export const ErrorCodes = {
  /** Bad command-line usage (unknown flag, bad value, missing argument). */
  USAGE: 2,
  /** The path does not exist, is not a regular file, or cannot be opened for reading. */
  NOT_FOUND: 3,
  NOT_A_FILE: 3,
  ACCESS: 3,
  /** The file is not a VHD, or its metadata breaks the format. */
  BAD_FORMAT: 4,
  BAD_CHECKSUM: 4,
  TRUNCATED: 4,
  UNSUPPORTED: 4,
  /** The chain cannot be opened: parent missing, wrong UUID, cycle, too deep. */
  PARENT_NOT_FOUND: 5,
  PARENT_MISMATCH: 5,
  CHAIN_CYCLE: 5,
  CHAIN_TOO_DEEP: 5,
  /** The operation is refused to protect data. */
  SAVED_STATE: 6,
  REFUSED: 6,
  OUTPUT_EXISTS: 6,
  OUTPUT_IS_INPUT: 6,
  LOCKED: 6,
  /** Writing the output failed (disk full, permission denied, I/O error); the original is intact. */
  WRITE_FAILED: 7,
  /** The output was written but did not verify; it was discarded and the original is intact. */
  VERIFY_FAILED: 8,
  /** The guest's partition table or file system cannot be read (map, diff, rebase --check, relink's proof). */
  BAD_FILESYSTEM: 9,
  /** Interrupted by a signal (SIGINT/SIGTERM); the original is intact. */
  INTERRUPTED: 130,
  /** A bug in vhdtool. */
  INTERNAL: 70,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class VhdToolError extends Error {
  readonly code: ErrorCode;
  readonly path: string | undefined;
  readonly data: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, path?: string, data: Record<string, unknown> = {}) {
    super(message);
    this.name = 'VhdToolError';
    this.code = code;
    this.path = path;
    this.data = data;
  }

  get exitCode(): number {
    return ErrorCodes[this.code];
  }

  /** The one line shown to users: `<path>: <message>`. */
  get line(): string {
    const text = displaySafe(this.message.replace(/\s*\n\s*/g, ' '));
    return this.path !== undefined ? `${displaySafe(this.path)}: ${text}` : text;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, exitCode: this.exitCode, path: this.path ?? null, message: this.message, ...this.data };
  }

  /** Returns a copy of this error attributed to `path` (when it names no file yet). */
  withPath(path: string): VhdToolError {
    if (this.path !== undefined) return this;
    const e = new VhdToolError(this.code, this.message, path, this.data);
    return e;
  }
}

/**
 * Text safe to print on one terminal line: control characters (which a
 * hostile file can put in a locator path or a cookie: escape sequences,
 * carriage returns, line separators) are shown as \xNN / \uNNNN escapes.
 */
export function displaySafe(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}

/**
 * Eight bytes of a cookie (or any short latin-1 field) as text: printable
 * ASCII as it is, every other byte as \xNN, in double quotes: "conectix",
 * "cxspar\x00\x00", "\x1ey\xd2\xa7\x8b\x0f\xd0o".
 */
export function asText(s: string): string {
  let out = '';
  for (const c of s) {
    const n = c.charCodeAt(0);
    out += n >= 0x20 && n < 0x7f && c !== '"' && c !== '\\' ? c : `\\x${n.toString(16).padStart(2, '0')}`;
  }
  return `"${out}"`;
}

/** Format violations found while decoding a file. */
export class FormatError extends VhdToolError {
  constructor(message: string, path?: string, code: 'BAD_FORMAT' | 'BAD_CHECKSUM' | 'TRUNCATED' | 'UNSUPPORTED' = 'BAD_FORMAT', data: Record<string, unknown> = {}) {
    super(code, message, path, data);
    this.name = 'FormatError';
  }
}

export function isVhdToolError(e: unknown): e is VhdToolError {
  return e instanceof VhdToolError;
}

/** Maps a Node system error raised while touching `path` to a VhdToolError. */
export function fromSystemError(e: unknown, path: string, writing: boolean): VhdToolError {
  if (e instanceof VhdToolError) return e.withPath(path);
  const err = e as NodeJS.ErrnoException;
  // A system error carries an errno name (ENOENT, EIO...); Node's own ERR_* codes are argument errors.
  const sys = typeof err?.code === 'string' && /^E[A-Z0-9]+$/.test(err.code) ? err.code : undefined;
  const what = err?.message ? String(err.message).split('\n')[0] : String(e);
  if (sys === undefined) {
    // Not the file system's doing: a bug in vhdtool (a TypeError, a RangeError...). Never disguise it
    // as "cannot read" or "write failed": it is an internal error (exit 70), and the fuzzers must see it.
    const internal = new VhdToolError('INTERNAL', `internal error: ${what} (please report this; set VHDTOOL_DEBUG=1 for details)`, path);
    Object.defineProperty(internal, 'cause', { value: e, enumerable: false });
    return internal;
  }
  if (writing) {
    switch (sys) {
      case 'ENOSPC': return new VhdToolError('WRITE_FAILED', 'no space left on device', path, { errno: sys });
      case 'EDQUOT': return new VhdToolError('WRITE_FAILED', 'disk quota exceeded', path, { errno: sys });
      case 'EACCES': case 'EPERM': return new VhdToolError('WRITE_FAILED', 'permission denied', path, { errno: sys });
      case 'EROFS': return new VhdToolError('WRITE_FAILED', 'read-only file system', path, { errno: sys });
      case 'EIO': return new VhdToolError('WRITE_FAILED', 'I/O error', path, { errno: sys });
      default: return new VhdToolError('WRITE_FAILED', sys ? `write failed (${sys})` : `write failed: ${what}`, path, { errno: sys ?? null });
    }
  }
  switch (sys) {
    case 'ENOENT': return new VhdToolError('NOT_FOUND', 'no such file', path, { errno: sys });
    case 'ENOTDIR': return new VhdToolError('NOT_FOUND', 'no such file (a path component is not a directory)', path, { errno: sys });
    case 'EISDIR': return new VhdToolError('NOT_A_FILE', 'is a directory, not a VHD file', path, { errno: sys });
    case 'EACCES': case 'EPERM': return new VhdToolError('ACCESS', 'permission denied', path, { errno: sys });
    case 'ELOOP': return new VhdToolError('NOT_FOUND', 'too many levels of symbolic links', path, { errno: sys });
    case 'EIO': return new VhdToolError('ACCESS', 'I/O error while reading', path, { errno: sys });
    default: return new VhdToolError('ACCESS', sys ? `cannot read (${sys})` : `cannot read: ${what}`, path, { errno: sys ?? null });
  }
}
