/**
 * Block groups: where each group's superblock copy, descriptors, reserved GDT
 * blocks, bitmaps and inode table lie, and the group descriptor table itself
 * (32-byte descriptors, or s_desc_size with 64bit).
 *
 * Placement follows e2fsprogs `ext2fs_bg_has_super`,
 * `ext2fs_super_and_bgd_loc2` and `ext2fs_descriptor_block_loc2`
 * (sparse_super, sparse_super2, meta_bg); descriptor checksums follow
 * `ext2fs_group_desc_csum` (CRC-16 for uninit_bg, CRC-32C for metadata_csum).
 */
import { GuestError } from '../errors.js';
import type { BlockDevice } from './blockio.js';
import { crc16, crc32c, crc32cU32 } from './checksum.js';
import { hasGroupCsum, hasIncompat, hasRoCompat, INCOMPAT, RO_COMPAT, COMPAT, hasCompat, type Superblock } from './superblock.js';

export const BG_INODE_UNINIT = 0x1;
export const BG_BLOCK_UNINIT = 0x2;

/** The descriptor table, one typed array per field (a million groups cost ~40 MB, not a million objects). */
export interface GroupTable {
  count: number;
  blockBitmap: Float64Array;
  inodeBitmap: Float64Array;
  inodeTable: Float64Array;
  flags: Uint16Array;
  blockBitmapCsum: Uint32Array;
  inodeBitmapCsum: Uint32Array;
  /** 1 when the descriptor's checksum matches (or the volume has none). */
  csumOk: Uint8Array;
}

function isPowerOf(n: number, b: number): boolean {
  while (n >= b && n % b === 0) n /= b;
  return n === 1;
}

/** True when group `g` holds a superblock copy (and, outside meta_bg, a descriptor copy). */
export function groupHasSuper(sb: Superblock, g: number): boolean {
  if (g === 0) return true;
  if (hasCompat(sb, COMPAT.SPARSE_SUPER2)) return g === sb.backupBgs[0] || g === sb.backupBgs[1];
  if (g <= 1 || !hasRoCompat(sb, RO_COMPAT.SPARSE_SUPER)) return true;
  if ((g & 1) === 0) return false;
  return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
}

export function groupFirstBlock(sb: Superblock, g: number): number {
  return sb.firstDataBlock + g * sb.blocksPerGroup;
}

/** Blocks in group `g` (the last group may be short). */
export function groupBlocks(sb: Superblock, g: number): number {
  return Math.min(sb.blocksPerGroup, sb.blocksCount - groupFirstBlock(sb, g));
}

function descPerBlock(sb: Superblock): number {
  return sb.blockSize / sb.descSize;
}

/**
 * The runs of blocks at the start of group `g` holding its superblock copy,
 * descriptor blocks and reserved GDT blocks: [start, count] pairs (0 to 2 runs).
 */
export function superAndDescRuns(sb: Superblock, g: number): Array<[number, number]> {
  const groupBlock = groupFirstBlock(sb, g);
  const metaBg = hasIncompat(sb, INCOMPAT.META_BG);
  const oldDescBlocks = metaBg ? sb.firstMetaBg : sb.descBlocks + sb.reservedGdtBlocks;
  const hasSuper = groupHasSuper(sb, g);
  const dpb = descPerBlock(sb);
  const out: Array<[number, number]> = [];
  if (!metaBg || Math.floor(g / dpb) < sb.firstMetaBg) {
    if (hasSuper) out.push([groupBlock, 1 + Math.min(oldDescBlocks, sb.blocksCount - groupBlock - 1)]);
  } else {
    if (hasSuper) out.push([groupBlock, 1]);
    const r = g % dpb;
    if (r === 0 || r === 1 || r === dpb - 1) out.push([groupBlock + (hasSuper ? 1 : 0), 1]);
  }
  return out;
}

/** Where descriptor block `i` of the primary table lies. */
function descriptorBlock(sb: Superblock, i: number): number {
  if (!hasIncompat(sb, INCOMPAT.META_BG) || i < sb.firstMetaBg) return sb.firstDataBlock + 1 + i;
  const g = descPerBlock(sb) * i;
  return groupFirstBlock(sb, g) + (groupHasSuper(sb, g) ? 1 : 0);
}

