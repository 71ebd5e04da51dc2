/**
 * Helpers for the compact --free-space tests: a chain's composed view as a
 * raw image (for the file systems' own tools), the sectors a layer holds,
 * and a disk image with one partition made from a volume image.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openChain } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';
import { openVhd } from '../../src/vhd/image.js';
import { readExactSync } from '../../src/io/fsys.js';
import { runEnd, testBit } from '../../src/format/index.js';
import { RangeSet, RangeSetBuilder } from '../../src/guest/ranges.js';
import { blankImage, embed, partition } from './guest.js';

/** Writes the guest view of `disk` (through its parents) to `out` as a raw image. */
export async function rawOf(disk: string, out: string): Promise<string> {
  const chain = await openChain(nodeFileSystem, disk);
  try {
    const r = new ChainReader(chain);
    const buf = Buffer.alloc(r.size);
    await r.read(0, r.size, buf);
    writeFileSync(out, buf);
  } finally {
    await chain.close();
  }
  return out;
}

/** Guest bytes of the sectors `disk` itself holds (bitmap bit set), read from its BAT and bitmaps. */
export async function heldBytes(disk: string): Promise<RangeSet> {
  const vhd = await openVhd(nodeFileSystem, disk, { mode: 'strict' });
  try {
    const m = vhd.meta;
    const spb = m.blockSize! / 512;
    const b = new RangeSetBuilder();
    const bm = new Uint8Array(m.bitmapSize);
    for (const blk of m.bat!.allocated()) {
      readExactSync(vhd.file, bm, 0, bm.length, m.bat!.get(blk)! * 512);
      const n = Math.min(spb, m.virtualSize / 512 - blk * spb);
      for (let i = 0; i < n;) {
        const e = runEnd(bm, i, n);
        if (testBit(bm, i)) b.add((blk * spb + i) * 512, (blk * spb + e) * 512);
        i = e;
      }
    }
    return b.build();
  } finally {
    await vhd.close();
  }
}

export interface DiskSpec {
  /** Disk size in bytes. */
  size: number;
  label: 'dos' | 'gpt';
  /** Partitions: start sector, size in sectors, MBR type byte or GPT type GUID, and the volume image to put there (or none). */
  parts: Array<{ start: number; sectors: number; type: string; image?: string }>;
}

/** A partitioned disk image made by sfdisk, with volume images copied into their partitions. */
export function makeDisk(file: string, spec: DiskSpec): string {
  blankImage(file, spec.size);
  const lines = [`label: ${spec.label}`, ...spec.parts.map((p) => `start=${p.start}, size=${p.sectors}, type=${p.type}`)];
  partition(file, `${lines.join('\n')}\n`);
  for (const p of spec.parts) if (p.image) embed(file, p.image, p.start * 512);
  return file;
}

/** A copy of an image, for the next step of a history. */
export function step(from: string, dir: string, name: string): string {
  const to = path.join(dir, name);
  copyFileSync(from, to);
  return to;
}

/** Deterministic pseudo-random bytes (xorshift), so that every file differs and nothing is zero. */
export function noise(bytes: number, seed: number): Buffer {
  const b = Buffer.alloc(Math.ceil(bytes / 4) * 4);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < b.length; i += 4) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b.subarray(0, bytes);
}
