/**
 * What a directory holds, byte for byte: every entry (hidden ones included,
 * recursively) with its type, size and SHA-256. Two equal snapshots mean
 * nothing was written, created or left behind.
 */
import { createHash } from 'node:crypto';
import { cpSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
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
      } else out.set(r, `file ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk('');
  return out;
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
