/**
 * The file-system door: exact reads (a short read is a TRUNCATED format
 * error naming the file), exclusive creation (never over an existing file),
 * no way to open an existing file for writing, and synchronous metadata
 * calls that still give the event loop its turns.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync, readFileSync, symlinkSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { nodeFileSystem, readAt, readExact, readExactSync, dirOf, type RandomAccessFile } from '../../src/io/fsys.js';
import { FormatError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

describe('nodeFileSystem and exact reads', () => {
  it('readAt returns exactly the bytes at a position', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'f.bin');
    writeFileSync(p, Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff));
    const f = await nodeFileSystem.openRead(p);
    try {
      expect(await f.size()).toBe(1000);
      expect([...(await readAt(f, 250, 4))]).toEqual([250, 251, 252, 253]);
      const buf = new Uint8Array(10).fill(0xee);
      await readExact(f, buf, 3, 5, 998 - 3);
      expect([...buf]).toEqual([0xee, 0xee, 0xee, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xee, 0xee]);
    } finally {
      await f.close();
    }
  });

  it('a read past the end is a TRUNCATED FormatError naming the file and the offsets', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'short.bin');
    writeFileSync(p, new Uint8Array(100));
    const f = await nodeFileSystem.openRead(p);
    try {
      const err = await readAt(f, 90, 20).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(FormatError);
      expect((err as FormatError).code).toBe('TRUNCATED');
      expect((err as FormatError).path).toBe(p);
      expect((err as FormatError).message).toBe('file ends at byte 100 while reading 20 bytes at offset 90');
    } finally {
      await f.close();
    }
  });

  it('readExact keeps reading after short reads', async () => {
    const data = Uint8Array.from({ length: 64 }, (_, i) => i);
    const trickle: RandomAccessFile = {
      path: 'trickle',
      async read(buf, off, len, pos) {
        const n = Math.min(3, len, data.length - pos);
        if (n <= 0) return 0;
        buf.set(data.subarray(pos, pos + n), off);
        return n;
      },
      readSync(buf, off, len, pos) {
        const n = Math.min(3, len, data.length - pos);
        if (n <= 0) return 0;
        buf.set(data.subarray(pos, pos + n), off);
        return n;
      },
      write: async () => undefined, writev: async () => undefined, size: async () => data.length,
      truncate: async () => undefined, sync: async () => undefined, close: async () => undefined,
    };
    expect([...(await readAt(trickle, 10, 20))]).toEqual(Array.from({ length: 20 }, (_, i) => 10 + i));
    const sync = new Uint8Array(20);
    readExactSync(trickle, sync, 0, 20, 40);
    expect([...sync]).toEqual(Array.from({ length: 20 }, (_, i) => 40 + i));
    expect(() => readExactSync(trickle, sync, 0, 20, 50)).toThrow(/file ends at byte 64 while reading 20 bytes at offset 50/);
  });

  it('createExclusive never opens an existing file (EEXIST), through a symlink either', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'exists.vhd');
    writeFileSync(p, 'keep');
    await expect(nodeFileSystem.createExclusive(p)).rejects.toMatchObject({ code: 'EEXIST' });
    const link = path.join(dir, 'link.vhd');
    symlinkSync(p, link);
    await expect(nodeFileSystem.createExclusive(link)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(p, 'utf8')).toBe('keep');
  });

  it('files created exclusively are writable, sized, truncatable and readable', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'new.bin');
    const f = await nodeFileSystem.createExclusive(p);
    try {
      await f.writev([Uint8Array.of(1, 2), Uint8Array.of(3)], 10);
      expect(await f.size()).toBe(13);
      await f.truncate(12);
      await f.sync();
      expect([...(await readAt(f, 9, 3))]).toEqual([0, 1, 2]);
    } finally {
      await f.close();
    }
    expect([...readFileSync(p)]).toEqual([...new Uint8Array(10), 1, 2]);
  });

  it('stat reports kind, identity and size; openRead of a missing file fails with ENOENT', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'sub'));
    const p = path.join(dir, 'sub', 'x');
    writeFileSync(p, 'abc');
    const st = await nodeFileSystem.stat(p);
    expect(st).toMatchObject({ size: 3, isFile: true, isDirectory: false });
    expect((await nodeFileSystem.stat(path.join(dir, 'sub'))).isDirectory).toBe(true);
    await expect(nodeFileSystem.openRead(path.join(dir, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(dirOf('sub/x')).toBe(path.resolve('sub'));
  });

  it('a loop of metadata calls and small reads (made synchronously) still lets timers and signals run', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'f.bin');
    writeFileSync(p, new Uint8Array(4096));
    const f = await nodeFileSystem.openRead(p);
    let fired = false;
    const t0 = Date.now();
    setTimeout(() => { fired = true; }, 1);
    const buf = new Uint8Array(512);
    let calls = 0;
    try {
      // Without the event loop's turns this loop would never see the timer fire.
      while (!fired && Date.now() - t0 < 5000) {
        await f.read(buf, 0, 512, (calls % 8) * 512);
        await nodeFileSystem.stat(p);
        calls++;
      }
    } finally {
      await f.close();
    }
    expect(fired).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(calls).toBeGreaterThan(0);
  });
});

