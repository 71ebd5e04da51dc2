/**
 * The kernel's reader: short reads come from a per-file window that lives for
 * one task. A file that ends early is an error naming the whole request; a
 * file rewritten between tasks is read afresh; many files at once still read
 * right; and the window really saves system calls.
 */
import { openSync, closeSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { MIN_AHEAD, READ_AHEAD, SMALL_READ, TaskReader, TRUNCATED_MARK } from '../../workers/reader.js';
import { tempDir } from '../helpers/tmp.js';
import { patternBytes } from '../../src/synth/random.js';

// Counts the reader's system calls: node:fs with readSync wrapped.
const counter = vi.hoisted(() => ({ reads: 0, bytes: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const readSync = ((...args: Parameters<typeof real.readSync>) => {
    counter.reads++;
    counter.bytes += typeof args[3] === 'number' ? args[3] : 0;
    return real.readSync(...args);
  }) as typeof real.readSync;
  return { ...real, default: { ...real, readSync }, readSync };
});

function file(dir: string, name: string, data: Uint8Array): string {
  const p = path.join(dir, name);
  writeFileSync(p, data);
  return p;
}

describe('the kernel reader', () => {
  it('a short read past the end of the file fails with the whole request in the message', () => {
    const dir = tempDir();
    const p = file(dir, 'short', patternBytes(3000, 1));
    const r = new TaskReader();
    expect(() => r.read(p, Buffer.alloc(1024), 0, 1024, 2560)).toThrow(`${TRUNCATED_MARK}${p}\0file ends at byte 3000 while reading 1024 bytes at offset 2560`);
    expect(() => r.read(p, Buffer.alloc(SMALL_READ), 0, SMALL_READ, 0)).toThrow(`file ends at byte 3000 while reading ${SMALL_READ} bytes at offset 0`);
    r.closeAll();
  });

  it('bytes written to a file between two tasks are seen by the second task (windows end with the task)', () => {
    const dir = tempDir();
    const p = file(dir, 'out', new Uint8Array(READ_AHEAD));
    const r = new TaskReader();
    const got = Buffer.alloc(512);
    r.read(p, got, 0, 512, 4096);
    expect(got.every((b) => b === 0)).toBe(true);
    r.closeAll();
    const fd = openSync(p, 'r+');
    writeSync(fd, Buffer.alloc(512, 0x5a), 0, 512, 4096);
    closeSync(fd);
    r.read(p, got, 0, 512, 4096);
    expect(got.every((b) => b === 0x5a)).toBe(true);
    r.closeAll();
  });

  it('more files than windows in one task still read right', () => {
    const dir = tempDir();
    const datas = Array.from({ length: 12 }, (_, i) => patternBytes(20_000, 50 + i));
    const paths = datas.map((d, i) => file(dir, `f${i}`, d));
    const r = new TaskReader();
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < paths.length; i++) {
        const at = (round * 4099 + i * 13) % 19_000;
        const got = Buffer.alloc(700);
        r.read(paths[i], got, 0, 700, at);
        expect(got.equals(Buffer.from(datas[i].subarray(at, at + 700))), `file ${i} round ${round}`).toBe(true);
      }
    }
    r.closeAll();
  });

  /** Reads one sector at each byte offset of a patterned file of `size` bytes in one task; what it cost. */
  function readSectors(size: number, offsets: number[]): { reads: number; bytes: number } {
    const p = file(tempDir(), 'f', patternBytes(size, 7));
    const r = new TaskReader();
    const got = Buffer.alloc(512);
    const before = { ...counter };
    for (const at of offsets) r.read(p, got, 0, 512, at);
    r.closeAll();
    return { reads: counter.reads - before.reads, bytes: counter.bytes - before.bytes };
  }

  it('a unit read sector by sector costs a few system calls, not one per sector', () => {
    const every2nd = Array.from({ length: 2048 }, (_, i) => i * 1024);
    // The window grows 16, 64, 256 KiB, then reads 256 KiB at a time.
    expect(readSectors(2 * 1024 * 1024, every2nd).reads).toBeLessThanOrEqual((2 * 1024 * 1024) / READ_AHEAD + 3);
  });

  it('scattered sectors cost a small read each, not a whole window', () => {
    const scattered = Array.from({ length: 20 }, (_, i) => i * 300 * 1024 + 4096);
    expect(readSectors(8 * 1024 * 1024, scattered).bytes).toBe(20 * MIN_AHEAD);
  });
});
