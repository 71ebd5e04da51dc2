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
import { runEnd, SECTOR, testBit } from '../format/index.js';
import { BitmapCache } from './bitmaps.js';
import type { Chain } from './chain.js';
import type { VhdMeta } from '../vhd/image.js';

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

  resolveInto(from: number, sector: number, count: number, out: Piece[], stopAt = Infinity): void {
    if (count <= 0) return;
    const layers = this.chain.layersLeafFirst;
    if (from >= stopAt) {
      pushPiece(out, { sector, count, layer: -2, fileOffset: 0 });
      return;
    }
    const meta = from < layers.length ? layers[from].meta : null;
    // Past the chain, or past this layer's virtual size: zeros.
    const inSize = meta ? Math.max(0, Math.min(count, meta.virtualSize / SECTOR - sector)) : 0;
    if (inSize > 0) {
      if (meta!.type === 'fixed') pushPiece(out, { sector, count: inSize, layer: from, fileOffset: sector * SECTOR });
      else this.resolveSparse(from, meta!, sector, inSize, out, stopAt);
    }
    if (inSize < count) pushPiece(out, { sector: sector + inSize, count: count - inSize, layer: -1, fileOffset: 0 });
  }

  /**
   * A dynamic or differencing layer, block by block. Kept apart from
   * resolveInto, and free of callbacks and temporary arrays: this is the hot
   * loop, and a small function is also cheap for the optimizing compiler.
   */
  private resolveSparse(from: number, meta: VhdMeta, sector: number, count: number, out: Piece[], stopAt: number): void {
    const spb = meta.blockSize! / SECTOR;
    const diff = meta.type === 'differencing';
    const end = sector + count;
    for (let s = sector; s < end;) {
      const block = Math.floor(s / spb);
      const blockStart = block * spb;
      const n = Math.min(end, blockStart + spb) - s;
      const entry = meta.bat!.get(block);
      if (entry === null) {
        if (diff) this.resolveInto(from + 1, s, n, out, stopAt);
        else pushPiece(out, { sector: s, count: n, layer: -1, fileOffset: 0 });
      } else {
        const bm = this.bitmaps[from].get(block);
        const dataStart = entry * SECTOR + meta.bitmapSize;
        // Runs of equal bits, walked in place.
        const stEnd = s - blockStart + n;
        for (let st = s - blockStart; st < stEnd;) {
          const e = runEnd(bm, st, stEnd);
          const vsec = blockStart + st;
          if (testBit(bm, st)) pushPiece(out, { sector: vsec, count: e - st, layer: from, fileOffset: dataStart + st * SECTOR });
          else if (diff) this.resolveInto(from + 1, vsec, e - st, out, stopAt);
          else pushPiece(out, { sector: vsec, count: e - st, layer: -1, fileOffset: 0 });
          st = e;
        }
      }
      s += n;
    }
  }
}

/** Appends `p` to `out`, extending the last piece when `p` continues it (same layer, next sectors, next bytes). */
export function pushPiece(out: Piece[], p: Piece): void {
  const last = out[out.length - 1];
  if (last && last.layer === p.layer && last.sector + last.count === p.sector &&
      (p.layer < 0 || last.fileOffset + last.count * SECTOR === p.fileOffset)) {
    last.count += p.count;
    return;
  }
  out.push(p);
}
