/**
 * An undo journal for rewriting a few small regions of an existing file in
 * place (relink's header and locator sectors), so that a crash at any moment
 * leaves the file's old content or its new content, never a mix.
 *
 * Writing (applyJournaled), with the disk locked:
 *
 *   1. create `.<name>.vhdtool-journal` beside the disk (O_EXCL) holding, for
 *      every region, its old and its new bytes, with a SHA-256 of the whole;
 *      fsync it and its folder;
 *   2. check the disk still holds the old bytes, then write the new ones;
 *   3. fsync the disk (and restore its access and modification times);
 *   4. remove the journal and fsync the folder: the commit point.
 *
 * Until the journal is gone the change has not happened: a reader that finds
 * a complete journal reads the old bytes in its regions (journalOverlay), and
 * the next vhdtool that locks the disk writes them back (recoverJournal, run
 * by io/lock.ts for every command that locks a disk). A journal that does not
 * decode was cut short before step 1 completed, so step 2 never began: it is
 * removed. A journal whose regions hold neither the old nor the new bytes
 * describes some other content (the file was replaced or edited since): it is
 * left in place and the disk is refused until someone looks.
 */
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { VhdToolError, fromSystemError } from '../errors.js';
import type { FileStat, FileSystem, PatchFile, RandomAccessFile } from './fsys.js';

const FORMAT = 'vhdtool-undo-journal';
const VERSION = 1;
/** Bounds on what a journal may describe: it only ever holds a header and locator slots. */
const MAX_REGIONS = 64;
const MAX_REGION_BYTES = 1 << 20;
const MAX_JOURNAL_BYTES = 2 * MAX_REGIONS * MAX_REGION_BYTES;

export interface Patch {
  offset: number;
  old: Uint8Array;
  new: Uint8Array;
}

interface JournalBody {
  format: string;
  version: number;
  /** The disk's file name (the journal sits beside it). */
  disk: string;
  pid: number;
  host: string;
  /** File size when the journal was written (in-place writes never change it). */
  size: number;
  /** Times to restore after writing or rolling back. */
  atimeMs: number;
  mtimeMs: number;
  regions: Array<{ offset: number; old: string; new: string }>;
}

export function journalPathFor(disk: string): string {
  return path.join(path.dirname(disk), `.${path.basename(disk)}.vhdtool-journal`);
}

export function isJournalName(name: string): boolean {
  return /^\..+\.vhdtool-journal$/.test(name);
}

/**
 * Kill points for the crash tests: with VHDTOOL_CRASH_AT=<name> in the
 * environment the process SIGKILLs itself there, a real kill -9 at an exact
 * step. Has no effect otherwise.
 */
function crashPoint(name: string): void {
  if (process.env.VHDTOOL_CRASH_AT === name) process.kill(process.pid, 'SIGKILL');
}

function encodeJournal(body: JournalBody): Uint8Array {
  const line = JSON.stringify(body);
  return new TextEncoder().encode(`${line}\n${createHash('sha256').update(line).digest('hex')}\n`);
}

type Decoded = { ok: true; body: JournalBody; patches: Patch[] } | { ok: false; reason: string };

/** Decodes and validates a journal: every field, every bound. */
export function decodeJournal(bytes: Uint8Array): Decoded {
  const text = new TextDecoder().decode(bytes);
  const m = /^(.*)\n([0-9a-f]{64})\n$/s.exec(text);
  if (!m) return { ok: false, reason: 'incomplete (no checksum line)' };
  if (createHash('sha256').update(m[1]).digest('hex') !== m[2]) return { ok: false, reason: 'checksum mismatch' };
  let body: JournalBody;
  try {
    body = JSON.parse(m[1]) as JournalBody;
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const int = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (body?.format !== FORMAT || body.version !== VERSION) return { ok: false, reason: 'unknown format or version' };
  if (!int(body.size) || typeof body.atimeMs !== 'number' || typeof body.mtimeMs !== 'number' || !Array.isArray(body.regions)) {
    return { ok: false, reason: 'bad fields' };
  }
  if (body.regions.length === 0 || body.regions.length > MAX_REGIONS) return { ok: false, reason: `${body.regions.length} regions` };
  const patches: Patch[] = [];
  for (const r of body.regions) {
    if (!int(r?.offset) || typeof r.old !== 'string' || typeof r.new !== 'string') return { ok: false, reason: 'bad region' };
    const old = Uint8Array.from(Buffer.from(r.old, 'base64'));
    const neu = Uint8Array.from(Buffer.from(r.new, 'base64'));
    if (old.length !== neu.length || old.length === 0 || old.length > MAX_REGION_BYTES) return { ok: false, reason: 'bad region length' };
    if (r.offset + old.length > body.size) return { ok: false, reason: 'region past the end of the file' };
    patches.push({ offset: r.offset, old, new: neu });
  }
  const sorted = [...patches].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].offset < sorted[i - 1].offset + sorted[i - 1].old.length) return { ok: false, reason: 'overlapping regions' };
  }
  return { ok: true, body, patches };
}

