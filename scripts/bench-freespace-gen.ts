/**
 * The `compact --free-space` benchmark data set (scripts/bench.ts, group
 * "freespace"), built once into .bench-cache/freespace-<version>/ (complete
 * when meta.json exists, written last):
 *
 *   a 3 GiB disk, MBR, one FAT32 partition from 1 MiB (4 KiB clusters) made
 *   by mkfs.fat; the base holds 64 MiB of files written by mcopy; the child
 *   holds 64 files of 32 MiB (2 GiB) written by mcopy, then every other one
 *   deleted by mdel: half its data lies in whole free clusters.
 *
 * The files' bytes are AES-128-CTR keystream (incompressible, as the disk's
 * write speed depends on it) under a fixed key per file, so the whole data
 * set is deterministic. The raw images are turned into base.vhd (dynamic)
 * and child.vhd (differencing, holding exactly the sectors that differ),
 * streamed block by block; the raw images are then removed.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import * as path from 'node:path';
import { bitmapBytes, dateToVhdTime, setBit, SECTOR, type Uuid } from '../src/format/index.js';
import { nodeFileSystem } from '../src/io/fsys.js';
import { hyperVLocators, newFooter, newHeader } from '../src/vhd/build.js';
import { SparseWriter } from '../src/vhd/writer.js';

export const FREESPACE_GEN = 'g1';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const DISK = 3 * GiB;
const START = 2048;
const PART_SECTORS = (DISK - 2 * MiB) / SECTOR;
const BLOCK = 2 * MiB;
const FILES = 64;
const FILE_BYTES = 32 * MiB;

export interface FreeSpaceMeta {
  generator: string;
  base: string;
  child: string;
  virtualSize: number;
  /** Bytes of the child's files deleted in the guest (all in whole free clusters, all held by the child). */
  deletedBytes: number;
  /** Bytes of the child's files still there. */
  liveBytes: number;
  childFileBytes: number;
  baseFileBytes: number;
  generatedAt: string;
}

