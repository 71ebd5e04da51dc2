/**
 * Reading block bitmaps, with a small per-layer cache. Bitmaps are tiny (512
 * bytes for a 2 MiB block) and every read path needs them, so they are read
 * once and kept while a pass walks the disk in order.
 *
 * Reads are synchronous: an asynchronous 512-byte read costs the main thread
 * more CPU than the read itself (measured: resolving the benchmark chain's
 * 1,400 bitmaps took 180-240 ms asynchronously in a fresh process, ~30 ms
 * synchronously), and resolving them was what kept compare's workers waiting.
 */
import { readExactSync } from '../io/fsys.js';
import type { VhdMeta, Vhd } from '../vhd/image.js';
import { SECTOR } from '../format/index.js';

export class BitmapCache {
  private readonly cache = new Map<number, Uint8Array>();

  /** `maxEntries` bounds memory: at most maxEntries x bitmap size bytes. */
  constructor(private readonly vhd: Vhd, private readonly maxEntries = 1024) {}

  get meta(): VhdMeta {
    return this.vhd.meta;
  }

  /** The bitmap of allocated block `block` (callers check the BAT first). */
  get(block: number): Uint8Array {
    let b = this.cache.get(block);
    if (b) {
      // Refresh recency.
      this.cache.delete(block);
      this.cache.set(block, b);
      return b;
    }
    b = this.load(block);
    this.cache.set(block, b);
    if (this.cache.size > this.maxEntries) this.cache.delete(this.cache.keys().next().value as number);
    return b;
  }

  private load(block: number): Uint8Array {
    const m = this.vhd.meta;
    const sector = m.bat!.get(block);
    if (sector === null) throw new Error(`internal: bitmap of unallocated block ${block}`);
    const b = new Uint8Array(m.bitmapSize);
    readExactSync(this.vhd.file, b, 0, b.length, sector * SECTOR);
    return b;
  }
}