/**
 * What a region holds: its old bytes, its new bytes, a mix of the two sector
 * by sector (a multi-sector write torn by a power failure), or something else.
 */
type State = 'old' | 'new' | 'mixed' | 'other';

async function readFully(file: { read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number> }, pos: number, len: number): Promise<Uint8Array> {
  const b = new Uint8Array(len);
  let done = 0;
  while (done < len) {
    const n = await file.read(b, done, len - done, pos + done);
    if (n <= 0) break;
    done += n;
  }
  return done === len ? b : b.subarray(0, done);
}

async function regionStates(file: { read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number> }, patches: Patch[]): Promise<State[]> {
  const out: State[] = [];
  for (const p of patches) {
    const b = await readFully(file, p.offset, p.old.length);
    if (b.length !== p.old.length) out.push('other');
    else if (equal(b, p.old)) out.push('old');
    else if (equal(b, p.new)) out.push('new');
    else {
      let ok = true;
      for (let at = 0; at < b.length && ok; at += 512) {
        const e = Math.min(b.length, at + 512);
        ok = equal(b.subarray(at, e), p.old.subarray(at, e)) || equal(b.subarray(at, e), p.new.subarray(at, e));
      }
      out.push(ok ? 'mixed' : 'other');
    }
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

function mismatch(disk: string, jp: string, why: string): VhdToolError {
  return new VhdToolError('REFUSED',
    `an interrupted relink left the undo journal ${jp}, but the disk no longer matches it (${why}); ` +
    'the disk was changed or replaced since: check it, then remove the journal', disk, { journal: jp });
}

async function readJournal(fs: FileSystem, jp: string): Promise<Decoded | null> {
  let st: FileStat;
  try {
    st = await fs.lstat(jp);
  } catch {
    return null;
  }
  if (!st.isFile) return { ok: false, reason: 'not a regular file' };
  if (st.size > MAX_JOURNAL_BYTES) return { ok: false, reason: `${st.size} bytes, larger than any journal` };
  try {
    return decodeJournal(await fs.readFile(jp));
  } catch (e) {
    // Removed meanwhile (the relink that wrote it finished): there is none.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromSystemError(e, jp, false);
  }
}

export interface Recovery {
  journal: string;
  /** rolled-back: regions rewritten to their old bytes; discarded: an incomplete journal (nothing had been written). */
  action: 'rolled-back' | 'nothing-to-undo' | 'discarded';
  /** Regions that held the new bytes and were restored. */
  restored: number;
}

/**
 * Rolls back what an interrupted in-place rewrite of `disk` left, if
 * anything. The caller holds the disk's lock (no writer is alive).
 */
export async function recoverJournal(fs: FileSystem, disk: string, opts: { trusted?: boolean } = {}): Promise<Recovery | null> {
  const jp = journalPathFor(disk);
  const j = await readJournal(fs, jp);
  if (!j) return null;
  if (!j.ok) {
    // Cut short while it was written: the disk was never touched.
    await fs.unlink(jp).catch((e) => { throw fromSystemError(e, jp, true); });
    await fs.syncDir(path.dirname(jp)).catch(() => undefined);
    return { journal: jp, action: 'discarded', restored: 0 };
  }
  let pf: PatchFile;
  try {
    pf = await fs.openForPatch(disk);
  } catch (e) {
    throw mismatch(disk, jp, `the disk cannot be opened for writing: ${fromSystemError(e, disk, true).message}`);
  }
  let restored = 0;
  try {
    const size = await pf.size();
    if (size !== j.body.size) throw mismatch(disk, jp, `file size ${size}, journal says ${j.body.size}`);
    const states = await regionStates(pf, j.patches);
    // Trusted: the caller itself was writing the disk a moment ago (a write that failed half way).
    const other = opts.trusted ? -1 : states.indexOf('other');
    if (other >= 0) throw mismatch(disk, jp, `the bytes at offset ${j.patches[other].offset} are neither the old nor the new ones`);
    try {
      for (const [i, p] of j.patches.entries()) {
        if (states[i] === 'old') continue;
        await pf.write(p.old, 0, p.old.length, p.offset);
        restored++;
      }
      if (restored) {
        await pf.sync();
        await pf.setTimes(j.body.atimeMs, j.body.mtimeMs);
        await pf.sync();
      }
    } catch (e) {
      throw fromSystemError(e, disk, true);
    }
  } finally {
    await pf.close().catch(() => undefined);
  }
  await fs.unlink(jp).catch((e) => { throw fromSystemError(e, jp, true); });
  await fs.syncDir(path.dirname(jp)).catch(() => undefined);
  return { journal: jp, action: restored ? 'rolled-back' : 'nothing-to-undo', restored };
}

/** Old bytes to show in place of the file's own, region by region. */
export type Overlay = Array<{ offset: number; bytes: Uint8Array }>;

/**
 * For readers (no lock, no write): when a complete journal sits beside
 * `disk`, the old bytes of its regions, so the reader sees the disk as it
 * was before the unfinished rewrite. Null when there is no journal, or only
 * an incomplete one (the rewrite had not begun).
 */
export async function journalOverlay(fs: FileSystem, disk: string, file: RandomAccessFile): Promise<Overlay | null> {
  const jp = journalPathFor(disk);
  const j = await readJournal(fs, jp);
  if (!j || !j.ok) return null;
  const size = await file.size();
  if (size !== j.body.size) throw mismatch(disk, jp, `file size ${size}, journal says ${j.body.size}`);
  const states = await regionStates(file, j.patches);
  const other = states.indexOf('other');
  if (other >= 0) throw mismatch(disk, jp, `the bytes at offset ${j.patches[other].offset} are neither the old nor the new ones`);
  return j.patches.map((p) => ({ offset: p.offset, bytes: p.old }));
}

/** A read-only view of `file` with the overlay's bytes in place of its own. */
export function overlayFile(file: RandomAccessFile, overlay: Overlay): RandomAccessFile {
  const patch = (buf: Uint8Array, off: number, n: number, pos: number) => {
    for (const r of overlay) {
      const a = Math.max(pos, r.offset);
      const b = Math.min(pos + n, r.offset + r.bytes.length);
      if (a < b) buf.set(r.bytes.subarray(a - r.offset, b - r.offset), off + (a - pos));
    }
  };
  const refuse = async (): Promise<never> => {
    throw new Error('internal: an overlaid file is read-only');
  };
  return {
    path: file.path,
    async read(buf, off, len, pos) {
      const n = await file.read(buf, off, len, pos);
      patch(buf, off, n, pos);
      return n;
    },
    readSync(buf, off, len, pos) {
      const n = file.readSync(buf, off, len, pos);
      patch(buf, off, n, pos);
      return n;
    },
    write: refuse,
    writev: refuse,
    truncate: refuse,
    sync: refuse,
    size: () => file.size(),
    close: () => file.close(),
  };
}

export interface JournaledWrite {
  /** The disk as locked (its real path). */
  disk: string;
  patches: Patch[];
  /** Identity the disk must still have (the one the caller read and planned from). */
  expect: { dev: number; ino: number; size: number };
  /** Times to give the disk afterwards (its content does not change, so neither does its modification time). */
  times: { atimeMs: number; mtimeMs: number };
  /** Runs on the fsynced, rewritten disk before the commit; throwing rolls the write back. */
  beforeCommit?: () => Promise<void>;
}

/**
 * Rewrites the regions of `w.disk` in place under an undo journal (see the
 * file comment). On an error the disk is rolled back before returning; if
 * even that fails, the journal stays and the next locker rolls it back.
 */
export async function applyJournaled(fs: FileSystem, w: JournaledWrite): Promise<void> {
  const jp = journalPathFor(w.disk);
  const dir = path.dirname(w.disk);
  const body: JournalBody = {
    format: FORMAT, version: VERSION, disk: path.basename(w.disk), pid: process.pid, host: os.hostname(),
    size: w.expect.size, atimeMs: w.times.atimeMs, mtimeMs: w.times.mtimeMs,
    regions: w.patches.map((p) => ({ offset: p.offset, old: Buffer.from(p.old).toString('base64'), new: Buffer.from(p.new).toString('base64') })),
  };
  const bytes = encodeJournal(body);
  if (!decodeJournal(bytes).ok) throw new VhdToolError('INTERNAL', 'internal error: the undo journal does not decode', w.disk);

  // 1. The journal, durable before the disk is touched.
  let jf: RandomAccessFile;
  try {
    jf = await fs.createExclusive(jp, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new VhdToolError('LOCKED', `an undo journal ${jp} already exists (another relink is writing this disk?)`, w.disk);
    }
    throw fromSystemError(e, jp, true);
  }
  try {
    if (process.env.VHDTOOL_CRASH_AT === 'journal-partial') {
      await jf.write(bytes, 0, bytes.length >>> 1, 0);
      await jf.sync();
      crashPoint('journal-partial');
    }
    await jf.write(bytes, 0, bytes.length, 0);
    await jf.sync();
    await jf.close();
    await fs.syncDir(dir);
  } catch (e) {
    await jf.close().catch(() => undefined);
    await fs.unlink(jp).catch(() => undefined);
    throw fromSystemError(e, jp, true);
  }
  crashPoint('journal-written');

  // 2-3. The disk, in place.
  let pf: PatchFile | null = null;
  let touched = false;
  try {
    pf = await fs.openForPatch(w.disk);
    const st = await pf.stat();
    if (st.dev !== w.expect.dev || st.ino !== w.expect.ino || st.size !== w.expect.size) {
      throw new VhdToolError('VERIFY_FAILED', 'disk changed since it was read (another process replaced or wrote it); nothing was written', w.disk);
    }
    const states = await regionStates(pf, w.patches);
    if (states.some((s) => s !== 'old')) {
      throw new VhdToolError('VERIFY_FAILED', 'disk changed since it was read (another process wrote to it); nothing was written', w.disk);
    }
    for (const [i, p] of w.patches.entries()) {
      touched = true;
      await pf.write(p.new, 0, p.new.length, p.offset);
      crashPoint(`patch-${i}`);
    }
    await pf.sync();
    crashPoint('patched');
    await pf.setTimes(w.times.atimeMs, w.times.mtimeMs);
    await pf.sync();
    await pf.close();
    pf = null;
    await w.beforeCommit?.();
  } catch (e) {
    const err = e instanceof VhdToolError ? e : fromSystemError(e, w.disk, true);
    if (pf) await pf.close().catch(() => undefined);
    if (touched) {
      try {
        await recoverJournal(fs, w.disk, { trusted: true });
      } catch {
        throw new VhdToolError(err.code, `${err.message}; the undo journal ${jp} stays and the next vhdtool run that locks this disk restores its old link`, w.disk, err.data);
      }
    } else {
      await fs.unlink(jp).catch(() => undefined);
    }
    throw err;
  }

  // 4. Commit: the journal goes.
  try {
    await fs.unlink(jp);
  } catch (e) {
    // Still there: the change is not committed. Undo it, so what readers see and what the file holds agree.
    await recoverJournal(fs, w.disk, { trusted: true }).catch(() => undefined);
    throw fromSystemError(e, jp, true);
  }
  crashPoint('journal-removed');
  await fs.syncDir(dir).catch(() => undefined);
}
