/**
 * A chain big enough that compact and merge take a noticeable while (a few
 * hundred milliseconds or more), written block by block so the test process
 * never holds more than a block: a dynamic base full of pseudo-random data
 * and a differencing child that rewrites every block: even blocks with the
 * base's own bytes (compact deallocates them), odd blocks half with the
 * base's bytes and half with new data.
 */
import { createCipheriv } from 'node:crypto';
import * as path from 'node:path';
import { bitmapBytes, type Uuid } from '../../../src/format/index.js';
import { nodeFileSystem } from '../../../src/io/fsys.js';
import { hyperVLocators, newFooter, newHeader } from '../../../src/vhd/build.js';
import { SparseWriter } from '../../../src/vhd/writer.js';

export interface BigChain {
  base: string;
  child: string;
}

/** Deterministic pseudo-random bytes (AES-128-CTR of zeros): fast and reproducible per (stream, block). */
function prng(stream: number, block: number, out: Uint8Array): void {
  const key = Buffer.alloc(16, stream);
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(block, 0);
  const c = createCipheriv('aes-128-ctr', key, iv);
  const z = Buffer.alloc(out.length);
  out.set(c.update(z));
}

export async function writeBigChain(dir: string, virtualSize: number, blockSize = 2 * 1024 * 1024): Promise<BigChain> {
  const blocks = Math.ceil(virtualSize / blockSize);
  const base = path.join(dir, 'base.vhd');
  const child = path.join(dir, 'child.vhd');
  const full = new Uint8Array(bitmapBytes(blockSize)).fill(0xff);
  const baseUuid = '0b57113e-0000-4000-8000-0000000000b1' as Uuid;
  const data = new Uint8Array(blockSize);
  {
    const f = await nodeFileSystem.createExclusive(base);
    const w = new SparseWriter(f, { footer: newFooter({ type: 'dynamic', virtualSize, uniqueId: baseUuid }), header: newHeader(blockSize, blocks, null), locators: [] });
    for (let b = 0; b < blocks; b++) {
      prng(1, b, data);
      await w.writeBlock(b, full, data);
    }
    await w.finish();
    await f.sync();
    await f.close();
  }
  {
    const f = await nodeFileSystem.createExclusive(child);
    const header = newHeader(blockSize, blocks, { uniqueId: baseUuid, timestamp: 0, unicodeName: 'base.vhd' });
    const w = new SparseWriter(f, { footer: newFooter({ type: 'differencing', virtualSize }), header, locators: hyperVLocators(child, base) });
    const fresh = new Uint8Array(blockSize);
    for (let b = 0; b < blocks; b++) {
      prng(1, b, data);
      if (b % 2 === 1) {
        prng(2, b, fresh);
        data.set(fresh.subarray(blockSize / 2), blockSize / 2);
      }
      await w.writeBlock(b, full, data);
    }
    await w.finish();
    await f.sync();
    await f.close();
  }
  return { base, child };
}
