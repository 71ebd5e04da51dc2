/**
 * On-disk inodes (e2fsprogs struct ext2_inode_large): the fields the reader
 * needs, the metadata_csum inode checksum, and the extended attributes kept
 * in the inode body (where inline_data keeps "system.data").
 */
import { crc32c, crc32cU32 } from './checksum.js';
import { hasIncompat, hasRoCompat, INCOMPAT, RO_COMPAT, type Superblock } from './superblock.js';

/** Reserved inodes with a fixed role. */
export const BAD_BLOCKS_INO = 1;
export const ROOT_INO = 2;
export const RESIZE_INO = 7;

export const S_IFMT = 0xf000;
export const S_IFREG = 0x8000;
export const S_IFDIR = 0x4000;
export const S_IFLNK = 0xa000;

export const FL_INDEX = 0x1000;
export const FL_HUGE_FILE = 0x40000;
export const FL_EXTENTS = 0x80000;
export const FL_EA_INODE = 0x200000;
export const FL_INLINE_DATA = 0x10000000;

/** i_block: 15 32-bit words, 60 bytes at offset 0x28. */
export const I_BLOCK_OFFSET = 0x28;
export const I_BLOCK_SIZE = 60;

export interface Inode {
  ino: number;
  mode: number;
  /** i_size with i_size_high. */
  size: number;
  links: number;
  dtime: number;
  flags: number;
  generation: number;
  /** Space charged to the inode in 512-byte units (i_blocks, huge_file aware). */
  sectors: number;
  /** Extended attribute block, 0 for none. */
  fileAcl: number;
  /** i_block (60 bytes): block map, extent root, inline data or a fast symlink's target. */
  block: Uint8Array;
  /** The whole on-disk inode (s_inode_size bytes). */
  raw: Uint8Array;
  extraIsize: number;
}

/** Decodes the inode `raw` (s_inode_size bytes) of number `ino`. */
export function parseInode(sb: Superblock, ino: number, raw: Uint8Array): Inode {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.length);
  const flags = dv.getUint32(0x20, true);
  let sectors = dv.getUint32(0x1c, true);
  if (hasRoCompat(sb, RO_COMPAT.HUGE_FILE)) {
    sectors += dv.getUint16(0x74, true) * 2 ** 32;
    if (flags & FL_HUGE_FILE) sectors *= sb.blockSize / 512;
  }
  const fileAcl = dv.getUint32(0x68, true) + (hasIncompat(sb, INCOMPAT.BIT64) ? dv.getUint16(0x76, true) * 2 ** 32 : 0);
  return {
    ino,
    mode: dv.getUint16(0x00, true),
    size: dv.getUint32(0x04, true) + dv.getUint32(0x6c, true) * 2 ** 32,
    links: dv.getUint16(0x1a, true),
    dtime: dv.getUint32(0x14, true),
    flags,
    generation: dv.getUint32(0x64, true),
    sectors,
    fileAcl,
    block: raw.subarray(I_BLOCK_OFFSET, I_BLOCK_OFFSET + I_BLOCK_SIZE),
    raw,
    extraIsize: raw.length > 128 ? dv.getUint16(0x80, true) : 0,
  };
}

/** True when the inode's extra size fits the inode (it bounds the in-inode attributes). */
export function extraIsizeOk(sb: Superblock, i: Inode): boolean {
  return sb.inodeSize === 128 || (i.extraIsize % 4 === 0 && 128 + i.extraIsize <= sb.inodeSize);
}

