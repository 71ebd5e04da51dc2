/**
 * The content verification compares up to 8 written blocks per task (their
 * output ranges laid end to end). A byte that differs in any block of a
 * group, the first, a middle one or the last, and in a partial group at the
 * end, must fail the write with that byte's own offset in the output.
 */
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem, type FileSystem, type RandomAccessFile } from '../../src/io/fsys.js';
import { writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { merge } from '../../src/ops/merge.js';
import { VhdToolError } from '../../src/errors.js';
import { patternBytes } from '../../src/synth/random.js';
import { tempDir } from '../helpers/tmp.js';

const BLOCK = 512 * 1024;
const BLOCKS = 12;

function layers(): SynthLayer[] {
  return [
    { type: 'dynamic', virtualSize: 8 << 20, blockSize: BLOCK, writes: [{ sector: 0, data: patternBytes(BLOCKS * BLOCK, 11) }] },
    { type: 'differencing', virtualSize: 8 << 20, blockSize: BLOCK, writes: [{ sector: 8, data: patternBytes(4096, 12) }] },
  ];
}

/** A file system whose new files get one bit flipped in their `nth` data write (of 4 KiB or more); `flipped` is that byte's offset. */
function flipping(nth: number): { fs: FileSystem; flipped: () => number } {
  let flippedAt = -1;
  const fs: FileSystem = {
    ...nodeFileSystem,
    createExclusive: async (p, mode) => {
      const f = await nodeFileSystem.createExclusive(p, mode);
      let n = 0;
      const write: RandomAccessFile['write'] = async (buf, off, len, pos) => {
        if (len < 4096 || ++n !== nth) return f.write(buf, off, len, pos);
        const copy = buf.slice(off, off + len);
        copy[len >> 1] ^= 1;
        flippedAt = pos + (len >> 1);
        return f.write(copy, 0, len, pos);
      };
      return {
        ...f, path: f.path, write,
        read: (b, o, l, q) => f.read(b, o, l, q),
        readSync: (b, o, l, q) => f.readSync(b, o, l, q),
        writev: async (bufs, pos) => { let q = pos; for (const b of bufs) { await write(b, 0, b.length, q); q += b.length; } },
        size: () => f.size(), truncate: (x) => f.truncate(x), sync: () => f.sync(), close: () => f.close(),
      };
    },
  };
  return { fs, flipped: () => flippedAt };
}

describe('grouped verification of written blocks', () => {
  it.each([1, 2, 5, 8, 9, 12])('a bit flipped in data write %i is caught at its own output offset', async (nth) => {
    const dir = tempDir();
    const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    const out = path.join(dir, 'out.vhd');
    const { fs, flipped } = flipping(nth);
    let err: unknown = null;
    try {
      await merge(child.path, base.path, out, { fs, threads: 0 });
    } catch (e) {
      err = e;
    }
    expect(flipped()).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(VhdToolError);
    expect((err as VhdToolError).code).toBe('VERIFY_FAILED');
    expect((err as VhdToolError).message).toBe(`output did not verify (data at output offset ${flipped()} differs from the source); nothing was replaced`);
    expect(existsSync(out)).toBe(false);
  });
});
