/**
 * The spec's bitmap invariant: "All sectors within a block whose
 * corresponding bits in the bitmap are zero must contain 512 bytes of zero on
 * disk." Checked block by block in the task runner.
 */
import { VhdToolError } from '../errors.js';
import { SECTOR } from '../format/index.js';
import type { Vhd } from '../vhd/image.js';
import { BitmapCache } from '../chain/bitmaps.js';
import type { TaskRunner } from '../parallel/pool.js';
import type { UnsetZeroResult } from '../plan/tasks.js';

export interface DirtyBlock {
  block: number;
  /** Sectors (within the block) holding data while their bit is clear; first few only. */
  sectors: number[];
  count: number;
}

/** Returns the blocks that break the invariant (all of them, in block order). */
export async function findDirtyUnsetSectors(vhd: Vhd, runner: TaskRunner, bitmaps = new BitmapCache(vhd, 64), signal?: AbortSignal): Promise<DirtyBlock[]> {
  const m = vhd.meta;
  if (m.type === 'fixed') return [];
  const spb = m.blockSize! / SECTOR;
  const out: DirtyBlock[] = [];
  const inflight: Array<Promise<void>> = [];
  const limit = Math.max(2, runner.threads * 2);
  for (const block of m.bat!.allocated()) {
    if (signal?.aborted) {
      await Promise.allSettled(inflight);
      throw new VhdToolError('INTERRUPTED', 'interrupted');
    }
    const bitmap = bitmaps.get(block);
    // A full bitmap has no clear bit to check.
    if (!anyClear(bitmap, spb)) continue;
    const dataOffset = m.bat!.get(block)! * SECTOR + m.bitmapSize;
    const p = runner.run<UnsetZeroResult>({ kind: 'unsetZero', file: vhd.file.path, dataOffset, sectors: spb, bitmap }).then((r) => {
      if (r.dirtyCount > 0) out.push({ block, sectors: r.dirty, count: r.dirtyCount });
    });
    inflight.push(p);
    if (inflight.length >= limit) await inflight.shift();
  }
  await Promise.all(inflight);
  return out.sort((a, b) => a.block - b.block);
}

function anyClear(bm: Uint8Array, n: number): boolean {
  const full = n >>> 3;
  for (let i = 0; i < full; i++) if (bm[i] !== 0xff) return true;
  for (let i = full * 8; i < n; i++) if ((bm[i >>> 3] & (0x80 >>> (i & 7))) === 0) return true;
  return false;
}
