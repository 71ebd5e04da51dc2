/**
 * The ext2/3/4 superblock: 1024 bytes at byte 1024 of the volume, all
 * integers little-endian. Decoding checks every field the rest of the reader
 * trusts (block size, counts, group geometry, descriptor size) against the
 * volume, and refuses features whose meaning for allocation it does not know.
 *
 * Field offsets follow e2fsprogs `lib/ext2fs/ext2_fs.h` (struct
 * ext2_super_block); the feature sets and the ext2/ext3/ext4 rule follow the
 * kernel's EXT2/EXT3_FEATURE_*_SUPP masks.
 */
import { GuestError } from '../errors.js';
import { crc32c } from './checksum.js';

export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
export const EXT_MAGIC = 0xef53;

export const COMPAT = {
  DIR_PREALLOC: 0x1, IMAGIC_INODES: 0x2, HAS_JOURNAL: 0x4, EXT_ATTR: 0x8, RESIZE_INODE: 0x10, DIR_INDEX: 0x20,
  LAZY_BG: 0x40, EXCLUDE_INODE: 0x80, EXCLUDE_BITMAP: 0x100, SPARSE_SUPER2: 0x200, FAST_COMMIT: 0x400,
  STABLE_INODES: 0x800, ORPHAN_FILE: 0x1000,
} as const;

export const INCOMPAT = {
  COMPRESSION: 0x1, FILETYPE: 0x2, RECOVER: 0x4, JOURNAL_DEV: 0x8, META_BG: 0x10, EXTENTS: 0x40, BIT64: 0x80,
  MMP: 0x100, FLEX_BG: 0x200, EA_INODE: 0x400, DIRDATA: 0x1000, CSUM_SEED: 0x2000, LARGEDIR: 0x4000,
  INLINE_DATA: 0x8000, ENCRYPT: 0x10000, CASEFOLD: 0x20000,
} as const;

export const RO_COMPAT = {
  SPARSE_SUPER: 0x1, LARGE_FILE: 0x2, BTREE_DIR: 0x4, HUGE_FILE: 0x8, GDT_CSUM: 0x10, DIR_NLINK: 0x20,
  EXTRA_ISIZE: 0x40, HAS_SNAPSHOT: 0x80, QUOTA: 0x100, BIGALLOC: 0x200, METADATA_CSUM: 0x400, REPLICA: 0x800,
  READONLY: 0x1000, PROJECT: 0x2000, SHARED_BLOCKS: 0x4000, VERITY: 0x8000, ORPHAN_PRESENT: 0x10000,
} as const;

const INCOMPAT_NAMES: Record<number, string> = {
  0x1: 'compression', 0x2: 'filetype', 0x4: 'needs_recovery', 0x8: 'journal_dev', 0x10: 'meta_bg', 0x40: 'extent',
  0x80: '64bit', 0x100: 'mmp', 0x200: 'flex_bg', 0x400: 'ea_inode', 0x1000: 'dirdata', 0x2000: 'metadata_csum_seed',
  0x4000: 'large_dir', 0x8000: 'inline_data', 0x10000: 'encrypt', 0x20000: 'casefold',
};
const RO_COMPAT_NAMES: Record<number, string> = {
  0x1: 'sparse_super', 0x2: 'large_file', 0x4: 'btree_dir', 0x8: 'huge_file', 0x10: 'uninit_bg', 0x20: 'dir_nlink',
  0x40: 'extra_isize', 0x80: 'snapshot', 0x100: 'quota', 0x200: 'bigalloc', 0x400: 'metadata_csum', 0x800: 'replica',
  0x1000: 'read-only', 0x2000: 'project', 0x4000: 'shared_blocks', 0x8000: 'verity', 0x10000: 'orphan_present',
};

/** Incompatible features this reader understands (the rest are refused by name). */
const INCOMPAT_KNOWN = INCOMPAT.FILETYPE | INCOMPAT.RECOVER | INCOMPAT.META_BG | INCOMPAT.EXTENTS | INCOMPAT.BIT64
  | INCOMPAT.MMP | INCOMPAT.FLEX_BG | INCOMPAT.EA_INODE | INCOMPAT.CSUM_SEED | INCOMPAT.LARGEDIR
  | INCOMPAT.INLINE_DATA | INCOMPAT.ENCRYPT | INCOMPAT.CASEFOLD;
/**
 * Read-only-compatible features understood. Unknown ones are refused too:
 * an ext driver may read such a volume, but a free map built without knowing
 * them (bigalloc's clusters, snapshots' exclusion bitmaps) could be wrong,
 * and compaction drops what the free map offers.
 */