/** Reads, checks and decodes the primary group descriptor table. */
export async function readGroupTable(dev: BlockDevice, sb: Superblock): Promise<GroupTable> {
  const n = sb.groupCount;
  const t: GroupTable = {
    count: n,
    blockBitmap: new Float64Array(n),
    inodeBitmap: new Float64Array(n),
    inodeTable: new Float64Array(n),
    flags: new Uint16Array(n),
    blockBitmapCsum: new Uint32Array(n),
    inodeBitmapCsum: new Uint32Array(n),
    csumOk: new Uint8Array(n),
  };
  // Descriptor block i holds groups [i * dpb, (i + 1) * dpb); runs of consecutive blocks are read together.
  const runs: Array<{ start: number; count: number; index: number }> = [];
  for (let i = 0; i < sb.descBlocks; i++) {
    const b = descriptorBlock(sb, i);
    const last = runs[runs.length - 1];
    if (last && last.start + last.count === b) last.count++;
    else runs.push({ start: b, count: 1, index: i });
  }
  const dpb = descPerBlock(sb);
  await dev.readRuns(runs, 'group descriptor table', (ri, bytes, blockOffset) => {
    const firstBlock = runs[ri].index + blockOffset;
    for (let b = 0; b < bytes.length / sb.blockSize; b++) {
      for (let k = 0; k < dpb; k++) {
        const g = (firstBlock + b) * dpb + k;
        if (g >= n) break;
        const at = b * sb.blockSize + k * sb.descSize;
        decodeDescriptor(sb, t, g, bytes.subarray(at, at + sb.descSize));
      }
    }
  });
  for (let g = 0; g < n; g++) checkDescriptor(sb, t, g);
  return t;
}

function decodeDescriptor(sb: Superblock, t: GroupTable, g: number, d: Uint8Array): void {
  const dv = new DataView(d.buffer, d.byteOffset, d.length);
  const wide = sb.descSize >= 64;
  const hi = (o: number) => (wide ? dv.getUint32(o, true) * 2 ** 32 : 0);
  t.blockBitmap[g] = dv.getUint32(0x00, true) + hi(0x20);
  t.inodeBitmap[g] = dv.getUint32(0x04, true) + hi(0x24);
  t.inodeTable[g] = dv.getUint32(0x08, true) + hi(0x28);
  t.flags[g] = dv.getUint16(0x12, true);
  t.blockBitmapCsum[g] = dv.getUint16(0x18, true) + (wide ? dv.getUint16(0x38, true) * 0x10000 : 0);
  t.inodeBitmapCsum[g] = dv.getUint16(0x1a, true) + (wide ? dv.getUint16(0x3a, true) * 0x10000 : 0);
  t.csumOk[g] = descriptorChecksumOk(sb, g, d) ? 1 : 0;
}

function descriptorChecksumOk(sb: Superblock, g: number, d: Uint8Array): boolean {
  if (!hasGroupCsum(sb)) return true;
  const stored = d[0x1e] | (d[0x1f] << 8);
  let calc: number;
  if (hasRoCompat(sb, RO_COMPAT.METADATA_CSUM)) {
    let c = crc32cU32(sb.csumSeed, g);
    c = crc32c(c, d, 0, 0x1e);
    c = crc32c(c, new Uint8Array(2));
    c = crc32c(c, d, 0x20, sb.descSize);
    calc = c & 0xffff;
  } else {
    let c = crc16(0xffff, sb.uuid);
    c = crc16(c, Uint8Array.of(g & 0xff, (g >>> 8) & 0xff, (g >>> 16) & 0xff, g >>> 24));
    c = crc16(c, d, 0, 0x1e);
    if (sb.descSize > 0x20) c = crc16(c, d, 0x20, sb.descSize);
    calc = c;
  }
  return calc === stored;
}

/**
 * Refuses a descriptor whose bitmaps or inode table lie outside the file
 * system, or outside their own group when flex_bg does not allow that (the
 * kernel's ext4_check_descriptors).
 */
function checkDescriptor(sb: Superblock, t: GroupTable, g: number): void {
  const flex = hasIncompat(sb, INCOMPAT.FLEX_BG);
  const lo = flex ? sb.firstDataBlock : groupFirstBlock(sb, g);
  const hi = flex ? sb.blocksCount : groupFirstBlock(sb, g) + groupBlocks(sb, g);
  const where = flex ? 'the file system' : `group ${g}`;
  const check = (field: string, start: number, count: number) => {
    if (!(start >= lo && start + count <= hi)) {
      throw new GuestError(`ext group descriptor ${g}: ${field} at block ${start} (${count} blocks) lies outside ${where} (blocks ${lo}..${hi - 1})`);
    }
  };
  check('block bitmap', t.blockBitmap[g], 1);
  check('inode bitmap', t.inodeBitmap[g], 1);
  check('inode table', t.inodeTable[g], sb.inodeTableBlocks);
}

/** True when group `g`'s block bitmap is not on disk and must be computed (BLOCK_UNINIT honoured). */
export function blockBitmapUninit(sb: Superblock, t: GroupTable, g: number): boolean {
  return hasGroupCsum(sb) && (t.flags[g] & BG_BLOCK_UNINIT) !== 0 && t.csumOk[g] === 1;
}

/** True when group `g` has no inode in use and its inode bitmap is not on disk (INODE_UNINIT honoured). */
export function inodeBitmapUninit(sb: Superblock, t: GroupTable, g: number): boolean {
  return hasGroupCsum(sb) && (t.flags[g] & BG_INODE_UNINIT) !== 0 && t.csumOk[g] === 1;
}
