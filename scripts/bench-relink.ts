/**
 * Data for `npm run bench -- --only relink`: the cost of relink's
 * guest-filesystems check, one pass over a volume's metadata through the
 * composed chain (two when the first finds anomalies).
 *
 * Built once in .bench-cache/relink-<GEN>/ (meta.json last), with the file
 * systems' own tools:
 *   ext4  8 GiB, mkfs.ext4 -d from a tree of 200 folders x 250 files (50,000
 *         files, 100 B to 4 KiB): base-ext4.vhd, a fixed disk (the raw image
 *         and a footer);
 *   ntfs  8 GiB, mkntfs and the same tree copied in through ntfs-3g (when
 *         FUSE mounts work here): base-ntfs.vhd.
 * Over each, two differencing children:
 *   same  holds copies of some of the volume's metadata sectors (its
 *         superblock or boot sector, the start of the inode table or $MFT),
 *         byte for byte: the composed view is the parent's, consistent, one
 *         scan;
 *   lost  marks free clusters allocated in the allocation map (debugfs setb;
 *         a $Bitmap byte set): allocated clusters nothing owns, an anomaly
 *         the parent alone lacks, so the parent is scanned too, and the
 *         relink is refused (exit 9).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { encodeFooter, sealFooter, type Uuid } from '../src/format/index.js';
import { nodeFileSystem } from '../src/io/fsys.js';
import { fileSource } from '../src/io/rawSource.js';
import { newFooter } from '../src/vhd/build.js';
import { writeSynthLayer, type SynthWrite } from '../src/synth/build.js';
import { NtfsVolume } from '../src/guest/ntfs/volume.js';
import type { GuestFile } from '../src/guest/volume.js';

export const RELINK_GEN = 'g3';
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SIZE = 8 * GiB;
const DIRS = 200;
const PER_DIR = 250;

export interface RelinkVolume {
  fs: 'ext4' | 'ntfs';
  base: string;
  same: string;
  lost: string;
  files: number;
  /** Bytes of the volume the file system uses (its own count). */
  usedBytes: number;
}

export interface RelinkMeta {
  volumes: RelinkVolume[];
  /** Why a volume is missing (a tool or FUSE not available). */
  skipped: string[];
  generatedSeconds: number;
}

const has = (cmd: string, arg = '--version') => spawnSync(cmd, [arg], { stdio: 'ignore' }).error === undefined;

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** DIRS folders of PER_DIR small files (seeded sizes, random bytes). */
function makeTree(dir: string): number {
  let seed = 0x5eed;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);
  const buf = new Uint8Array(4096);
  randomFillSync(buf);
  for (let d = 0; d < DIRS; d++) {
    const sub = path.join(dir, `folder-${d}`);
    mkdirSync(sub, { recursive: true });
    for (let f = 0; f < PER_DIR; f++) writeFileSync(path.join(sub, `file-${f}.dat`), buf.subarray(0, 100 + (next() % 3996)));
  }
  return DIRS * PER_DIR;
}

/** Appends a fixed-disk footer to a raw image: the file becomes a fixed VHD of the image. */
function toFixedVhd(raw: string, out: string): Uuid {
  const footer = sealFooter(newFooter({ type: 'fixed', virtualSize: SIZE }));
  const fd = openSync(raw, 'r+');
  try {
    writeSync(fd, encodeFooter(footer), 0, 512, SIZE);
  } finally {
    closeSync(fd);
  }
  spawnSync('mv', [raw, out]);
  return footer.uniqueId;
}

