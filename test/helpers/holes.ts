/**
 * A dynamic disk whose every block is allocated (all bitmap bits set) but
 * whose data was never written: the file is sparse, so it costs nothing to
 * make, yet every command reads all of it. For tests that need a command to
 * run for a few seconds (signals, progress).
 */
import { bitmapBytes } from '../../src/format/index.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { newFooter, newHeader } from '../../src/vhd/build.js';
import { SparseWriter } from '../../src/vhd/writer.js';

export async function writeHoleDisk(p: string, virtualSize: number, blockSize = 2 * 1024 * 1024): Promise<void> {
  const n = Math.ceil(virtualSize / blockSize);
  const f = await nodeFileSystem.createExclusive(p);
  try {
    const w = new SparseWriter(f, { footer: newFooter({ type: 'dynamic', virtualSize }), header: newHeader(blockSize, n, null), locators: [] });
    const full = new Uint8Array(bitmapBytes(blockSize)).fill(0xff);
    for (let b = 0; b < n; b++) await w.writeBitmap(w.reserve(b), full);
    await w.finish();
  } finally {
    await f.close();
  }
}
