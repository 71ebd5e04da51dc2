/**
 * Verification before publishing catches what a broken write path would
 * produce: a flipped bit in a block's data, a flipped bit in a bitmap, and
 * data written to the wrong place. Nothing is published and the input is
 * untouched.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem, type FileSystem, type RandomAccessFile } from '../../src/io/fsys.js';
import { writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { compact } from '../../src/ops/compact.js';
import { merge } from '../../src/ops/merge.js';
import { VhdToolError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

type WriteHook = (f: RandomAccessFile, buf: Uint8Array, off: number, len: number, pos: number, n: number) => Promise<void>;

function tampering(hook: WriteHook): FileSystem {
  return {
    ...nodeFileSystem,
    async createExclusive(p, mode) {
      const f = await nodeFileSystem.createExclusive(p, mode);
      let n = 0;
      const write = (buf: Uint8Array, off: number, len: number, pos: number) => hook(f, buf, off, len, pos, n++);
      return {
        path: f.path, read: f.read.bind(f), size: f.size.bind(f), truncate: f.truncate.bind(f), sync: f.sync.bind(f), close: f.close.bind(f),
        write,
        async writev(bufs: Uint8Array[], pos: number) {
          for (const b of bufs) { await write(b, 0, b.length, pos); pos += b.length; }
        },
      };
    },
  };
}

function layers(): SynthLayer[] {
  const d = new Uint8Array(256 * 1024).map((_, i) => (i * 13 + 5) & 255);
  const e = d.slice(); e[1000] ^= 1; e[70000] ^= 1;
  return [
    { type: 'dynamic', virtualSize: 4 << 20, blockSize: 512 * 1024, writes: [{ sector: 0, data: d }] },
    { type: 'differencing', virtualSize: 4 << 20, blockSize: 512 * 1024, writes: [{ sector: 0, data: e }, { sector: 3000, data: d.subarray(0, 4096) }] },
  ];
}

async function refused(p: Promise<unknown>): Promise<VhdToolError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(VhdToolError);
  return e as VhdToolError;
}

describe('verification before publishing', () => {
  it('catches a flipped bit in block data', async () => {
    const dir = tempDir();
    const [, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    const before = readFileSync(child.path);
    const fs = tampering(async (f, buf, off, len, pos) => {
      if (len < 4096) return f.write(buf, off, len, pos);
      const c = buf.slice(off, off + len); c[7] ^= 0x10;
      return f.write(c, 0, len, pos);
    });
    const e = await refused(compact(child.path, { fs, threads: 0 }));
    expect(e.code).toBe('VERIFY_FAILED');
    expect(readFileSync(child.path).equals(before)).toBe(true);
  });

  it('catches a flipped bit in a block bitmap', async () => {
    const dir = tempDir();
    const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    let metadataStarted = false;
    const fs = tampering(async (f, buf, off, len, pos) => {
      if (pos === 0) metadataStarted = true;
      if (len === 512 && !metadataStarted) {
        const c = buf.slice(off, off + len); c[0] ^= 0x01;
        return f.write(c, 0, len, pos);
      }
      return f.write(buf, off, len, pos);
    });
    const out = path.join(dir, 'out.vhd');
    const e = await refused(merge(child.path, base.path, out, { fs, threads: 0, type: 'dynamic' }).then(() => compact(child.path, { fs, threads: 0 })));
    expect(e.code).toBe('VERIFY_FAILED');
    expect(existsSync(out)).toBe(false);
  });

  it('catches data written to the wrong place', async () => {
    const dir = tempDir();
    const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    const fs = tampering(async (f, buf, off, len, pos) => f.write(buf, off, len, len >= 4096 ? pos + 512 : pos));
    const out = path.join(dir, 'out.vhd');
    const e = await refused(merge(child.path, base.path, out, { fs, threads: 0 }));
    expect(e.code).toBe('VERIFY_FAILED');
    expect(existsSync(out)).toBe(false);
  });
});
