/**
 * Independent check that a disk is minimal, as `compact` promises:
 *  - differencing: no allocated block with an empty bitmap, and no set sector
 *    whose data equals what the parent chain reads there;
 *  - dynamic: no allocated block whose visible content is all zero.
 * Reads bitmaps and data directly (not through the planner).
 */
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openChain } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';
import { testBit, SECTOR } from '../../src/format/index.js';
import { readAt } from '../../src/io/fsys.js';

export async function nonMinimal(disk: string, parent?: string): Promise<string[]> {
  const chain = await openChain(nodeFileSystem, disk, { parent });
  const problems: string[] = [];
  try {
    const leaf = chain.layersLeafFirst[0];
    const m = leaf.meta;
    if (m.type === 'fixed') return problems;
    const spb = m.blockSize! / SECTOR;
    const reader = new ChainReader(chain);
    const vs = m.virtualSize / SECTOR;
    for (const b of m.bat!.allocated()) {
      const off = m.bat!.get(b)! * SECTOR;
      const bm = await readAt(leaf.vhd.file, off, m.bitmapSize);
      const data = await readAt(leaf.vhd.file, off + m.bitmapSize, m.blockSize!);
      const first = b * spb;
      const n = Math.max(0, Math.min(spb, vs - first));
      let anySet = false;
      if (m.type === 'dynamic') {
        let allZero = true;
        for (let s = 0; s < n; s++) {
          if (!testBit(bm, s)) continue;
          anySet = true;
          for (let i = s * SECTOR; i < (s + 1) * SECTOR; i++) if (data[i] !== 0) { allZero = false; break; }
          if (!allZero) break;
        }
        if (allZero) problems.push(`block ${b} is allocated but reads all zero`);
        continue;
      }
      const parent = new Uint8Array(n * SECTOR);
      if (n > 0) await reader.readSectors(1, first, n, parent, 0);
      for (let s = 0; s < spb; s++) {
        if (!testBit(bm, s)) continue;
        anySet = true;
        if (s >= n) { problems.push(`block ${b} sector ${s} is set past the end of the disk`); continue; }
        if (Buffer.from(data.buffer, data.byteOffset + s * SECTOR, SECTOR).equals(Buffer.from(parent.buffer, s * SECTOR, SECTOR))) {
          problems.push(`block ${b} sector ${s} equals the parent`);
        }
      }
      if (!anySet) problems.push(`block ${b} is allocated with an empty bitmap`);
    }
  } finally {
    await chain.close();
  }
  return problems;
}
