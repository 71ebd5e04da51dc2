/**
 * Writing and re-reading around the page cache (O_DIRECT): a new file's
 * whole, 4 KiB-aligned pages from page-aligned memory go to the device
 * directly; anything else, or a file system that refuses, is written
 * through the cache, with the same bytes in the file either way. The compare
 * kernel's direct re-read finds what a cached read finds.
 */
import { openSync, closeSync, writeSync, readFileSync, writeFileSync, constants } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem, DIRECT_FLAG } from '../../src/io/fsys.js';
import { Kernel, alignedBuffer } from '../../workers/kernel.js';
import type { DiffResult } from '../../src/plan/tasks.js';
import { tempDir } from '../helpers/tmp.js';

/** Whether the test directory's file system takes O_DIRECT writes from page-aligned memory. */
function directWorks(dir: string): boolean {
  if (!DIRECT_FLAG) return false;
  const p = path.join(dir, 'probe');
  try {
    const fd = openSync(p, constants.O_WRONLY | constants.O_CREAT | DIRECT_FLAG);
    try {
      writeSync(fd, alignedBuffer(4096), 0, 4096, 0);
      return true;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const supported = directWorks(tempDir());

describe('writing around the page cache', () => {
  it.skipIf(!supported)('whole aligned pages from aligned memory go direct, and the file holds exactly those bytes', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'out.bin');
    const f = await nodeFileSystem.createExclusive(p);
    const mem = alignedBuffer(3 * 65536);
    mem.set(pattern(mem.length, 7));
    try {
      expect(await f.writeAligned!(mem, 0, 65536, 8192)).toBe(true);
      expect(await f.writeAligned!(mem, 65536, 2 * 65536, 8192 + 65536)).toBe(true);
      await f.sync();
    } finally {
      await f.close();
    }
    const back = readFileSync(p);
    expect(back.length).toBe(8192 + 3 * 65536);
    expect(back.subarray(0, 8192).every((b) => b === 0)).toBe(true);
    expect(back.subarray(8192).equals(mem)).toBe(true);
  });

  it('a write that is not whole 4 KiB pages goes through the cache with the same result', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'out.bin');
    const f = await nodeFileSystem.createExclusive(p);
    const mem = alignedBuffer(65536);
    mem.set(pattern(mem.length, 3));
    try {
      expect(await f.writeAligned!(mem, 0, 4096 + 512, 512)).toBe(false);
      expect(await f.writeAligned!(mem, 8192, 4096, 8192 + 512)).toBe(false);
    } finally {
      await f.close();
    }
    const back = readFileSync(p);
    expect(back.subarray(512, 512 + 4608).equals(mem.subarray(0, 4608))).toBe(true);
    expect(back.subarray(8704, 8704 + 4096).equals(mem.subarray(8192, 12288))).toBe(true);
  });

  it.skipIf(!supported)('memory the device refuses falls back to the cache for good, and the bytes still land', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'out.bin');
    const f = await nodeFileSystem.createExclusive(p);
    // One byte past a page boundary: no device takes DMA from there.
    const odd = alignedBuffer(3 * 4096 + 1).subarray(1);
    odd.set(pattern(odd.length, 11));
    const aligned = alignedBuffer(4096);
    aligned.set(pattern(4096, 5));
    try {
      expect(await f.writeAligned!(odd, 0, 8192, 0)).toBe(false);
      // After a refusal the file stays on the cached path, even for aligned memory.
      expect(await f.writeAligned!(aligned, 0, 4096, 8192)).toBe(false);
    } finally {
      await f.close();
    }
    const back = readFileSync(p);
    expect(back.subarray(0, 8192).equals(odd.subarray(0, 8192))).toBe(true);
    expect(back.subarray(8192, 12288).equals(aligned)).toBe(true);
  });
});

describe('the kernel re-reading around the page cache', () => {
  function diffBoth(files: string[], a: number[], b: number[], sectors: number): [DiffResult, DiffResult] {
    const k = new Kernel(new SharedArrayBuffer(65536), 65536);
    const cached = k.run({ kind: 'diff', sectors, files, a, b, maxRanges: 8 }) as DiffResult;
    const direct = k.run({ kind: 'diff', sectors, files, a, b, maxRanges: 8, direct: 1 }) as DiffResult;
    return [cached, direct];
  }

  it('finds the same differences as a cached read, at sector offsets that are not page-aligned', () => {
    const dir = tempDir();
    const x = pattern(3 << 20, 1);
    const y = x.slice();
    y[(1 << 20) + 4096 + 512 + 77] ^= 0x40;
    y[(2 << 20) + 3] ^= 1;
    const fx = path.join(dir, 'x.bin');
    const fy = path.join(dir, 'y.bin');
    writeFileSync(fx, x);
    writeFileSync(fy, y);
    // A unit of 4200 sectors read from byte 512 of both files (y directly): both differences fall in it.
    const sectors = 4200;
    const [cached, direct] = diffBoth([fx, fy], [0, sectors, 0, 512], [0, sectors, 1, 512], sectors);
    expect(cached.first).toBe((1 << 20) + 4096 + 77);
    expect(direct).toEqual(cached);
    expect(direct.ranges.length).toBe(2);
  });

  it('equal files compare equal when one is read directly', () => {
    const dir = tempDir();
    const x = pattern(1 << 20, 9);
    const fx = path.join(dir, 'x.bin');
    const fy = path.join(dir, 'y.bin');
    writeFileSync(fx, x);
    writeFileSync(fy, x);
    const [cached, direct] = diffBoth([fx, fy], [0, 2048, 0, 0], [0, 2048, 1, 0], 2048);
    expect(cached.first).toBe(-1);
    expect(direct).toEqual(cached);
  });
});
