/**
 * The free map: blocks whose bit is clear in their group's block bitmap (bit
 * n of byte k = block first + 8k + n; set = in use), as e2fsprogs'
 * ext2fs_read_bitmaps builds it. A BLOCK_UNINIT group (honoured only when
 * its descriptor checksum matches) has no bitmap on disk: all of it is free
 * except what it holds itself (see layout.ts).
 */
import { RangeSet, RangeSetBuilder } from '../ranges.js';
import type { AnomalyLog } from './anomalies.js';
import type { BlockDevice } from './blockio.js';
import { crc32c } from './checksum.js';
import { blockBitmapUninit, groupBlocks, groupFirstBlock, type GroupTable } from './groups.js';
import { forEachUninitUsed } from './layout.js';
import { hasRoCompat, RO_COMPAT, type Superblock } from './superblock.js';

/** Free blocks of the volume, as byte ranges. */
export async function readFreeMap(dev: BlockDevice, sb: Superblock, t: GroupTable, log: AnomalyLog, signal?: AbortSignal): Promise<RangeSet> {
  const bs = sb.blockSize;
  const free = new RangeSetBuilder(1024);
  const runs: Array<{ start: number; count: number; group: number }> = [];
  for (let g = 0; g < t.count; g++) {
    if (blockBitmapUninit(sb, t, g)) free.add(groupFirstBlock(sb, g) * bs, (groupFirstBlock(sb, g) + groupBlocks(sb, g)) * bs);
    else runs.push({ start: t.blockBitmap[g], count: 1, group: g });
  }
  const csum = hasRoCompat(sb, RO_COMPAT.METADATA_CSUM);
  const bitmapBytes = sb.blocksPerGroup / 8;
  await dev.readRuns(runs, 'block bitmap', (i, bytes) => {
    const g = runs[i].group;
    if (csum) {
      const calc = crc32c(sb.csumSeed, bytes, 0, bitmapBytes);
      const wide = sb.descSize >= 64;
      if ((wide ? calc : calc & 0xffff) !== t.blockBitmapCsum[g]) {
        log.add('bad-checksum', `block bitmap of group ${g} (block ${t.blockBitmap[g]}) fails its checksum`, t.blockBitmap[g] * bs, (t.blockBitmap[g] + 1) * bs);
      }
    }
    addClearRuns(bytes, groupBlocks(sb, g), groupFirstBlock(sb, g), bs, free);
  }, signal);
  const used = new RangeSetBuilder();
  forEachUninitUsed(sb, t, (s, n) => used.add(s * bs, (s + n) * bs));
  return free.build().subtract(used.build());
}

/** Adds, as byte ranges, the runs of clear bits among the first `bits` bits of `map` (bit i = block first + i). */
export function addClearRuns(map: Uint8Array, bits: number, first: number, bs: number, out: RangeSetBuilder): void {
  let i = 0;
  while (i < bits) {
    // Skip set bits, a byte at a time where possible.
    while (i < bits && (i & 7) === 0 && map[i >> 3] === 0xff) i += 8;
    if (i >= bits) break;
    if (map[i >> 3] & (1 << (i & 7))) { i++; continue; }
    const s = i;
    while (i < bits) {
      if ((i & 7) === 0 && map[i >> 3] === 0) { i += 8; continue; }
      if (map[i >> 3] & (1 << (i & 7))) break;
      i++;
    }
    const e = Math.min(i, bits);
    out.add((first + s) * bs, (first + e) * bs);
  }
}
