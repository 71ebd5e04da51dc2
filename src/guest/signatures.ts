/**
 * What a volume is, by its magic numbers: the names of file systems,
 * containers and tables that the first bytes of a volume show. Pure: bytes
 * in, a name out. The partition layer uses it to tell a superfloppy (a file
 * system on the whole disk) from a partition table; detect.ts uses it to
 * name what no reader reads.
 *
 * A match here is a recognition, not a validation: the reader that opens the
 * volume checks every field again.
 */

/** ntfs, fat, ext, swap: a reader family of vhdtool; other: recognised, not read; table: a partition table. */
export type SignatureFamily = 'ntfs' | 'fat' | 'ext' | 'swap' | 'other' | 'table';

export interface Signature {
  family: SignatureFamily;
  /** "NTFS", "FAT32", "ext4", "Linux swap", "BitLocker", "LVM2 physical volume", ... */
  name: string;
}

/** Bytes of a volume's start that `recognise` looks at (the farthest signature, btrfs's, sits at 64 KiB + 64). */
export const SIGNATURE_BYTES = 128 * 1024;

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** True when `text` (latin1) is at `off` in `b`. */
export function hasAscii(b: Uint8Array, off: number, text: string): boolean {
  if (off < 0 || off + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[off + i] !== text.charCodeAt(i)) return false;
  return true;
}

const u16le = (b: Uint8Array, off: number) => (off + 2 <= b.length ? dv(b).getUint16(off, true) : -1);
const u32le = (b: Uint8Array, off: number) => (off + 4 <= b.length ? dv(b).getUint32(off, true) : -1);

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** The 55 AA that ends an MBR, an EBR and most boot sectors. */
export function hasBootSignature(b: Uint8Array): boolean {
  return b.length >= 512 && b[510] === 0x55 && b[511] === 0xaa;
}

// ---------------------------------------------------------------- FAT

export interface FatBootSector {
  bytesPerSector: number;
  sectorsPerCluster: number;
  reservedSectors: number;
  fats: number;
  rootEntries: number;
  totalSectors: number;
  sectorsPerFat: number;
  clusters: number;
  kind: 'fat12' | 'fat16' | 'fat32';
}

/**
 * The BIOS parameter block of a FAT boot sector when every field a FAT volume
 * needs is sane (jump instruction, power-of-two sector and cluster sizes,
 * reserved sectors, 1-4 FATs, media byte, a data area), else null. An MBR's
 * boot code does not pass this: that is how a FAT superfloppy is told from a
 * partition table although both end in 55 AA. The type follows the cluster
 * count, as the FAT specification says (not the "FAT12   " label).
 */
export function fatBootSector(b: Uint8Array): FatBootSector | null {
  if (b.length < 512) return null;
  if (b[0] !== 0xeb && b[0] !== 0xe9) return null;
  const bytesPerSector = u16le(b, 11);
  const sectorsPerCluster = b[13];
  const reservedSectors = u16le(b, 14);
  const fats = b[16];
  const rootEntries = u16le(b, 17);
  const total16 = u16le(b, 19);
  const media = b[21];
  const fat16Size = u16le(b, 22);
  const total32 = u32le(b, 32);
  if (![512, 1024, 2048, 4096].includes(bytesPerSector)) return null;
  if (!isPow2(sectorsPerCluster)) return null;
  if (reservedSectors < 1 || fats < 1 || fats > 4) return null;
  if (media !== 0xf0 && media < 0xf8) return null;
  const totalSectors = total16 !== 0 ? total16 : total32;
  const sectorsPerFat = fat16Size !== 0 ? fat16Size : u32le(b, 36);
  if (totalSectors <= 0 || sectorsPerFat <= 0) return null;
  const rootSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const dataSectors = totalSectors - (reservedSectors + fats * sectorsPerFat + rootSectors);
  if (dataSectors <= 0) return null;
  const clusters = Math.floor(dataSectors / sectorsPerCluster);
  if (clusters < 1) return null;
  const kind = clusters < 4085 ? 'fat12' : clusters < 65525 ? 'fat16' : 'fat32';
  if (kind === 'fat32' && (rootEntries !== 0 || fat16Size !== 0)) return null;
  return { bytesPerSector, sectorsPerCluster, reservedSectors, fats, rootEntries, totalSectors, sectorsPerFat, clusters, kind };
}

// ---------------------------------------------------------------- ext

const EXT_SB = 1024;

