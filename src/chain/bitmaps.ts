/**
 * Reading block bitmaps, with a small per-layer cache. Bitmaps are tiny (512
 * bytes for a 2 MiB block) and every read path needs them, so they are read
 * once and kept while a pass walks the disk in order.
 */
import { readExact } from '../io/fsys.js';
import type { VhdMeta, Vhd } from '../vhd/image.js';
import { SECTOR } from '../format/index.js';

/** Bitmaps read ahead after a cache miss. */
const READ_AHEAD = 16;

export class BitmapCache {
  private readonly cache = new Map<number, Promise<Uint8Array>>();

  /** `maxEntries` bounds memory: at most maxEntries x bitmap size bytes. */
  constructor(private readonly vhd: Vhd, private readonly maxEntries = 1024) {}

  get meta(): VhdMeta {
    return this.vhd.meta;
  }

  /** The bitmap of allocated block `block` (callers check the BAT first). */
  get(block: number): Promise<Uint8Array> {
    let p = this.cache.get(block);
    if (p) {
      // Refresh recency.
      this.cache.delete(block);
      this.cache.set(block, p);
      return p;
    }
    p = this.start(block);
    this.readAhead(block);
    return p;
  }

  private start(block: number): Promise<Uint8Array> {
    const p = this.load(block);
    this.cache.set(block, p);
    p.catch(() => this.cache.delete(block));
    if (this.cache.size > this.maxEntries) {
      const oldest = this.cache.keys().next().value as number;
      this.cache.delete(oldest);
    }
    return p;
  }

  /**
   * Passes walk blocks in order: after a miss, start reading the next few
   * allocated blocks' bitmaps too, so their latencies overlap instead of
   * adding up one await at a time.
   */
  private readAhead(block: number): void {
    const bat = this.vhd.meta.bat!;
    const depth = Math.min(READ_AHEAD, this.maxEntries >> 2);
    let started = 0;
    for (let b = block + 1; b < bat.length && b <= block + 4 * READ_AHEAD && started < depth; b++) {
      if (bat.get(b) === null || this.cache.has(b)) continue;
      this.start(b).catch(() => undefined);
      started++;
    }
  }

  private async load(block: number): Promise<Uint8Array> {
    const m = this.vhd.meta;
    const sector = m.bat!.get(block);
    if (sector === null) throw new Error(`internal: bitmap of unallocated block ${block}`);
    const b = new Uint8Array(m.bitmapSize);
    await readExact(this.vhd.file, b, 0, b.length, sector * SECTOR);
    return b;
  }
}