const RO_COMPAT_KNOWN = RO_COMPAT.SPARSE_SUPER | RO_COMPAT.LARGE_FILE | RO_COMPAT.BTREE_DIR | RO_COMPAT.HUGE_FILE
  | RO_COMPAT.GDT_CSUM | RO_COMPAT.DIR_NLINK | RO_COMPAT.EXTRA_ISIZE | RO_COMPAT.QUOTA | RO_COMPAT.METADATA_CSUM
  | RO_COMPAT.READONLY | RO_COMPAT.PROJECT | RO_COMPAT.SHARED_BLOCKS | RO_COMPAT.VERITY | RO_COMPAT.ORPHAN_PRESENT;

/** What the kernel's ext3 driver supported; a volume using anything else is ext4. */
const EXT3_INCOMPAT = INCOMPAT.FILETYPE | INCOMPAT.RECOVER | INCOMPAT.META_BG;
const EXT3_RO_COMPAT = RO_COMPAT.SPARSE_SUPER | RO_COMPAT.LARGE_FILE | RO_COMPAT.BTREE_DIR;

/** s_state bits. */
const STATE_VALID = 0x1;
const STATE_ERROR = 0x2;
const STATE_ORPHANS = 0x4;

export interface Superblock {
  inodesCount: number;
  blocksCount: number;
  firstDataBlock: number;
  /** Bytes per block: 1 KiB to 64 KiB. */
  blockSize: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  groupCount: number;
  /** Bytes per on-disk inode (128 for revision 0). */
  inodeSize: number;
  /** Blocks of one group's inode table. */
  inodeTableBlocks: number;
  firstIno: number;
  state: number;
  revLevel: number;
  compat: number;
  incompat: number;
  roCompat: number;
  uuid: Uint8Array;
  label: string | null;
  reservedGdtBlocks: number;
  journalInum: number;
  journalDev: number;
  journalUuid: Uint8Array;
  lastOrphan: number;
  /** Bytes per group descriptor: 32, or s_desc_size with 64bit. */
  descSize: number;
  /** Blocks the group descriptor table fills (ceil(groups / descriptors per block)). */
  descBlocks: number;
  firstMetaBg: number;
  mmpBlock: number;
  logGroupsPerFlex: number;
  backupBgs: [number, number];
  usrQuotaInum: number;
  grpQuotaInum: number;
  prjQuotaInum: number;
  orphanFileInum: number;
  /** Seed of every metadata_csum checksum (s_checksum_seed, or CRC-32C of the UUID). */
  csumSeed: number;
  /** False when metadata_csum is on and the superblock's own checksum does not match. */
  checksumOk: boolean;
  kind: 'ext2' | 'ext3' | 'ext4';
}

export function hasIncompat(sb: Superblock, f: number): boolean {
  return (sb.incompat & f) !== 0;
}
export function hasRoCompat(sb: Superblock, f: number): boolean {
  return (sb.roCompat & f) !== 0;
}
export function hasCompat(sb: Superblock, f: number): boolean {
  return (sb.compat & f) !== 0;
}

/** True when the group descriptors carry checksums (uninit_bg or metadata_csum), so the UNINIT flags count. */
export function hasGroupCsum(sb: Superblock): boolean {
  return hasRoCompat(sb, RO_COMPAT.GDT_CSUM | RO_COMPAT.METADATA_CSUM);
}

function featureNames(bits: number, names: Record<number, string>): string[] {
  const out: string[] = [];
  for (let b = 0; b < 32; b++) {
    const m = (1 << b) >>> 0;
    if (bits & m) out.push(names[m] ?? `0x${m.toString(16)}`);
  }
  return out;
}

/** True when `head` (the volume's start) carries an ext superblock magic with a plausible block size. */
export function looksLikeExt(head: Uint8Array): boolean {
  if (head.length < SUPERBLOCK_OFFSET + 0x60) return false;
  const dv = new DataView(head.buffer, head.byteOffset + SUPERBLOCK_OFFSET, 0x60);
  return dv.getUint16(0x38, true) === EXT_MAGIC && dv.getUint32(0x18, true) <= 6 && dv.getUint32(0x4c, true) <= 1;
}

function fail(msg: string): never {
  throw new GuestError(`ext superblock: ${msg}`);
}