function keystream(bytes: number, seed: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed >>> 0, 0);
  key.write('vhdtool-fs', 4, 'latin1');
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(bytes));
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  if (r.error || r.status !== 0) throw new Error(`bench-freespace-gen: ${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
}

/** Copies `data` into the FAT volume at byte `offset` of `img` as `name` (mcopy). */
function put(img: string, tmp: string, name: string, data: Buffer): void {
  writeFileSync(tmp, data);
  run('mcopy', ['-i', `${img}@@${START * SECTOR}`, tmp, `::/${name}`]);
}

/**
 * Writes `raw` as a VHD layer: dynamic (sectors not all zero) or
 * differencing over `under` (sectors that differ from it). Streams 2 MiB
 * blocks; only blocks with a sector to hold are stored.
 */
async function layerOf(raw: string, under: string | null, file: string, parent: { file: string; uniqueId: Uuid } | null): Promise<Uuid> {
  const fh = await nodeFileSystem.createExclusive(file);
  const footer = newFooter({ type: parent ? 'differencing' : 'dynamic', virtualSize: DISK });
  const link = parent ? { uniqueId: parent.uniqueId, timestamp: dateToVhdTime(new Date(statSync(parent.file).mtimeMs)), unicodeName: path.basename(parent.file) } : null;
  const w = new SparseWriter(fh, { footer, header: newHeader(BLOCK, DISK / BLOCK, link), locators: parent ? hyperVLocators(file, parent.file) : [] });
  const a = openSync(raw, 'r');
  const b = under ? openSync(under, 'r') : -1;
  const x = Buffer.alloc(BLOCK);
  const y = Buffer.alloc(BLOCK);
  const zero = Buffer.alloc(SECTOR);
  const zeroBlock = Buffer.alloc(BLOCK);
  try {
    for (let blk = 0; blk < DISK / BLOCK; blk++) {
      readSync(a, x, 0, BLOCK, blk * BLOCK);
      if (b >= 0) readSync(b, y, 0, BLOCK, blk * BLOCK);
      const other = b >= 0 ? y : null;
      if (x.equals(other ?? zeroBlock)) continue;
      const bitmap = new Uint8Array(bitmapBytes(BLOCK));
      for (let s = 0; s < BLOCK / SECTOR; s++) {
        const o = s * SECTOR;
        const same = other ? x.compare(other, o, o + SECTOR, o, o + SECTOR) === 0 : x.compare(zero, 0, SECTOR, o, o + SECTOR) === 0;
        if (!same) setBit(bitmap, s);
      }
      // Sectors whose bit is clear must hold zeros (spec).
      for (let s = 0; s < BLOCK / SECTOR; s++) if (!(bitmap[s >>> 3] & (0x80 >>> (s & 7)))) x.fill(0, s * SECTOR, (s + 1) * SECTOR);
      await fh.writev([bitmap, x], w.reserve(blk));
    }
  } finally {
    closeSync(a);
    if (b >= 0) closeSync(b);
  }
  await w.finish();
  await fh.sync();
  await fh.close();
  return footer.uniqueId;
}

export async function ensureFreeSpaceChain(cacheRoot: string, log: (s: string) => void): Promise<FreeSpaceMeta> {
  const dir = path.join(cacheRoot, `freespace-${FREESPACE_GEN}`);
  const metaFile = path.join(dir, 'meta.json');
  if (existsSync(metaFile)) return JSON.parse(readFileSync(metaFile, 'utf8')) as FreeSpaceMeta;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log('  generating the --free-space chain (FAT32 by mkfs.fat and mtools; a few minutes, once)');
  const baseRaw = path.join(dir, 'base.raw');
  const childRaw = path.join(dir, 'child.raw');
  const vol = path.join(dir, 'vol.raw');
  const tmp = path.join(dir, 'file.tmp');
  // The volume, then the disk around it (MBR by sfdisk).
  const fd = openSync(vol, 'wx');
  ftruncateSync(fd, PART_SECTORS * SECTOR);
  closeSync(fd);
  run('mkfs.fat', ['-F', '32', '-s', '8', '-i', '7e570003', '-n', 'BENCH', vol]);
  const dfd = openSync(baseRaw, 'wx');
  ftruncateSync(dfd, DISK);
  closeSync(dfd);
  const sf = spawnSync('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', baseRaw], { input: `label: dos\nlabel-id: 0x7e570003\nstart=${START}, size=${PART_SECTORS}, type=c\n` });
  if (sf.status !== 0) throw new Error(`bench-freespace-gen: sfdisk: ${sf.stderr}`);
  {
    const v = openSync(vol, 'r');
    const d = openSync(baseRaw, 'r+');
    const buf = Buffer.alloc(4 * MiB);
    const none = Buffer.alloc(4 * MiB);
    for (let at = 0; at < PART_SECTORS * SECTOR; at += buf.length) {
      const n = readSync(v, buf, 0, buf.length, at);
      if (n > 0 && !buf.subarray(0, n).equals(none.subarray(0, n))) writeSync(d, buf, 0, n, START * SECTOR + at);
    }
    closeSync(v);
    closeSync(d);
    rmSync(vol);
  }
  for (let i = 0; i < 8; i++) put(baseRaw, tmp, `BASE${i}.BIN`, keystream(8 * MiB, 1000 + i));
  run('cp', ['--sparse=always', baseRaw, childRaw]);
  for (let i = 0; i < FILES; i++) put(childRaw, tmp, `DATA${String(i).padStart(2, '0')}.BIN`, keystream(FILE_BYTES, i));
  const gone = Array.from({ length: FILES / 2 }, (_, k) => `::/DATA${String(2 * k + 1).padStart(2, '0')}.BIN`);
  run('mdel', ['-i', `${childRaw}@@${START * SECTOR}`, ...gone]);
  rmSync(tmp, { force: true });
  log('  writing base.vhd and child.vhd');
  const base = path.join(dir, 'base.vhd');
  const child = path.join(dir, 'child.vhd');
  const baseId = await layerOf(baseRaw, null, base, null);
  await layerOf(childRaw, baseRaw, child, { file: base, uniqueId: baseId });
  rmSync(baseRaw);
  rmSync(childRaw);
  const meta: FreeSpaceMeta = {
    generator: FREESPACE_GEN, base, child, virtualSize: DISK,
    deletedBytes: (FILES / 2) * FILE_BYTES, liveBytes: (FILES / 2) * FILE_BYTES,
    childFileBytes: statSync(child).size, baseFileBytes: statSync(base).size, generatedAt: new Date().toISOString(),
  };
  writeFileSync(metaFile, JSON.stringify(meta, null, 2) + '\n');
  return meta;
}
