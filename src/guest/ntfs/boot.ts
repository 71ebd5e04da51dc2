/**
 * The NTFS boot sector and its BIOS parameter block: the volume's geometry.
 * Pure: bytes in, a validated geometry out (ntfs-3g `bootsect.c` checks the
 * same fields).
 */
import { GuestError } from '../errors.js';
import { u16, u32, u64 } from './bytes.js';

export interface NtfsGeometry {
  bytesPerSector: number;
  clusterSize: number;
  /** Sectors the file system claims (usually the partition's less one: the backup boot sector). */
  totalSectors: number;
  /** Clusters in the cluster area: bits of $Bitmap that count. */
  clusterCount: number;
  mftLcn: number;
  mftMirrLcn: number;
  /** Bytes per MFT record (1 KiB usually, 4 KiB on 4Kn volumes). */
  recordSize: number;
  indexRecordSize: number;
  /** Volume serial number, as 16 hex digits. */
  serial: string;
}

const OEM = 'NTFS    ';
/** Cluster sizes NTFS allows (Windows 10 1709 allows 2 MiB; ntfs-3g NTFS_MAX_CLUSTER_SIZE). */
const MIN_CLUSTER = 512;
const MAX_CLUSTER = 2 * 1024 * 1024;
const MAX_RECORD = 64 * 1024;

/** True when `head` starts with an NTFS boot sector's signature (OEM id and 0x55AA). */
export function looksLikeNtfs(head: Uint8Array): boolean {
  if (head.length < 512) return false;
  for (let i = 0; i < 8; i++) if (head[3 + i] !== OEM.charCodeAt(i)) return false;
  return head[510] === 0x55 && head[511] === 0xaa;
}

/** Bytes per MFT or index record from the signed "clusters per record" byte. */
function recordBytes(v: number, clusterSize: number, what: string): number {
  const s = v > 127 ? v - 256 : v;
  let size: number;
  if (s > 0) size = s * clusterSize;
  else if (s < 0 && s >= -31) size = 2 ** -s;
  else throw new GuestError(`boot sector: ${what} size byte ${v} is invalid`);
  if (size < 512 || size > MAX_RECORD || (size & (size - 1)) !== 0) {
    throw new GuestError(`boot sector: ${what} size ${size} bytes is not a power of two from 512 bytes to 64 KiB`);
  }
  return size;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Validates the boot sector against a volume of `volumeSize` bytes. */
export function parseBoot(b: Uint8Array, volumeSize: number): NtfsGeometry {
  if (!looksLikeNtfs(b)) throw new GuestError('boot sector: no NTFS signature ("NTFS    " at byte 3 and 0x55AA at byte 510)');
  const bytesPerSector = u16(b, 0x0b);
  if (!isPowerOfTwo(bytesPerSector) || bytesPerSector < 512 || bytesPerSector > 4096) {
    throw new GuestError(`boot sector: ${bytesPerSector} bytes per sector (NTFS uses 512 to 4096, a power of two)`);
  }
  const spcByte = b[0x0d];
  const sectorsPerCluster = spcByte > 0x80 ? 2 ** (256 - spcByte) : spcByte;
  if (!isPowerOfTwo(sectorsPerCluster)) throw new GuestError(`boot sector: sectors per cluster byte ${spcByte} is invalid`);
  const clusterSize = sectorsPerCluster * bytesPerSector;
  if (clusterSize < MIN_CLUSTER || clusterSize > MAX_CLUSTER) {
    throw new GuestError(`boot sector: cluster size ${clusterSize} bytes is outside 512 bytes to 2 MiB`);
  }
  const totalSectors = u64(b, 0x28);
  if (totalSectors < 0 || totalSectors === 0) throw new GuestError('boot sector: total sector count is zero or invalid');
  if (totalSectors * bytesPerSector > volumeSize) {
    throw new GuestError(`boot sector: ${totalSectors} sectors of ${bytesPerSector} bytes do not fit in the partition (${volumeSize} bytes)`);
  }
  const clusterCount = Math.floor(totalSectors / sectorsPerCluster);
  if (clusterCount < 16) throw new GuestError(`boot sector: ${clusterCount} clusters is too few for an NTFS volume`);
  const mftLcn = u64(b, 0x30);
  const mftMirrLcn = u64(b, 0x38);
  if (mftLcn < 0 || mftLcn >= clusterCount) throw new GuestError(`boot sector: $MFT at cluster ${mftLcn} lies outside the volume (${clusterCount} clusters)`);
  if (mftMirrLcn < 0 || mftMirrLcn >= clusterCount) {
    throw new GuestError(`boot sector: $MFTMirr at cluster ${mftMirrLcn} lies outside the volume (${clusterCount} clusters)`);
  }
  const recordSize = recordBytes(b[0x40], clusterSize, 'MFT record');
  const indexRecordSize = recordBytes(b[0x44], clusterSize, 'index record');
  const serial = u32(b, 0x4c).toString(16).padStart(8, '0') + u32(b, 0x48).toString(16).padStart(8, '0');
  return { bytesPerSector, clusterSize, totalSectors, clusterCount, mftLcn, mftMirrLcn, recordSize, indexRecordSize, serial };
}
