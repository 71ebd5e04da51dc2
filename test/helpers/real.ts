/**
 * The real-world fixtures in ../shared/fixtures/real (never copied into the
 * project). Tests using them skip when the folder is absent.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REAL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/real');
export const HAVE_REAL = existsSync(path.join(REAL_DIR, 'logical-sha256.txt'));

/** name -> expected sha256 of the guest-visible content (names as listed, .gz/.bz2 included). */
export function expectedHashes(): Map<string, string> {
  const m = new Map<string, string>();
  if (!HAVE_REAL) return m;
  for (const line of readFileSync(path.join(REAL_DIR, 'logical-sha256.txt'), 'utf8').split('\n')) {
    const t = line.trim().split(/\s+/);
    if (t.length === 2) m.set(t[1], t[0]);
  }
  return m;
}

/** Files MANIFEST.md marks as broken as shipped (bad checksums). */
export const BROKEN = new Set(['image.vhd', 'image-differential.vhd']);

const CACHE = path.join(tmpdir(), 'vhdtool-real-cache');

/**
 * Path of a real fixture ready to open: plain files in place (read-only),
 * compressed ones decompressed once into a cache under the system temp dir.
 */
export function realPath(name: string): string {
  const src = path.join(REAL_DIR, name);
  if (!/\.(gz|bz2)$/.test(name)) return src;
  mkdirSync(CACHE, { recursive: true });
  const out = path.join(CACHE, name.replace(/\.(gz|bz2)$/, ''));
  if (existsSync(out) && statSync(out).size > 0) return out;
  const tmp = `${out}.${process.pid}.part`;
  const tool = name.endsWith('.gz') ? 'gzip' : 'bzip2';
  execFileSync('sh', ['-c', `${tool} -dc "$1" > "$2"`, 'sh', src, tmp]);
  renameSync(tmp, out);
  return out;
}

/** Every fixture name listed in logical-sha256.txt. */
export function realNames(): string[] {
  return [...expectedHashes().keys()];
}