/** Decodes and validates the superblock (`raw`: its 1024 bytes) of a volume of `volumeSize` bytes. */
export function parseSuperblock(raw: Uint8Array, volumeSize: number): Superblock {
  if (raw.length < SUPERBLOCK_SIZE) fail('volume too small to hold a superblock');
  const dv = new DataView(raw.buffer, raw.byteOffset, SUPERBLOCK_SIZE);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u16 = (o: number) => dv.getUint16(o, true);
  const magic = u16(0x38);
  if (magic !== EXT_MAGIC) fail(`bad magic 0x${magic.toString(16)} (expected 0xef53)`);
  const revLevel = u32(0x4c);
  if (revLevel > 1) fail(`revision ${revLevel} is newer than any ext revision known (0 or 1)`);
  const dynamic = revLevel >= 1;
  const compat = dynamic ? u32(0x5c) : 0;
  const incompat = dynamic ? u32(0x60) : 0;
  const roCompat = dynamic ? u32(0x64) : 0;
  if (incompat & INCOMPAT.JOURNAL_DEV) fail('this is an external journal device, not a file system');
  const badIncompat = incompat & ~INCOMPAT_KNOWN;
  if (badIncompat) fail(`unsupported incompatible feature(s): ${featureNames(badIncompat, INCOMPAT_NAMES).join(', ')}`);
  const badRo = roCompat & ~RO_COMPAT_KNOWN;
  if (badRo) fail(`unsupported feature(s) that change allocation: ${featureNames(badRo, RO_COMPAT_NAMES).join(', ')}`);

  const logBlock = u32(0x18);
  if (logBlock > 6) fail(`block size 2^(10+${logBlock}) is outside 1 KiB..64 KiB`);
  const blockSize = 1024 << logBlock;
  const is64 = (incompat & INCOMPAT.BIT64) !== 0;
  const blocksCount = u32(0x04) + (is64 ? u32(0x150) * 2 ** 32 : 0);
  const firstDataBlock = u32(0x14);
  const blocksPerGroup = u32(0x20);
  const inodesPerGroup = u32(0x28);
  const inodesCount = u32(0x00);
  if (u32(0x1c) !== logBlock) fail(`cluster size (log ${u32(0x1c)}) differs from block size (log ${logBlock}) without bigalloc`);
  if (u32(0x24) !== blocksPerGroup) fail(`clusters per group (${u32(0x24)}) differs from blocks per group (${blocksPerGroup})`);
  if (firstDataBlock !== (blockSize === 1024 ? 1 : 0)) fail(`first data block ${firstDataBlock} is wrong for ${blockSize}-byte blocks`);
  if (blocksCount <= firstDataBlock) fail(`blocks count ${blocksCount} leaves no data blocks`);
  if (blocksCount * blockSize > volumeSize) {
    fail(`${blocksCount} blocks of ${blockSize} bytes (${blocksCount * blockSize} bytes) do not fit in the volume (${volumeSize} bytes)`);
  }
  if (blocksPerGroup < 8 || blocksPerGroup > 8 * blockSize || blocksPerGroup % 8 !== 0) {
    fail(`blocks per group ${blocksPerGroup} is not a multiple of 8 in 8..${8 * blockSize}`);
  }
  if (inodesPerGroup < 1 || inodesPerGroup > 8 * blockSize) fail(`inodes per group ${inodesPerGroup} is outside 1..${8 * blockSize}`);
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  if (inodesCount !== groupCount * inodesPerGroup) {
    fail(`inodes count ${inodesCount} is not ${groupCount} groups x ${inodesPerGroup} inodes per group`);
  }
  const inodeSize = dynamic ? u16(0x58) : 128;
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) {
    fail(`inode size ${inodeSize} is not a power of two in 128..${blockSize}`);
  }
  const firstIno = dynamic ? u32(0x54) : 11;
  if (firstIno < 11 || firstIno > inodesCount) fail(`first non-reserved inode ${firstIno} is outside 11..${inodesCount}`);
  const inodeTableBlocks = Math.ceil((inodesPerGroup * inodeSize) / blockSize);

  let descSize = 32;
  if (is64) {
    descSize = u16(0xfe);
    if (descSize < 64 || descSize > 1024 || (descSize & (descSize - 1)) !== 0) fail(`descriptor size ${descSize} is not a power of two in 64..1024`);
  }
  const descBlocks = Math.ceil(groupCount / (blockSize / descSize));
  const reservedGdtBlocks = dynamic ? u16(0xce) : 0;
  if (reservedGdtBlocks > blockSize / 4) fail(`reserved GDT blocks ${reservedGdtBlocks} exceed ${blockSize / 4}`);
  const firstMetaBg = u32(0x104);
  if ((incompat & INCOMPAT.META_BG) && firstMetaBg > descBlocks) fail(`first meta_bg ${firstMetaBg} lies past the ${descBlocks} descriptor blocks`);
  const logGroupsPerFlex = raw[0x174];
  if ((incompat & INCOMPAT.FLEX_BG) && logGroupsPerFlex > 31) fail(`log groups per flex ${logGroupsPerFlex} exceeds 31`);
  const mmpBlock = (incompat & INCOMPAT.MMP) ? u32(0x168) + u32(0x16c) * 2 ** 32 : 0;
  if (mmpBlock && (mmpBlock < firstDataBlock || mmpBlock >= blocksCount)) fail(`MMP block ${mmpBlock} lies outside the volume`);
  const journalInum = (compat & COMPAT.HAS_JOURNAL) ? u32(0xe0) : 0;
  if (journalInum > inodesCount) fail(`journal inode ${journalInum} is out of range`);

  const uuid = raw.slice(0x68, 0x78);
  const metaCsum = (roCompat & RO_COMPAT.METADATA_CSUM) !== 0;
  let checksumOk = true;
  if (metaCsum) checksumOk = crc32c(0xffffffff, raw, 0, 0x3fc) === u32(0x3fc);
  let csumSeed = 0;
  if (incompat & INCOMPAT.CSUM_SEED) csumSeed = u32(0x270);
  else if (metaCsum || (incompat & INCOMPAT.EA_INODE)) csumSeed = crc32c(0xffffffff, uuid);

  const inodeField = (o: number) => {
    const v = u32(o);
    return v <= inodesCount ? v : 0;
  };
  const sb: Superblock = {
    inodesCount, blocksCount, firstDataBlock, blockSize, blocksPerGroup, inodesPerGroup, groupCount, inodeSize,
    inodeTableBlocks, firstIno, state: u16(0x3a), revLevel, compat, incompat, roCompat, uuid,
    label: decodeLabel(raw.subarray(0x78, 0x88)), reservedGdtBlocks, journalInum, journalDev: u32(0xe4),
    journalUuid: raw.slice(0xd0, 0xe0), lastOrphan: u32(0xe8), descSize, descBlocks, firstMetaBg, mmpBlock,
    logGroupsPerFlex, backupBgs: [u32(0x24c), u32(0x250)], usrQuotaInum: inodeField(0x240),
    grpQuotaInum: inodeField(0x244), prjQuotaInum: inodeField(0x26c),
    orphanFileInum: (compat & COMPAT.ORPHAN_FILE) ? inodeField(0x280) : 0, csumSeed, checksumOk,
    kind: 'ext2',
  };
  sb.kind = kindOf(sb);
  return sb;
}