/** "ext2", "ext3" or "ext4" when an ext superblock with sane sizes sits at byte 1024, else null (blkid's rule for the name). */
export function extKind(b: Uint8Array): 'ext2' | 'ext3' | 'ext4' | null {
  if (u16le(b, EXT_SB + 56) !== 0xef53) return null;
  const inodes = u32le(b, EXT_SB);
  const blocks = u32le(b, EXT_SB + 4);
  const logBlock = u32le(b, EXT_SB + 24);
  const rev = u32le(b, EXT_SB + 76);
  if (inodes <= 0 || blocks <= 0 || logBlock > 6 || rev > 1) return null;
  const compat = u32le(b, EXT_SB + 92);
  const incompat = u32le(b, EXT_SB + 96);
  const roCompat = u32le(b, EXT_SB + 100);
  if (incompat & 0x8) return null; // an external journal device, not a file system
  // extents, 64bit, mmp, flex_bg, ... / huge_file, gdt_csum, dir_nlink, extra_isize, metadata_csum
  if (incompat & 0xffc0 || roCompat & 0x478) return 'ext4';
  return compat & 0x4 ? 'ext3' : 'ext2';
}

// ---------------------------------------------------------------- swap

/** Page sizes a Linux swap header may be written for (the signature sits in the last 10 bytes of the first page). */
export const SWAP_PAGE_SIZES = [4096, 8192, 16384, 32768, 65536];

/** What the last 10 bytes of a swap area's first page may hold. SWAP-SPACE is the old (version 0) format. */
const SWAP_MAGICS = ['SWAPSPACE2', 'SWAP-SPACE'];
/**
 * Signatures a hibernation image puts in place of the swap signature: the
 * kernel's swsusp ("S1SUSPEND"; "LINHIB0001" in 2.6.3x kernels), the older
 * "S2SUSPEND", and userspace uswsusp ("ULSUSPEND"); util-linux's mkswap and
 * libblkid know the same list.
 */
export const SUSPEND_MAGICS = ['S1SUSPEND', 'S2SUSPEND', 'ULSUSPEND', 'LINHIB0001'];
/** TuxOnIce writes its own header at the very start of the swap area. */
const TUXONICE = [0xed, 0xc3, 0x02, 0xe9, 0x98, 0x56, 0xe5, 0x0c];

export interface SwapMagic {
  pageSize: number;
  /** The text found at pageSize - 10 ("SWAPSPACE2", "S1SUSPEND", ...) or "TuxOnIce". */
  magic: string;
  /** The hibernation signature, when the area holds a suspend image. */
  suspend: string | null;
}

/** The smallest page size whose signature slot holds a swap or suspend signature, or null. */
export function swapMagic(b: Uint8Array): SwapMagic | null {
  for (const pageSize of SWAP_PAGE_SIZES) {
    const at = pageSize - 10;
    if (at + 10 > b.length) break;
    for (const m of SWAP_MAGICS) if (hasAscii(b, at, m)) return { pageSize, magic: m, suspend: null };
    for (const m of SUSPEND_MAGICS) if (hasAscii(b, at, m)) return { pageSize, magic: m, suspend: m };
  }
  if (TUXONICE.every((x, i) => b[i] === x)) return { pageSize: 4096, magic: 'TuxOnIce', suspend: 'TuxOnIce' };
  return null;
}

// ---------------------------------------------------------------- tables

/**
 * True when a 512-byte sector reads as a DOS partition table with at least
 * one entry: 55 AA, every status byte 0x00 or 0x80 (the Linux kernel's test),
 * and every used entry starting after sector 0.
 */
export function looksLikeMbr(b: Uint8Array): boolean {
  if (!hasBootSignature(b)) return false;
  let used = 0;
  for (let i = 0; i < 4; i++) {
    const e = 446 + 16 * i;
    if (b[e] !== 0 && b[e] !== 0x80) return false;
    const lba = u32le(b, e + 8);
    const sectors = u32le(b, e + 12);
    if (sectors === 0) continue;
    if (lba === 0) return false;
    used++;
  }
  return used > 0;
}

// ---------------------------------------------------------------- everything

/** BitLocker's identifier GUID 4967d63b-2e29-4ad8-8399-f6a339e3d001, as stored (mixed-endian). */
const BITLOCKER_GUID = [0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a, 0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01];

/**
 * A volume that dresses as a file system vhdtool reads but is not one:
 * BitLocker To Go presents a FAT boot sector ("MSWIN4.1", a sane BPB) over
 * ciphertext, marked only by BitLocker's GUID in the boot sector (at 424; a
 * fixed drive has it at 160 after "-FVE-FS-"). Its "free clusters" are
 * encrypted data, so no reader may claim it: detect.ts asks this first.
 */
export function disguisedVolume(head: Uint8Array): string | null {
  if (hasAscii(head, 3, '-FVE-FS-')) return 'BitLocker';
  const end = Math.min(head.length, 512) - BITLOCKER_GUID.length;
  outer: for (let at = 0; at <= end; at++) {
    for (let i = 0; i < BITLOCKER_GUID.length; i++) if (head[at + i] !== BITLOCKER_GUID[i]) continue outer;
    return 'BitLocker';
  }
  return null;
}

/** Boot sectors named at byte 3 (their boot code fills the MBR's table area). */
const NAMED_AT_3: Array<[string, SignatureFamily, string]> = [
  ['NTFS    ', 'ntfs', 'NTFS'],
  ['EXFAT   ', 'other', 'exFAT'],
  ['ReFS\0', 'other', 'ReFS'],
];

