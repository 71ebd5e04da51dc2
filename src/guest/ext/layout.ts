/**
 * The file system's fixed structures, from the geometry and the descriptors
 * alone: superblock copies, descriptor blocks, reserved GDT blocks, bitmaps,
 * inode tables; and what a BLOCK_UNINIT group has in use.
 */
import { BG_BLOCK_UNINIT, superAndDescRuns, type GroupTable } from './groups.js';
import type { Superblock } from './superblock.js';

export type FixedKind = 'super' | 'blockBitmap' | 'inodeBitmap' | 'inodeTable';

/** Calls `add` for every fixed structure: runs of blocks [start, start + count). */
export function forEachFixed(sb: Superblock, t: GroupTable, add: (kind: FixedKind, start: number, count: number, group: number) => void): void {
  for (let g = 0; g < t.count; g++) {
    for (const [s, n] of superAndDescRuns(sb, g)) add('super', s, n, g);
    add('blockBitmap', t.blockBitmap[g], 1, g);
    add('inodeBitmap', t.inodeBitmap[g], 1, g);
    add('inodeTable', t.inodeTable[g], sb.inodeTableBlocks, g);
  }
}

/**
 * Blocks in use that a BLOCK_UNINIT group's missing bitmap stands for: its
 * superblock copy and descriptors, and its own bitmaps and inode table
 * wherever flex_bg put them. This is e2fsprogs' mark_uninit_bg_group_blocks,
 * applied to every group flagged BLOCK_UNINIT.
 */
export function forEachUninitUsed(sb: Superblock, t: GroupTable, add: (start: number, count: number) => void): void {
  for (let g = 0; g < t.count; g++) {
    if (!(t.flags[g] & BG_BLOCK_UNINIT)) continue;
    for (const [s, n] of superAndDescRuns(sb, g)) add(s, n);
    add(t.inodeTable[g], sb.inodeTableBlocks);
    add(t.blockBitmap[g], 1);
    add(t.inodeBitmap[g], 1);
  }
}
