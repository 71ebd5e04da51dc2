/**
 * Scans an ext image with the reader and checks every figure against the
 * independent readers (extOracle.ts): the free map against dumpe2fs, each
 * file's blocks, map blocks, size and generation against debugfs stat, each
 * path against Sleuth Kit fls and debugfs ncheck, each content against icat,
 * and the three maps (free, metadata, file data) against each other.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, expect } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { fileSource } from '../../src/io/rawSource.js';
import { RangeSet, RangeSetBuilder } from '../../src/guest/ranges.js';
import type { ByteSource } from '../../src/guest/source.js';
import type { GuestFile, VolumeScan } from '../../src/guest/volume.js';
import { ExtVolume } from '../../src/guest/ext/volume.js';
import { debugfsDump, debugfsStat, dumpe2fsFree, e2fsckClean, flsPaths, icat, ncheck } from './extOracle.js';

const INLINE_DATA_FL = 0x10000000;

export interface Scanned {
  vol: ExtVolume;
  scan: VolumeScan;
  files: GuestFile[];
}

export async function withImageSource<T>(img: string, fn: (src: ByteSource) => Promise<T>): Promise<T> {
  const file = await nodeFileSystem.openRead(img);
  try {
    return await fn(fileSource(file, statSync(img).size));
  } finally {
    await file.close();
  }
}

export async function scanSource(src: ByteSource): Promise<Scanned> {
  const vol = await ExtVolume.open(src);
  const files: GuestFile[] = [];
  const scan = await vol.scan({ onFile: (f) => files.push(f) });
  return { vol, scan, files };
}

const open: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  for (const f of open.splice(0)) await f.close();
});

/** Scans a raw image; the file stays open (for readContent) until the test file ends. */
export async function scanImage(img: string): Promise<Scanned> {
  const file = await nodeFileSystem.openRead(img);
  open.push(file);
  return scanSource(fileSource(file, statSync(img).size));
}

export async function contentOf(vol: ExtVolume, f: GuestFile): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of vol.readContent(f)) parts.push(c);
  return Buffer.concat(parts);
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export interface VerifyOptions {
  /** Compare paths with Sleuth Kit fls too (default true). */
  tsk?: boolean;
  /** Compare content with icat for files up to this size (default 4 MiB; 0: none). */
  contentLimit?: number;
  /** Expect no anomalies (default true; the image must pass e2fsck -fn). */
  clean?: boolean;
}

