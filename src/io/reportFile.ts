/**
 * Writing a report, a log, metrics or a picture that a user names: never over
 * a disk. A path that holds a VHD (by content, whatever its name), that is
 * one of the command's inputs, or that carries a disk image's extension is
 * refused before anything is written; the file is replaced atomically.
 */
import * as path from 'node:path';
import { VhdToolError } from '../errors.js';
import { nodeFileSystem, type FileSystem } from './fsys.js';
import { writeAtomically } from './atomic.js';

const DISK_EXTENSIONS = /\.(vhd|avhd|vhdx|avhdx|img|raw|qcow2?|vmdk|vdi)$/i;

export interface ReportFileOptions {
  fs?: FileSystem;
  /** Paths the command reads (disks): the report may not be any of them. */
  inputs?: string[];
}

export async function writeReportFile(file: string, text: string, opts: ReportFileOptions = {}): Promise<void> {
  const fs = opts.fs ?? nodeFileSystem;
  await refuseDiskPath(fs, file, opts.inputs ?? []);
  const bytes = new TextEncoder().encode(text);
  await writeAtomically(fs, path.resolve(file), async (f) => { await f.write(bytes, 0, bytes.length, 0); }, { replace: true, mode: 0o644 });
}

/** Refuses `file` when it is, or may be, a disk. */
export async function refuseDiskPath(fs: FileSystem, file: string, inputs: string[]): Promise<void> {
  if (DISK_EXTENSIONS.test(file)) {
    throw new VhdToolError('REFUSED', 'refusing to write a report to a path with a disk image extension', file);
  }
  let st;
  try {
    st = await fs.stat(file);
  } catch {
    return;
  }
  for (const i of inputs) {
    const si = await fs.stat(i).catch(() => null);
    if (si && si.dev === st.dev && si.ino === st.ino) throw new VhdToolError('OUTPUT_IS_INPUT', `is an input of this command (${i}); refusing to write a report over it`, file);
  }
  if (st.isFile && await looksLikeVhd(fs, file, st.size)) {
    throw new VhdToolError('REFUSED', 'holds a VHD disk; refusing to write a report over it', file);
  }
}

async function looksLikeVhd(fs: FileSystem, file: string, size: number): Promise<boolean> {
  if (size < 511) return false;
  const f = await fs.openRead(file);
  try {
    const head = new Uint8Array(8);
    const tail = new Uint8Array(8);
    await f.read(head, 0, 8, 0);
    await f.read(tail, 0, 8, size - 512);
    const t511 = new Uint8Array(8);
    await f.read(t511, 0, 8, size - 511);
    const c = (b: Uint8Array) => new TextDecoder('latin1').decode(b) === 'conectix';
    return c(head) || c(tail) || c(t511);
  } finally {
    await f.close();
  }
}
