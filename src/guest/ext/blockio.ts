/**
 * Reading blocks of an ext volume: single blocks (extent-tree and indirect
 * blocks, directories) and runs of blocks read through few large windows
 * (bitmaps, inode tables), every range checked against the file system's
 * own size first.
 */
import { VhdToolError } from '../../errors.js';
import { GuestError } from '../errors.js';
import { readChecked, type ByteSource } from '../source.js';

/** Largest window read at once (inode tables, bitmaps, directory runs). */
export const WINDOW_BYTES = 4 * 1024 * 1024;
/** Largest gap between two runs read through as part of one window. */
const GAP_BYTES = 256 * 1024;

export class BlockDevice {
  constructor(
    readonly src: ByteSource,
    readonly blockSize: number,
    /** Blocks the file system has (s_blocks_count): nothing at or past it is read. */
    readonly blocksCount: number,
  ) {}

  /** True when blocks [block, block + count) lie inside the file system (block 0 included). */
  inRange(block: number, count = 1): boolean {
    return Number.isSafeInteger(block) && block >= 0 && count >= 0 && block + count <= this.blocksCount;
  }

  /** Reads `count` blocks at `block`; `what` names the structure in the error a bad range gives. */
  read(block: number, count: number, what: string): Promise<Uint8Array> {
    if (!this.inRange(block, count)) {
      return Promise.reject(new GuestError(`${what}: blocks ${block}..${block + count - 1} lie outside the file system (${this.blocksCount} blocks)`));
    }
    return readChecked(this.src, block * this.blockSize, count * this.blockSize, what);
  }

  /**
   * Reads runs [start, start + count) (in blocks), in the order given, through
   * windows of up to WINDOW_BYTES: a run that starts at or shortly after the
   * previous one's end shares its window, and a run longer than a window is
   * read in window-sized pieces. `visit` gets each piece: the run's index,
   * its bytes (a view into the window, valid until `visit` returns) and the
   * piece's first block relative to the run's start.
   */
  async readRuns(
    runs: ReadonlyArray<{ start: number; count: number }>,
    what: string,
    visit: (index: number, bytes: Uint8Array, blockOffset: number) => void | Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    const bs = this.blockSize;
    const maxBlocks = Math.max(1, Math.floor(WINDOW_BYTES / bs));
    const gap = Math.floor(GAP_BYTES / bs);
    let i = 0;
    while (i < runs.length) {
      if (signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      const first = runs[i];
      if (first.count <= 0) { i++; continue; }
      if (first.count > maxBlocks) {
        for (let off = 0; off < first.count; off += maxBlocks) {
          const n = Math.min(maxBlocks, first.count - off);
          await visit(i, await this.read(first.start + off, n, what), off);
        }
        i++;
        continue;
      }
      const start = first.start;
      let end = first.start + first.count;
      let j = i + 1;
      while (j < runs.length) {
        const r = runs[j];
        if (r.count <= 0) { j++; continue; }
        if (r.start < start || r.start > end + gap) break;
        const e = Math.max(end, r.start + r.count);
        if (e - start > maxBlocks) break;
        end = e;
        j++;
      }
      const win = await this.read(start, end - start, what);
      for (let k = i; k < j; k++) {
        const r = runs[k];
        if (r.count <= 0) continue;
        const off = (r.start - start) * bs;
        await visit(k, win.subarray(off, off + r.count * bs), 0);
      }
      i = j;
    }
  }
}