function decodeLabel(b: Uint8Array): string | null {
  let n = b.indexOf(0);
  if (n < 0) n = b.length;
  if (n === 0) return null;
  return new TextDecoder('utf-8').decode(b.subarray(0, n));
}

/**
 * ext4 when any feature lies outside what the kernel's ext3 driver supported
 * (extents, 64bit, flex_bg, uninit_bg, huge_file, dir_nlink, extra_isize,
 * metadata_csum...); otherwise ext3 when it has a journal, else ext2. This is
 * the kernel's own rule for mounting a volume as ext2 or ext3, and blkid's.
 */
function kindOf(sb: Superblock): 'ext2' | 'ext3' | 'ext4' {
  if ((sb.incompat & ~EXT3_INCOMPAT) || (sb.roCompat & ~EXT3_RO_COMPAT)) return 'ext4';
  return (sb.compat & COMPAT.HAS_JOURNAL) ? 'ext3' : 'ext2';
}

/** Conditions in the superblock that make its maps untrustworthy until fsck or a mount has run. */
export function superblockReasons(sb: Superblock): { recovery: string[]; dirty: string[] } {
  const recovery: string[] = [];
  const dirty: string[] = [];
  if (sb.incompat & INCOMPAT.RECOVER) recovery.push('the journal needs recovery (needs_recovery is set): it holds changes not yet written to their place');
  if (!(sb.state & STATE_VALID)) dirty.push('not cleanly unmounted (s_state lacks VALID_FS): mounted, or the system stopped without unmounting it');
  if (sb.state & STATE_ERROR) dirty.push('the kernel recorded errors (s_state ERROR_FS): run e2fsck');
  if (sb.state & STATE_ORPHANS) dirty.push('orphan inodes were being recovered (s_state ORPHAN_FS)');
  if (sb.lastOrphan) dirty.push(`the orphan list is not empty (first inode ${sb.lastOrphan}): deleted files still open when it was last used`);
  if (sb.roCompat & RO_COMPAT.ORPHAN_PRESENT) dirty.push('the orphan file holds orphan inodes (orphan_present)');
  return { recovery, dirty };
}
