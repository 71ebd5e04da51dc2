/**
 * Which file supplies each sector of a chain's guest-visible content.
 *
 * For a range of virtual sectors seen from layer `i`, `resolveRange` returns
 * pieces in order that cover the range exactly. Each piece is a run of
 * sectors read from one layer at one file offset, or a run of zeros. The rule
 * is the spec's, per sector:
 *   - fixed layer: its data;
 *   - sparse layer, block not allocated: zeros (dynamic) or the parent (differencing);
 *   - allocated block, bit 1: this layer's data;
 *   - allocated block, bit 0: zeros (dynamic) or the parent (differencing);
 *   - past a layer's virtual size: zeros.
 */
import { forEachRun, SECTOR } from '../format/index.js';
import { BitmapCache } from './bitmaps.js';
import type { Chain } from './chain.js';

export interface Piece {
  /** First virtual sector. */
  sector: number;
  /** Number of sectors. */
  count: number;
  /** Layer index (leaf = 0) supplying the data, -1 for zeros, or -2 for "below `stopAt`". */
  layer: number;
  /** Byte offset of the first sector in that layer's file (0 for zeros). */
  fileOffset: number;
}

export class ChainResolver {
  readonly bitmaps: BitmapCache[];

  constructor(readonly chain: Chain) {
    this.bitmaps = chain.layersLeafFirst.map((l) => new BitmapCache(l.vhd));
  }

  /**
   * Pieces covering sectors [sector, sector+count) as seen from layer `from`,
   * coalesced. Sectors that would be read from layer `stopAt` or deeper come
   * back as pieces with layer -2.
   */
  resolveRange(from: number, sector: number, count: number, stopAt = Infinity): Piece[] {
    const out: Piece[] = [];
    this.resolveInto(from, sector, count, out, stopAt);
    return out;
  }

  private push(out: Piece[], p: Piece): void {
    const last = out[out.length - 1];
    if (last && last.layer === p.layer && last.sector + last.count === p.sector &&
        (p.layer < 0 || last.fileOffset + last.count * SECTOR === p.fileOffset)) {
      last.count += p.count;
      return;
    }
    out.push(p);
  }

  resolveInto(from: number, sector: number, count: number, out: Piece[], stopAt = Infinity): void {
    if (count <= 0) return;
    const layers = this.chain.layersLeafFirst;
    if (from >= stopAt) {
      this.push(out, { sector, count, layer: -2, fileOffset: 0 });
      return;
    }
    if (from >= layers.length) {
      this.push(out, { sector, count, layer: -1, fileOffset: 0 });
      return;
    }
    const meta = layers[from].meta;
    const vs = meta.virtualSize / SECTOR;
    if (sector >= vs) {
      this.push(out, { sector, count, layer: -1, fileOffset: 0 });
      return;
    }
    if (sector + count > vs) {
      this.resolveInto(from, sector, vs - sector, out, stopAt);
      this.push(out, { sector: vs, count: sector + count - vs, layer: -1, fileOffset: 0 });
      return;
    }
    if (meta.type === 'fixed') {
      this.push(out, { sector, count, layer: from, fileOffset: sector * SECTOR });
      return;
    }
    const spb = meta.blockSize! / SECTOR;
    const diff = meta.type === 'differencing';
    let s = sector;
    const end = sector + count;
    while (s < end) {
      const block = Math.floor(s / spb);
      const blockStart = block * spb;
      const n = Math.min(end, blockStart + spb) - s;
      const entry = meta.bat!.get(block);
      if (entry === null) {
        if (diff) this.resolveInto(from + 1, s, n, out, stopAt);
        else this.push(out, { sector: s, count: n, layer: -1, fileOffset: 0 });
      } else {
        const bm = this.bitmaps[from].get(block);
        const dataStart = entry * SECTOR + meta.bitmapSize;
        const runs: Array<[number, number, boolean]> = [];
        forEachRun(bm, s - blockStart, n, (st, c, set) => runs.push([st, c, set]));
        for (const [st, c, set] of runs) {
          const vsec = blockStart + st;
          if (set) this.push(out, { sector: vsec, count: c, layer: from, fileOffset: dataStart + st * SECTOR });
          else if (diff) this.resolveInto(from + 1, vsec, c, out, stopAt);
          else this.push(out, { sector: vsec, count: c, layer: -1, fileOffset: 0 });
        }
      }
      s += n;
    }
  }
}
