/**
 * What a directory holds, byte for byte: every entry (hidden ones included,
 * recursively) with its type, size and SHA-256. Two equal snapshots mean
 * nothing was written, created or left behind.
 */
import { createHash } from 'node:crypto';
import { closeSync, cpSync, lstatSync, openSync, readSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as path from 'node:path';

export type Snapshot = Map<string, string>;

export function snapshot(dir: string): Snapshot {
  const out: Snapshot = new Map();
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(dir, r);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.set(r, `link ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(r, 'dir');
        walk(r);
      } else if (!st.isFile()) out.set(r, `special ${st.mode.toString(8)} ${st.ino}`); // a FIFO or device: never read it
      else out.set(r, `file ${st.size} ${fileDigest(p, st.size, st.ino, st.mtimeMs, st.ctimeMs)}`);
    }
  };
  walk('');
  return out;
}

/** Files above this size (sparse test disks of GiBs) are fingerprinted, not hashed whole. */
const FULL_HASH_LIMIT = 64 * 1024 * 1024;

/**
 * SHA-256 of the file; for huge files, of its identity (inode, mtime, ctime:
 * vhdtool replaces files by rename, which changes them) and its first and
 * last MiB.
 */
function fileDigest(p: string, size: number, ino: number, mtimeMs: number, ctimeMs: number): string {
  if (size <= FULL_HASH_LIMIT) return createHash('sha256').update(readFileSync(p)).digest('hex');
  const h = createHash('sha256').update(`${ino} ${mtimeMs} ${ctimeMs}`);
  const buf = Buffer.alloc(1 << 20);
  const fd = openSync(p, 'r');
  try {
    h.update(buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)));
    h.update(buf.subarray(0, readSync(fd, buf, 0, buf.length, size - buf.length)));
  } finally {
    closeSync(fd);
  }
  return `fingerprint ${h.digest('hex')}`;
}

/** Human-readable differences between two snapshots (empty when equal). */
export function diffSnapshots(before: Snapshot, after: Snapshot): string[] {
  const d: string[] = [];
  for (const [k, v] of before) {
    if (!after.has(k)) d.push(`removed ${k}`);
    else if (after.get(k) !== v) d.push(`changed ${k}`);
  }
  for (const k of after.keys()) if (!before.has(k)) d.push(`new ${k}`);
  return d;
}

export function copyDir(from: string, to: string): void {
  cpSync(from, to, { recursive: true });
}

export function sha256File(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}
