/**
 * Writing a report, a log, metrics or a picture that a user names: never over
 * a disk. A path that holds a VHD (by content, whatever its name), that is
 * one of the command's inputs (by any name), a folder, or that carries a disk
 * image's extension is refused before anything is written; the file is then
 * replaced atomically. maintain's --report and --metrics use the same tests
 * (maintain/outputs.ts), with its roots as the inputs.
 */
import * as path from 'node:path';
import { VhdToolError } from '../errors.js';
import { FOOTER_COOKIE, FOOTER_SIZE, HEADER_COOKIE, latin1 } from '../format/index.js';
import { nodeFileSystem, readAt, type FileSystem } from './fsys.js';
import { writeAtomically } from './atomic.js';

/** Names disk images carry (VHD, VHDX, and the other formats a storage tree may hold). */
export const DISK_NAME = /\.(a?vhdx?|vmdk|qcow2?|vdi|img|raw)$/i;

export interface ReportFileOptions {
  fs?: FileSystem;
  /** The flag that named the file, for messages ("--svg"). */
  flag: string;
  /** Paths the command reads (disks): the report may not be any of them. */
  inputs: string[];
}

export async function writeReportFile(file: string, text: string, opts: ReportFileOptions): Promise<void> {
  const fs = opts.fs ?? nodeFileSystem;
  await refuseDiskPath(fs, file, opts.flag, opts.inputs);
  const bytes = new TextEncoder().encode(text);
  await writeAtomically(fs, path.resolve(file), async (f) => { await f.write(bytes, 0, bytes.length, 0); }, { replace: true, mode: 0o644 });
}

/** Refuses `file` when it is, or may be, a disk or an input. */
export async function refuseDiskPath(fs: FileSystem, file: string, flag: string, inputs: string[]): Promise<void> {
  const refuse = (why: string) => { throw new VhdToolError('REFUSED', `${flag} ${why}; refusing to write there (nothing was done)`, file); };
  if (DISK_NAME.test(file)) refuse("has a disk image's extension");
  let st;
  try {
    st = await fs.stat(file);
  } catch {
    return;
  }
  if (st.isDirectory) refuse('names a folder');
  for (const i of inputs) {
    const si = await fs.stat(i).catch(() => null);
    if (si && si.dev === st.dev && si.ino === st.ino) refuse(`names the input ${i}`);
  }
  if (st.isFile && await looksLikeVhd(fs, file, st.size)) refuse('names a VHD disk (by its content)');
}

/** True when the file holds a VHD footer (at its end or at 0) or a dynamic header. */
export async function looksLikeVhd(fs: FileSystem, p: string, size: number): Promise<boolean> {
  if (size < FOOTER_SIZE - 1) return false;
  let file;
  try {
    file = await fs.openRead(p);
  } catch {
    return false;
  }
  try {
    const at = [0, size - FOOTER_SIZE, size - FOOTER_SIZE + 1].filter((x) => x >= 0);
    for (const off of at) if (latin1(await readAt(file, off, 8), 0, 8) === FOOTER_COOKIE) return true;
    if (size >= 1024 + 8 && latin1(await readAt(file, 512, 8), 0, 8) === HEADER_COOKIE) return true;
    return false;
  } finally {
    await file.close().catch(() => undefined);
  }
}