/** Other signatures checked by a fixed offset and text, in order. */
const FIXED: Array<[number, string, SignatureFamily, string]> = [
  [0, 'XFSB', 'other', 'XFS'],
  [0x10040, '_BHRfS_M', 'other', 'btrfs'],
  [32, 'NXSB', 'other', 'APFS'],
  [32769, 'CD001', 'other', 'ISO 9660'],
];

/**
 * Names what the first bytes of a volume (`head`, up to SIGNATURE_BYTES) hold, or
 * null when nothing is recognised. The order settles overlaps: boot-sector
 * file systems first (their sector ends in 55 AA like an MBR), tables last.
 */
export function recognise(head: Uint8Array): Signature | null {
  const disguised = disguisedVolume(head);
  if (disguised) return { family: 'other', name: disguised };
  for (const [text, family, name] of NAMED_AT_3) if (hasAscii(head, 3, text)) return { family, name };
  const fat = fatBootSector(head);
  if (fat) return { family: 'fat', name: fat.kind.toUpperCase() };
  if (hasAscii(head, 0, 'LUKS\xba\xbe')) return { family: 'other', name: luksName(head) };
  if (lvmLabel(head)) return { family: 'other', name: 'LVM2 physical volume' };
  const ext = extKind(head);
  if (ext) return { family: 'ext', name: ext };
  const swap = swapMagic(head);
  if (swap) return { family: 'swap', name: swap.suspend ? 'Linux swap (hibernation image)' : 'Linux swap' };
  for (const [off, text, family, name] of FIXED) if (hasAscii(head, off, text)) return { family, name };
  if (hfsPlus(head)) return { family: 'other', name: 'HFS+' };
  if (mdRaid(head)) return { family: 'other', name: 'Linux RAID member (md)' };
  if (zfsLabel(head)) return { family: 'other', name: 'ZFS' };
  if (u32le(head, 512) === 0x82564557) return { family: 'other', name: 'BSD disklabel' };
  if (ufsMagic(head)) return { family: 'other', name: 'UFS' };
  if (hasAscii(head, 512, 'EFI PART') || hasAscii(head, 4096, 'EFI PART')) return { family: 'table', name: 'GPT partition table' };
  if (looksLikeMbr(head)) return { family: 'table', name: 'MBR partition table' };
  return null;
}

/** "LUKS1" or "LUKS2" by the big-endian version after the magic. */
function luksName(b: Uint8Array): string {
  const v = b.length >= 8 ? (b[6] << 8) | b[7] : 0;
  return v === 1 || v === 2 ? `LUKS${v}` : 'LUKS';
}

/** The HFS+ ("H+", version 4) or HFSX ("HX", version 5) volume header at 1 KiB. */
function hfsPlus(b: Uint8Array): boolean {
  if (b.length < 1028) return false;
  const v = (b[1026] << 8) | b[1027];
  return (hasAscii(b, 1024, 'H+') && v === 4) || (hasAscii(b, 1024, 'HX') && v === 5);
}

/** LVM2's label: "LABELONE" in one of the first four sectors, with "LVM2 001" 24 bytes on. */
function lvmLabel(b: Uint8Array): boolean {
  for (let s = 0; s < 4; s++) if (hasAscii(b, s * 512, 'LABELONE') && hasAscii(b, s * 512 + 24, 'LVM2 001')) return true;
  return false;
}

/** An md superblock of version 1.1 (at 0) or 1.2 (at 4 KiB); 0.90 and 1.0 sit at the end and are not seen here. */
function mdRaid(b: Uint8Array): boolean {
  return u32le(b, 0) === 0xa92b4efc || u32le(b, 4096) === 0xa92b4efc;
}

/** A ZFS vdev label: an XDR-encoded nvlist at 16 KiB naming the pool. */
function zfsLabel(b: Uint8Array): boolean {
  const at = 16 * 1024;
  if (b.length < at + 4096 || b[at] !== 1 || b[at + 1] !== 1) return false;
  const window = b.subarray(at, Math.min(b.length, at + 4096));
  return indexOfAscii(window, 'pool_guid') >= 0;
}

/** The UFS1 (at 8 KiB) or UFS2 (at 64 KiB) superblock magic, in either byte order. */
function ufsMagic(b: Uint8Array): boolean {
  for (const sb of [8192, 65536]) {
    const m = u32le(b, sb + 1372);
    if (m === 0x00011954 || m === 0x54190100 || m === 0x19540119 || m === 0x19015419) return true;
  }
  return false;
}

function indexOfAscii(b: Uint8Array, text: string): number {
  outer: for (let i = 0; i + text.length <= b.length; i++) {
    for (let j = 0; j < text.length; j++) if (b[i + j] !== text.charCodeAt(j)) continue outer;
    return i;
  }
  return -1;
}
