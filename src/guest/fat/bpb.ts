/**
 * The FAT boot sector and its BIOS parameter block (BPB): pure decoding and
 * validation, bytes in, a geometry out. Structure and rules from Microsoft's
 * "FAT: General Overview of On-Disk Format" (fatgen103); the dirty flag from
 * the Linux fat driver, Windows fastfat and fsck.fat (see `bootFlags`).
 *
 * Volume layout, in sectors:
 *   [0, reserved)                       boot sector, FAT32 FSInfo and backup boot sector
 *   [reserved, + fatCount * fatSectors) the FAT copies
 *   [.., + rootDirSectors)              FAT12/16 only: the fixed root directory
 *   [dataStart, + count * perCluster)   clusters 2 .. count + 1 (the cluster area)
 *   [.., totalSectors)                  slack: less than one cluster
 */
import { GuestError } from '../errors.js';

export type FatKind = 'fat12' | 'fat16' | 'fat32';

/** fatgen103: fewer than 4085 clusters is FAT12, fewer than 65525 is FAT16, the rest FAT32. */
export const FAT12_MAX_CLUSTERS = 4084;
export const FAT16_MAX_CLUSTERS = 65524;
/** The highest FAT32 cluster number is 0x0FFFFFF6, so at most 0x0FFFFFF5 clusters. */
export const FAT32_MAX_CLUSTERS = 0x0ffffff5;

