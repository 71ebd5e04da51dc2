/**
 * Data sets of `npm run bench` beyond the main chain (issue 18), cached in
 * .bench-cache/ like the others:
 *
 *   peer   flat-qemu.vhd: the benchmark's merged disk (flat.vhd) written
 *          again by qemu-img, the other side of `compare` against
 *          `qemu-img compare` on two standalone disks;
 *   big    a standalone disk with 4 GiB allocated (16 GiB virtual, random
 *          data) and its copy by qemu-img: the same comparison, larger;
 *   small  a chain of two small disks (64 MiB virtual, a few blocks): start-up.
 *
 * qemu-img sizes a VHD by its CHS geometry unless told otherwise, and would
 * then cut the last sectors of a disk whose current size is larger: every
 * qemu-img command here opens VHDs with force_size_calc=current_size and
 * writes them with force_size=on.
 */
import { randomFillSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { bitmapBytes } from '../src/format/index.js';
import { closeLayer, openLayer, putBlock, type ChainMeta } from './bench-gen.js';

export const PAIRS_GEN_VERSION = { peer: 'g1', big: 'g1', small: 'g1' } as const;

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** qemu's --image-opts string for a VHD whose size is its current size (commas in paths doubled, as qemu wants). */
export function vpcOpts(file: string): string {
  return `driver=vpc,force_size_calc=current_size,file.filename=${file.replace(/,/g, ',,')}`;
}

/** The argv of `qemu-img convert` writing `src` (a VHD) to a new dynamic VHD `out` of the exact size. */
export function qemuConvertArgs(src: string, out: string): string[] {
  return ['convert', '--image-opts', vpcOpts(src), '-O', 'vpc', '-o', 'subformat=dynamic,force_size=on', out];
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench-gen: ${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || String(r.error)).trim().split('\n').slice(-1)[0]}`);
}

function cached<T>(dir: string, make: () => Promise<T>): Promise<T> {
  const metaFile = path.join(dir, 'meta.json');
  if (existsSync(metaFile)) return Promise.resolve(JSON.parse(readFileSync(metaFile, 'utf8')) as T);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return make().then((meta) => {
    writeFileSync(metaFile, JSON.stringify(meta, null, 2) + '\n');
    return meta;
  });
}

export interface PeerMeta {
  generator: string;
  /** flat.vhd as qemu-img writes it. */
  flatQemu: string;
  fileBytes: number;
}

export function ensurePeerCopy(cacheRoot: string, m: ChainMeta, name: string, log: (s: string) => void): Promise<PeerMeta> {
  const dir = path.join(cacheRoot, `${name}-${PAIRS_GEN_VERSION.peer}`);
  return cached(dir, async () => {
    log('  generating flat-qemu.vhd (qemu-img convert of flat.vhd)');
    const flatQemu = path.join(dir, 'flat-qemu.vhd');
    run('qemu-img', qemuConvertArgs(m.flat, flatQemu));
    return { generator: PAIRS_GEN_VERSION.peer, flatQemu, fileBytes: statSync(flatQemu).size };
  });
}

export interface BigPairMeta {
  generator: string;
  a: string;
  /** a, written again by qemu-img. */
  b: string;
  virtualSize: number;
  blocks: number;
  dataBytes: number;
  fileBytesA: number;
  fileBytesB: number;
}

/** 4 GiB allocated: 2048 blocks of 2 MiB of random data, one in four of a 16 GiB disk. */
export function ensureBigPair(cacheRoot: string, log: (s: string) => void): Promise<BigPairMeta> {
  const dir = path.join(cacheRoot, `big-${PAIRS_GEN_VERSION.big}`);
  return cached(dir, async () => {
    const virtualSize = 16 * GiB;
    const blockSize = 2 * MiB;
    // Spread over the whole disk, as a used disk's data is.
    const order = Array.from({ length: 2048 }, (_, i) => i * 4 + (i % 2));
    const a = path.join(dir, 'a.vhd');
    const b = path.join(dir, 'b.vhd');
    log('  generating a 16 GiB disk with 4 GiB allocated, and its copy by qemu-img');
    const L = await openLayer(a, 'dynamic', virtualSize, blockSize, order, null);
    const full = new Uint8Array(bitmapBytes(blockSize)).fill(0xff);
    const data = new Uint8Array(blockSize);
    for (const blk of order) await putBlock(L, blk, full, randomFillSync(data));
    await closeLayer(L);
    run('qemu-img', qemuConvertArgs(a, b));
    return {
      generator: PAIRS_GEN_VERSION.big, a, b, virtualSize, blocks: order.length, dataBytes: order.length * blockSize,
      fileBytesA: statSync(a).size, fileBytesB: statSync(b).size,
    };
  });
}

export interface SmallMeta {
  generator: string;
  parent: string;
  child: string;
}

/** A base of 4 blocks and a child of 2, 64 MiB virtual: `info` on it is all start-up. */
export function ensureSmallDisk(cacheRoot: string): Promise<SmallMeta> {
  const dir = path.join(cacheRoot, `small-${PAIRS_GEN_VERSION.small}`);
  return cached(dir, async () => {
    const virtualSize = 64 * MiB;
    const blockSize = 2 * MiB;
    const parent = path.join(dir, 'base.vhd');
    const child = path.join(dir, 'child.vhd');
    const full = new Uint8Array(bitmapBytes(blockSize)).fill(0xff);
    const data = new Uint8Array(blockSize);
    const P = await openLayer(parent, 'dynamic', virtualSize, blockSize, [0, 1, 5, 9], null);
    for (const blk of [0, 1, 5, 9]) await putBlock(P, blk, full, randomFillSync(data));
    await closeLayer(P);
    const C = await openLayer(child, 'differencing', virtualSize, blockSize, [1, 20], { file: parent, uniqueId: P.uniqueId });
    for (const blk of [1, 20]) await putBlock(C, blk, full, randomFillSync(data));
    await closeLayer(C, statSync(parent).mtimeMs);
    return { generator: PAIRS_GEN_VERSION.small, parent, child };
  });
}
