/**
 * Independent checks of a rebase result, reading the files directly (not
 * through the planner): which sectors a differencing disk stores itself, and
 * where two views differ. A rebase result is right when its view equals the
 * disk's and the sectors it stores are exactly those where the disk's view
 * differs from the new parent's (which makes it minimal: no stored sector
 * equals the new parent's, and a stored zero sector only hides non-zero data).
 */
import { SECTOR, testBit } from '../../src/format/index.js';
import { nodeFileSystem, readAt } from '../../src/io/fsys.js';
import { openVhd } from '../../src/vhd/image.js';

/** Virtual sectors whose bitmap bit is 1 in `disk` itself (ascending). */
export async function storedSectors(disk: string): Promise<number[]> {
  const vhd = await openVhd(nodeFileSystem, disk, { mode: 'strict' });
  try {
    const m = vhd.meta;
    const out: number[] = [];
    const spb = m.blockSize! / SECTOR;
    const total = m.virtualSize / SECTOR;
    const blocks = [...m.bat!.allocated()].sort((x, y) => x - y);
    for (const b of blocks) {
      const bm = await readAt(vhd.file, m.bat!.get(b)! * SECTOR, m.bitmapSize);
      for (let s = 0; s < spb; s++) {
        if (!testBit(bm, s)) continue;
        if (b * spb + s >= total) throw new Error(`${disk}: block ${b} sets sector ${s}, past the end of the disk`);
        out.push(b * spb + s);
      }
    }
    return out;
  } finally {
    await vhd.close();
  }
}

/** Allocated blocks whose bitmap has no bit set. */
export async function emptyBlocks(disk: string): Promise<number[]> {
  const vhd = await openVhd(nodeFileSystem, disk, { mode: 'strict' });
  try {
    const m = vhd.meta;
    const out: number[] = [];
    for (const b of m.bat!.allocated()) {
      const bm = await readAt(vhd.file, m.bat!.get(b)! * SECTOR, m.bitmapSize);
      if (bm.every((x) => x === 0)) out.push(b);
    }
    return out;
  } finally {
    await vhd.close();
  }
}

/** Sectors where `a` and `b` differ (over a's length; b reads zeros past its end). */
export function differingSectors(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  const ba = Buffer.from(a.buffer, a.byteOffset, a.length);
  const bb = Buffer.from(b.buffer, b.byteOffset, b.length);
  const zero = Buffer.alloc(SECTOR);
  for (let s = 0; s * SECTOR < a.length; s++) {
    const o = s * SECTOR;
    const other = o + SECTOR <= bb.length ? bb.subarray(o, o + SECTOR) : zero;
    if (!ba.subarray(o, o + SECTOR).equals(other)) out.push(s);
  }
  return out;
}

/** Of the stored sectors, those holding zeros over a new parent that also reads zero there (must be none). */
export function zerosOverZeros(stored: number[], view: Uint8Array, parentView: Uint8Array): number[] {
  const isZero = (b: Uint8Array, s: number) => b.subarray(s * SECTOR, (s + 1) * SECTOR).every((x) => x === 0);
  return stored.filter((s) => isZero(view, s) && (s * SECTOR >= parentView.length || isZero(parentView, s)));
}