export interface FatGeometry {
  kind: FatKind;
  bytesPerSector: number;
  sectorsPerCluster: number;
  clusterSize: number;
  reservedSectors: number;
  fatCount: number;
  /** Sectors of one FAT copy. */
  fatSectors: number;
  /** FAT12/16 root directory entries (0 on FAT32). */
  rootEntries: number;
  totalSectors: number;
  /** Bytes of the volume the BPB describes (total sectors × sector size). */
  volumeBytes: number;
  /** Byte offset of FAT copy 0; copy i is at fatStart + i × fatBytes. */
  fatStart: number;
  fatBytes: number;
  /** FAT12/16: the fixed root directory [rootStart, rootStart + rootBytes); 0 and 0 on FAT32. */
  rootStart: number;
  rootBytes: number;
  /** Byte offset of cluster 2. */
  dataStart: number;
  /** Number of data clusters (clusters 2 .. clusterCount + 1). */
  clusterCount: number;
  /** FAT32: first cluster of the root directory (0 on FAT12/16). */
  rootCluster: number;
  /** FAT32: sector of the FSInfo structure, or null when there is none. */
  fsInfoSector: number | null;
  /** The FAT copy the file system reads (FAT32 with mirroring off names one; otherwise 0). */
  activeFat: number;
  /** False when FAT32 mirroring is off: the other copies are not kept in step. */
  mirrored: boolean;
  /**
   * The boot sector's "current head" byte (0x25 on FAT12/16, 0x41 on FAT32)
   * that Windows and Linux use as a dirty flag (bit 0 dirty, bit 1 surface
   * test wanted); null when the extended boot signature is absent and the
   * byte may be boot code.
   */
  bootFlags: number | null;
  /** The label in the extended BPB (null when absent or "NO NAME"). */
  bpbLabel: string | null;
  /** Oddities that leave the volume readable (reported as anomalies). */
  notes: string[];
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

function bad(message: string): GuestError {
  return new GuestError(`FAT boot sector: ${message}`);
}

/** The fields every FAT boot sector has, before any derived value. */
interface RawBpb {
  jump: number;
  bytesPerSector: number;
  sectorsPerCluster: number;
  reservedSectors: number;
  fatCount: number;
  rootEntries: number;
  totalSectors16: number;
  media: number;
  fatSectors16: number;
  totalSectors32: number;
  fatSectors32: number;
  extFlags: number;
  fsVersion: number;
  rootCluster: number;
  fsInfoSector: number;
  backupBootSector: number;
}

function readRaw(b: Uint8Array): RawBpb {
  return {
    jump: b[0],
    bytesPerSector: u16(b, 11),
    sectorsPerCluster: b[13],
    reservedSectors: u16(b, 14),
    fatCount: b[16],
    rootEntries: u16(b, 17),
    totalSectors16: u16(b, 19),
    media: b[21],
    fatSectors16: u16(b, 22),
    totalSectors32: u32(b, 32),
    // FAT32 extended BPB (meaningful only when the 16-bit FAT size is 0)
    fatSectors32: u32(b, 36),
    extFlags: u16(b, 40),
    fsVersion: u16(b, 42),
    rootCluster: u32(b, 44),
    fsInfoSector: u16(b, 48),
    backupBootSector: u16(b, 50),
  };
}

/**
 * The checks that need nothing but the sector itself: what makes a sector a
 * FAT boot sector at all. Returns the reason it is not, or null.
 */
function basicProblem(r: RawBpb): string | null {
  // fatgen103: EB xx 90 or E9 xx xx; Windows fastfat accepts any EB xx xx.
  if (r.jump !== 0xeb && r.jump !== 0xe9) return `no jump instruction at byte 0 (0x${r.jump.toString(16)})`;
  if (!isPow2(r.bytesPerSector) || r.bytesPerSector < 512 || r.bytesPerSector > 4096) {
    return `bytes per sector ${r.bytesPerSector} is not a power of two from 512 to 4096`;
  }
  if (!isPow2(r.sectorsPerCluster)) return `sectors per cluster ${r.sectorsPerCluster} is not a power of two`;
  if (r.reservedSectors === 0) return 'no reserved sectors (the boot sector itself is one)';
  if (r.fatCount === 0) return 'no FAT copies';
  // Linux's FAT_VALID_MEDIA: 0xF0 or 0xF8..0xFF.
  if (r.media !== 0xf0 && r.media < 0xf8) return `media byte 0x${r.media.toString(16)} is not a FAT media descriptor`;
  if (r.totalSectors16 === 0 && r.totalSectors32 === 0) return 'total sectors is 0';
  if (r.fatSectors16 === 0 && r.fatSectors32 === 0) return 'FAT size is 0';
  return null;
}

/** True when `b` (a volume's first sector or more) holds a FAT boot sector. Never throws. */
export function looksLikeFat(b: Uint8Array): boolean {
  if (b.length < 512) return false;
  const r = readRaw(b);
  if (basicProblem(r) !== null) return false;
  // A FAT12/16 layout has root entries; a FAT32 layout has none.
  return r.fatSectors16 !== 0 ? r.rootEntries !== 0 : r.rootEntries === 0;
}

/**
 * Decodes and validates the boot sector of a volume of `volumeSize` bytes.
 * Throws a GuestError for anything that would make the volume unreadable or
 * let a field reach outside the volume.
 */
export function parseBootSector(b: Uint8Array, volumeSize: number): FatGeometry {
  if (b.length < 512) throw bad(`${b.length} bytes is less than one sector`);
  const r = readRaw(b);
  const problem = basicProblem(r);
  if (problem) throw bad(problem);
  const notes: string[] = [];
  const bps = r.bytesPerSector;
  const layout32 = r.fatSectors16 === 0;
  // After DOS 3.2 one of the two is 0; when both are set the 16-bit one is used (as Windows does).
  const totalSectors = r.totalSectors16 !== 0 ? r.totalSectors16 : r.totalSectors32;
  const fatSectors = layout32 ? r.fatSectors32 : r.fatSectors16;
  if (layout32 && r.rootEntries !== 0) throw bad(`a FAT32 layout (16-bit FAT size 0) with ${r.rootEntries} fixed root entries`);
  if (!layout32 && r.rootEntries === 0) throw bad('a FAT12/16 layout with no root directory entries');
  const volumeBytes = totalSectors * bps;
  if (volumeBytes > volumeSize) {
    throw bad(`${totalSectors} sectors of ${bps} bytes (${volumeBytes} bytes) run past the end of the volume (${volumeSize} bytes)`);
  }
  const rootSectors = Math.ceil((r.rootEntries * 32) / bps);
  const dataSector = r.reservedSectors + r.fatCount * fatSectors + rootSectors;
  if (dataSector >= totalSectors) {
    throw bad(`reserved (${r.reservedSectors}), FATs (${r.fatCount} × ${fatSectors}) and root directory (${rootSectors}) sectors fill all ${totalSectors} sectors`);
  }
  const clusterCount = Math.floor((totalSectors - dataSector) / r.sectorsPerCluster);
  if (clusterCount < 1) throw bad('the data area holds no whole cluster');
  const kind = fatKind(layout32, clusterCount, notes);
  const bits = kind === 'fat12' ? 12 : kind === 'fat16' ? 16 : 32;
  const fatBytes = fatSectors * bps;
  const needed = Math.ceil(((clusterCount + 2) * bits) / 8);
  if (needed > fatBytes) {
    throw bad(`a FAT of ${fatSectors} sectors (${fatBytes} bytes) cannot hold the ${clusterCount + 2} entries of ${clusterCount} clusters (${needed} bytes)`);
  }
  const g: FatGeometry = {
    kind,
    bytesPerSector: bps,
    sectorsPerCluster: r.sectorsPerCluster,
    clusterSize: bps * r.sectorsPerCluster,
    reservedSectors: r.reservedSectors,
    fatCount: r.fatCount,
    fatSectors,
    rootEntries: r.rootEntries,
    totalSectors,
    volumeBytes,
    fatStart: r.reservedSectors * bps,
    fatBytes,
    rootStart: layout32 ? 0 : (r.reservedSectors + r.fatCount * fatSectors) * bps,
    rootBytes: rootSectors * bps,
    dataStart: dataSector * bps,
    clusterCount,
    rootCluster: 0,
    fsInfoSector: null,
    activeFat: 0,
    mirrored: true,
    bootFlags: null,
    bpbLabel: null,
    notes,
  };
  if (kind === 'fat32') readFat32Fields(g, r);
  readExtendedBpb(g, b, layout32 ? 0x40 : 0x24);
  return g;
}

/**
 * The FAT type. fatgen103 decides by cluster count alone; a volume laid out
 * as FAT32 (16-bit FAT size 0, no fixed root) with fewer than 65525
 * clusters is read as FAT32 all the same, as Linux, Windows and fsck.fat do
 * (mkfs.fat -F 32 makes such volumes), and noted.
 */
function fatKind(layout32: boolean, count: number, notes: string[]): FatKind {
  if (layout32) {
    if (count > FAT32_MAX_CLUSTERS) throw bad(`${count} clusters is more than FAT32 can address (${FAT32_MAX_CLUSTERS})`);
    if (count <= FAT16_MAX_CLUSTERS) {
      notes.push(`a FAT32 volume with only ${count} clusters (fatgen103 would call it FAT16; Linux, Windows and fsck.fat read it as FAT32)`);
    }
    return 'fat32';
  }
  if (count <= FAT12_MAX_CLUSTERS) return 'fat12';
  if (count <= FAT16_MAX_CLUSTERS) return 'fat16';
  throw bad(`${count} clusters need FAT32, but the boot sector has a FAT12/16 layout (a 16-bit FAT size and a fixed root directory)`);
}

function readFat32Fields(g: FatGeometry, r: RawBpb): void {
  if (r.rootCluster < 2 || r.rootCluster > g.clusterCount + 1) {
    throw bad(`root directory cluster ${r.rootCluster} is not a data cluster (2 to ${g.clusterCount + 1})`);
  }
  g.rootCluster = r.rootCluster;
  // ExtFlags bit 7: mirroring off, bits 0-3 name the active FAT.
  if (r.extFlags & 0x80) {
    const active = r.extFlags & 0x0f;
    if (active >= g.fatCount) throw bad(`active FAT ${active} does not exist (${g.fatCount} copies)`);
    g.activeFat = active;
    g.mirrored = false;
  }
  if (r.fsVersion !== 0) g.notes.push(`FAT32 version ${r.fsVersion >> 8}.${r.fsVersion & 0xff} (fatgen103 knows 0.0 only)`);
  if (r.fsInfoSector !== 0 && r.fsInfoSector !== 0xffff) {
    if (r.fsInfoSector >= g.reservedSectors) {
      g.notes.push(`FSInfo sector ${r.fsInfoSector} lies outside the ${g.reservedSectors} reserved sectors; ignored`);
    } else g.fsInfoSector = r.fsInfoSector;
  }
  if (r.backupBootSector !== 0 && r.backupBootSector !== 0xffff && r.backupBootSector >= g.reservedSectors) {
    g.notes.push(`backup boot sector ${r.backupBootSector} lies outside the ${g.reservedSectors} reserved sectors`);
  }
}

/** Extended BPB at `at` (0x24 on FAT12/16, 0x40 on FAT32): drive, flags, signature 0x28/0x29, serial, label. */
function readExtendedBpb(g: FatGeometry, b: Uint8Array, at: number): void {
  const sig = b[at + 2];
  if (sig !== 0x28 && sig !== 0x29) return;
  g.bootFlags = b[at + 1];
  if (sig !== 0x29) return;
  const label = decodeOemName(b.subarray(at + 7, at + 18)).trimEnd();
  if (label !== '' && label !== 'NO NAME') g.bpbLabel = label;
}

/** Code page 437 for bytes 0x80-0xFF (what DOS, Linux's default codepage and Sleuth Kit assume). */
const CP437_HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀' +
  'αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u00a0';

/** Bytes of a short name or label in the OEM code page (CP437) as a string. */
export function decodeOemName(bytes: Uint8Array): string {
  let s = '';
  for (const c of bytes) s += c < 0x80 ? String.fromCharCode(c) : CP437_HIGH[c - 0x80];
  return s;
}

/** FSInfo signatures (fatgen103): "RRaA" at 0, "rrAa" at 484, 0xAA550000 at 508. */
export function fsInfoProblem(sector: Uint8Array): string | null {
  if (u32(sector, 0) !== 0x41615252) return 'lead signature is not RRaA';
  if (u32(sector, 484) !== 0x61417272) return 'structure signature is not rrAa';
  if (u32(sector, 508) !== 0xaa550000) return 'trail signature is not 0xAA550000';
  return null;
}
