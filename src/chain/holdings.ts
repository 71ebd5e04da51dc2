/**
 * What each layer of a chain holds, in guest bytes: the sectors whose bitmap
 * bit is set (differencing and dynamic layers; everything for a fixed one),
 * and the blocks it allocates. Read from the BAT and the bitmaps alone, one
 * bitmap per allocated block; no data is read.
 */
import { runEnd, SECTOR, testBit } from '../format/index.js';
import { readExactSync } from '../io/fsys.js';
import { RangeSet, RangeSetBuilder } from '../guest/ranges.js';
import type { Layer } from './chain.js';

export interface Holdings {
  /** Guest bytes of the sectors this layer holds (bit set), clipped to its virtual size. */
  sectors: RangeSet;
  /** Guest bytes of the blocks it allocates (whole blocks, clipped to its virtual size). */
  blocks: RangeSet;
}

export function layerHoldings(layer: Layer): Holdings {
  const m = layer.meta;
  if (m.type === 'fixed') {
    const all = RangeSet.of(0, m.virtualSize);
    return { sectors: all, blocks: all };
  }
  const bs = m.blockSize!;
  const spb = bs / SECTOR;
  const sectors = new RangeSetBuilder();
  const blocks = new RangeSetBuilder();
  const bm = new Uint8Array(m.bitmapSize);
  for (const b of m.bat!.allocated()) {
    const start = b * bs;
    const n = Math.min(spb, (m.virtualSize - start) / SECTOR);
    blocks.add(start, start + n * SECTOR);
    readExactSync(layer.vhd.file, bm, 0, bm.length, m.bat!.get(b)! * SECTOR);
    for (let i = 0; i < n;) {
      const e = runEnd(bm, i, n);
      if (testBit(bm, i)) sectors.add(start + i * SECTOR, start + e * SECTOR);
      i = e;
    }
  }
  return { sectors: sectors.build(), blocks: blocks.build() };
}