/** The metadata_csum check of e2fsprogs `ext2fs_inode_csum_verify` (true when the volume has no checksums). */
export function inodeChecksumOk(sb: Superblock, i: Inode): boolean {
  if (!hasRoCompat(sb, RO_COMPAT.METADATA_CSUM)) return true;
  const r = i.raw;
  const hasHi = r.length > 128 && i.extraIsize >= 4;
  const stored = (r[0x7c] | (r[0x7d] << 8)) + (hasHi ? (r[0x82] | (r[0x83] << 8)) * 0x10000 : 0);
  // CRC-32C of the inode number, the generation, then the inode with its checksum fields read as zero.
  let c = crc32cU32(sb.csumSeed, i.ino);
  c = crc32cU32(c, i.generation);
  c = crc32c(c, r, 0, 0x7c);
  c = crc32c(c, ZERO2);
  if (hasHi) {
    c = crc32c(c, r, 0x7e, 0x82);
    c = crc32c(c, ZERO2);
    c = crc32c(c, r, 0x84, r.length);
  } else {
    c = crc32c(c, r, 0x7e, r.length);
  }
  return (hasHi ? c >>> 0 : c & 0xffff) === stored;
}

const ZERO2 = new Uint8Array(2);

export function isDir(i: Inode): boolean {
  return (i.mode & S_IFMT) === S_IFDIR;
}
export function isReg(i: Inode): boolean {
  return (i.mode & S_IFMT) === S_IFREG;
}
export function isSymlink(i: Inode): boolean {
  return (i.mode & S_IFMT) === S_IFLNK;
}

/**
 * True when a symlink keeps its target in i_block (no blocks): the kernel's
 * ext4_inode_is_fast_symlink (space charged, less an xattr block, is zero).
 */
export function isFastSymlink(sb: Superblock, i: Inode): boolean {
  if (!isSymlink(i)) return false;
  if (i.flags & FL_EA_INODE) return i.size > 0 && i.size < I_BLOCK_SIZE;
  if (i.flags & FL_INLINE_DATA) return false;
  const eaSectors = i.fileAcl ? sb.blockSize / 512 : 0;
  return i.sectors - eaSectors === 0;
}

/** True when i_block is a block map, an extent tree or nothing at all (devices, fifos, sockets: nothing). */
export function hasBlockMap(sb: Superblock, i: Inode): boolean {
  const t = i.mode & S_IFMT;
  if (t !== S_IFREG && t !== S_IFDIR && t !== S_IFLNK) return false;
  if (i.flags & FL_INLINE_DATA) return false;
  return !isFastSymlink(sb, i);
}

/**
 * The value of the in-inode extended attribute `name` of namespace `index`
 * (inline data: index 7, "data"), or null. Every offset is checked against
 * the inode; a malformed attribute area gives null.
 */
export function inodeXattr(sb: Superblock, i: Inode, index: number, name: string): Uint8Array | null {
  if (sb.inodeSize <= 128 || !extraIsizeOk(sb, i)) return null;
  const r = i.raw;
  const hdr = 128 + i.extraIsize;
  if (hdr + 4 > r.length) return null;
  const dv = new DataView(r.buffer, r.byteOffset, r.length);
  if (dv.getUint32(hdr, true) !== 0xea020000) return null;
  const base = hdr + 4;
  const want = new TextEncoder().encode(name);
  let at = base;
  while (at + 16 <= r.length) {
    if (dv.getUint32(at, true) === 0) break;
    const nameLen = r[at];
    const nameIndex = r[at + 1];
    const valueOffs = dv.getUint16(at + 2, true);
    const valueInum = dv.getUint32(at + 4, true);
    const valueSize = dv.getUint32(at + 8, true);
    if (at + 16 + nameLen > r.length) return null;
    if (nameIndex === index && nameLen === want.length && want.every((c, k) => r[at + 16 + k] === c)) {
      if (valueInum !== 0) return null;
      const vs = base + valueOffs;
      if (vs + valueSize > r.length) return null;
      return r.subarray(vs, vs + valueSize);
    }
    at += (16 + nameLen + 3) & ~3;
  }
  return null;
}

/** The largest size a file of this map type can have: 2^32 blocks with extents, 12 + p + p^2 + p^3 blocks without. */
export function maxFileBytes(sb: Superblock, i: Inode): number {
  if (i.flags & FL_INLINE_DATA) return sb.inodeSize + I_BLOCK_SIZE;
  if (i.flags & FL_EXTENTS) return 2 ** 32 * sb.blockSize;
  const p = sb.blockSize / 4;
  return Math.min(2 ** 32, 12 + p + p * p + p * p * p) * sb.blockSize;
}