function readAt(file: string, offset: number, length: number): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const b = new Uint8Array(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** Sectors where two images differ, looked for in [0, limit). */
function diffPrefix(a: string, b: string, limit: number): SynthWrite[] {
  const out: SynthWrite[] = [];
  for (let at = 0; at < limit; at += 4 * MiB) {
    const x = readAt(a, at, 4 * MiB);
    const y = readAt(b, at, 4 * MiB);
    for (let s = 0; s < 8192; s++) {
      let same = true;
      for (let i = s * 512; i < s * 512 + 512 && same; i++) same = x[i] === y[i];
      if (!same) out.push({ sector: at / 512 + s, data: y.slice(s * 512, s * 512 + 512) });
    }
  }
  return out;
}

async function children(dir: string, base: string, uuid: Uuid, same: SynthWrite[], lost: SynthWrite[], name: string): Promise<{ same: string; lost: string }> {
  const parent = { path: base, uniqueId: uuid };
  const a = path.join(dir, `${name}-same.vhd`);
  const b = path.join(dir, `${name}-lost.vhd`);
  await writeSynthLayer(nodeFileSystem, a, { type: 'differencing', virtualSize: SIZE, writes: same }, parent);
  await writeSynthLayer(nodeFileSystem, b, { type: 'differencing', virtualSize: SIZE, writes: lost }, parent);
  return { same: a, lost: b };
}

async function ext4(dir: string, tree: string, files: number): Promise<RelinkVolume> {
  const raw = path.join(dir, 'ext4.img');
  closeSync(openSync(raw, 'w'));
  spawnSync('truncate', ['-s', String(SIZE), raw]);
  run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', tree, '-E', 'root_owner=0:0', raw]);
  const used = /Block count:\s+(\d+)[\s\S]*Free blocks:\s+(\d+)/.exec(run('dumpe2fs', ['-h', raw]));
  // The user's change, on a copy: a free block of the first flex group (whose bitmaps lie in the first
  // MiBs, where the copy is compared) marked in use.
  const free = Number(/Free blocks found: (\d+)/.exec(run('debugfs', ['-R', 'ffb 1 20000', raw]))?.[1]);
  if (!(free > 0 && free < 16 * 32768)) throw new Error(`bench-relink: no free block in the first flex group (${free})`);
  const head = path.join(dir, 'ext4-copy.img');
  run('cp', ['--sparse=always', raw, head]);
  run('debugfs', ['-w', '-R', `setb ${free}`, head]);
  const lost = diffPrefix(raw, head, 64 * MiB);
  rmSync(head);
  // Byte-for-byte copies: the superblock and the first 1 MiB of metadata after it.
  const same: SynthWrite[] = [{ sector: 2, data: readAt(raw, 1024, 1 * MiB) }];
  const base = path.join(dir, 'base-ext4.vhd');
  const uuid = toFixedVhd(raw, base);
  const c = await children(dir, base, uuid, same, lost, 'ext4');
  return { fs: 'ext4', base, ...c, files, usedBytes: used ? (Number(used[1]) - Number(used[2])) * 4096 : 0 };
}

async function ntfs(dir: string, tree: string, files: number): Promise<RelinkVolume> {
  const raw = path.join(dir, 'ntfs.img');
  closeSync(openSync(raw, 'w'));
  spawnSync('truncate', ['-s', String(SIZE), raw]);
  run('mkntfs', ['-F', '-Q', '-q', raw]);
  const mnt = path.join(dir, 'mnt');
  mkdirSync(mnt);
  run('ntfs-3g', ['-o', 'big_writes', raw, mnt]);
  try {
    run('cp', ['-r', `${tree}/.`, mnt]);
  } finally {
    run('umount', [mnt]);
    rmSync(mnt, { recursive: true });
  }
  const f = await nodeFileSystem.openRead(raw);
  let bitmap: GuestFile | null = null;
  let firstFree = 0;
  let used = 0;
  let recordBytes: { at: number; length: number } = { at: 0, length: 0 };
  try {
    const vol = await NtfsVolume.open(fileSource(f, SIZE));
    const scan = await vol.scan({ onFile: (g) => { if (g.path === '$Bitmap') bitmap = g; if (g.path === '$MFT') recordBytes = { at: g.data.first, length: Math.min(g.data.end(0) - g.data.first, 1 * MiB) }; } });
    // Eight free clusters (one $Bitmap byte) inside the first long free run.
    const cs = vol.clusterSize;
    let i = 0;
    while (i < scan.free.count && scan.free.end(i) - scan.free.start(i) < 64 * cs) i++;
    if (i === scan.free.count) throw new Error('bench-relink: no free run of 64 clusters');
    firstFree = Math.ceil(scan.free.start(i) / cs / 8) * 8 + 16;
    used = SIZE - scan.free.bytes;
  } finally {
    await f.close();
  }
  const bm = bitmap as GuestFile | null;
  if (!bm || bm.data.count !== 1) throw new Error('bench-relink: $Bitmap is not one run');
  const byteAt = bm.data.first + Math.floor(firstFree / 8);
  const sector = Math.floor(byteAt / 512);
  const lostSector = readAt(raw, sector * 512, 512);
  if (lostSector[byteAt % 512] !== 0) throw new Error('bench-relink: the $Bitmap byte chosen is not free');
  lostSector[byteAt % 512] = 0xff;
  const same: SynthWrite[] = [{ sector: 0, data: readAt(raw, 0, 4096) }, { sector: recordBytes.at / 512, data: readAt(raw, recordBytes.at, recordBytes.length) }];
  const base = path.join(dir, 'base-ntfs.vhd');
  const uuid = toFixedVhd(raw, base);
  const c = await children(dir, base, uuid, same, [{ sector, data: lostSector }], 'ntfs');
  return { fs: 'ntfs', base, ...c, files, usedBytes: used };
}

export async function ensureRelinkVolumes(cacheRoot: string, log: (s: string) => void): Promise<RelinkMeta> {
  const dir = path.join(cacheRoot, `relink-${RELINK_GEN}`);
  const metaFile = path.join(dir, 'meta.json');
  if (existsSync(metaFile)) return JSON.parse(readFileSync(metaFile, 'utf8')) as RelinkMeta;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const tree = path.join(tmpdir(), `vhdtool-bench-tree-${process.pid}`);
  const meta: RelinkMeta = { volumes: [], skipped: [], generatedSeconds: 0 };
  try {
    log(`relink: writing a tree of ${DIRS * PER_DIR} files`);
    const files = makeTree(tree);
    if (has('mkfs.ext4', '-V') && has('debugfs', '-V') && has('dumpe2fs', '-V')) {
      log('relink: an 8 GiB ext4 volume (mkfs.ext4 -d)');
      meta.volumes.push(await ext4(dir, tree, files));
    } else meta.skipped.push('ext4: mkfs.ext4, debugfs or dumpe2fs missing');
    if (has('mkntfs') && existsSync('/dev/fuse') && process.getuid?.() === 0 && has('ntfs-3g')) {
      log('relink: an 8 GiB NTFS volume (mkntfs, the tree copied through ntfs-3g)');
      try {
        meta.volumes.push(await ntfs(dir, tree, files));
      } catch (e) {
        meta.skipped.push(`ntfs: ${(e as Error).message.split('\n')[0]}`);
      }
    } else meta.skipped.push('ntfs: mkntfs, ntfs-3g or a working FUSE (root, /dev/fuse) missing');
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
  meta.generatedSeconds = (performance.now() - t0) / 1000;
  writeFileSync(metaFile, JSON.stringify(meta, null, 2));
  return meta;
}