/** Checks a scan of `img` (made by `scanImage` or through a chain) against the oracles; returns figures for further checks. */
export async function verifyAgainstOracles(img: string, s: Scanned, opts: VerifyOptions = {}): Promise<void> {
  const { vol, scan, files } = s;
  const bs = vol.clusterSize;
  if (opts.clean ?? true) {
    const fsck = e2fsckClean(img);
    expect(fsck.clean, fsck.output).toBe(true);
    expect(scan.anomalies).toEqual([]);
  }

  // Free map: libext2fs' bitmaps (BLOCK_UNINIT computed) byte for byte.
  expect(scan.free.toArray()).toEqual(RangeSet.from(dumpe2fsFree(img).map(([a, b]) => [a * bs, b * bs])).toArray());

  // The three maps partition the volume.
  const all = RangeSet.of(0, vol.size);
  expect(scan.free.intersectBytes(scan.metadata)).toBe(0);
  expect(scan.free.intersectBytes(scan.fileData)).toBe(0);
  expect(scan.metadata.intersectBytes(scan.fileData)).toBe(0);
  expect(scan.free.union(scan.metadata).union(scan.fileData).equals(all)).toBe(true);

  // Each inode against debugfs stat.
  const stats = debugfsStat(img, files.map((f) => f.ref));
  const regularData = new RangeSetBuilder();
  for (const f of files) {
    const st = stats.get(f.ref)!;
    expect(st, `inode ${f.ref}`).toBeDefined();
    expect(f.id).toBe(`ino:${f.ref}:${st.generation}`);
    expect(f.directory, f.path).toBe(st.type === 'directory');
    if (f.ref !== 7) expect(f.size, f.path).toBe(st.size);
    if (f.ref === 7) continue;
    const data = RangeSet.from(st.runs.map(([, p, n]) => [p * bs, (p + n) * bs] as [number, number]));
    expect(f.data.toArray(), `data of ${f.path}`).toEqual(data.toArray());
    const tree = st.tree.map((b) => [b * bs, (b + 1) * bs] as [number, number]);
    if (st.fileAcl) tree.push([st.fileAcl * bs, (st.fileAcl + 1) * bs]);
    const inodeBytes = f.meta.subtract(RangeSet.from(tree));
    expect(inodeBytes.bytes, `inode bytes of ${f.path}`).toBe(vol.superblock.inodeSize);
    for (const [a, b] of tree) expect(f.meta.covers(a, b), `map block of ${f.path}`).toBe(true);
    expect(f.meta.bytes, `meta of ${f.path}`).toBe(RangeSet.from(tree).bytes + vol.superblock.inodeSize);
    if (st.type === 'regular' && !f.system) regularData.addSet(f.data);
  }
  expect(scan.fileData.toArray()).toEqual(regularData.build().toArray());

  // Paths: one per inode, one of the names debugfs ncheck and Sleuth Kit fls give.
  const named = files.filter((f) => !f.system && f.ref !== 2);
  const nc = ncheck(img, named.map((f) => f.ref));
  for (const f of named) expect(nc.get(f.ref) ?? [], `ncheck of inode ${f.ref}`).toContain(f.path);
  if (opts.tsk ?? true) {
    const fls = flsPaths(img);
    for (const f of named) expect(fls.get(f.ref)?.paths ?? [], `fls of inode ${f.ref}`).toContain(f.path);
    expect([...fls.keys()].sort((a, b) => a - b)).toEqual(named.map((f) => f.ref).sort((a, b) => a - b));
  }
  expect(scan.files + scan.directories).toBe(files.length);
  expect(scan.directories).toBe(files.filter((f) => f.directory).length);

  // Content: debugfs dump (one process), Sleuth Kit icat for inline data, stat's target for fast symlinks.
  const limit = opts.contentLimit ?? 4 * 1024 * 1024;
  const picked = files.filter((f) => !f.directory && !f.system && f.size <= limit
    && ['regular', 'symlink'].includes(stats.get(f.ref)!.type));
  // icat costs a process per file: the first dozen inline files get it, the rest debugfs dump cut to i_size.
  const inline = picked.filter((f) => stats.get(f.ref)!.fastLink === undefined && (stats.get(f.ref)!.flags & INLINE_DATA_FL));
  inline.sort((a, b) => Number(b.size > 60) - Number(a.size > 60));
  const viaIcat = new Set(inline.slice(0, 12).map((f) => f.ref));
  const plain = picked.filter((f) => stats.get(f.ref)!.fastLink === undefined && !viaIcat.has(f.ref));
  const dumped = debugfsDump(img, plain.map((f) => f.ref), mkdtempSync(path.join(tmpdir(), 'vhdtool-ext-dump-')));
  try {
    for (const f of picked) {
      const st = stats.get(f.ref)!;
      const mine = await contentOf(vol, f);
      expect(mine.length, f.path).toBe(f.size);
      const want = st.fastLink !== undefined ? Buffer.from(st.fastLink)
        : viaIcat.has(f.ref) ? icat(img, f.ref) : readFileSync(dumped.get(f.ref)!).subarray(0, st.size);
      expect(sha(mine), `content of ${f.path}`).toBe(sha(want));
    }
  } finally {
    rmSync(path.dirname(dumped.values().next().value ?? '/nonexistent/x'), { recursive: true, force: true });
  }
}
