/**
 * Constants of the VHD v1 format (Microsoft "Virtual Hard Disk Image Format
 * Specification" v1.0, 2006). All integers on disk are big-endian.
 */

/** Bytes per sector; every VHD offset is counted in these. */
export const SECTOR = 512;
/** Bytes in a hard disk footer (Virtual PC before 2004 wrote 511). */
export const FOOTER_SIZE = 512;
export const SHORT_FOOTER_SIZE = 511;
/** Bytes in a dynamic disk header. */
export const HEADER_SIZE = 1024;
/** Bytes in one parent locator entry inside the header. */
export const LOCATOR_ENTRY_SIZE = 24;
/** Number of parent locator entries in the header. */
export const LOCATOR_COUNT = 8;
/** Bytes of the Parent Unicode Name field (UTF-16BE). */
export const PARENT_NAME_SIZE = 512;

export const FOOTER_COOKIE = 'conectix';
export const HEADER_COOKIE = 'cxsparse';
/** blktap marks a disk busy during a journaled operation with this cookie. */
export const POISON_COOKIE = 'v_poison';

export const FILE_FORMAT_VERSION = 0x00010000;
export const HEADER_VERSION = 0x00010000;
/** Footer Features: bit 0x1 = temporary disk; bit 0x2 = reserved, must be set. */
export const FEATURE_TEMPORARY = 0x1;
export const FEATURE_RESERVED = 0x2;

/** Disk Type codes of the footer. */
export const DISK_TYPE_CODES = { fixed: 2, dynamic: 3, differencing: 4 } as const;

/** BAT entry meaning "block not allocated". */
export const BAT_UNUSED = 0xffffffff;

/** Platform codes of parent locators. */
export const PLATFORM_CODES = {
  W2ku: 0x57326b75,
  W2ru: 0x57327275,
  Wi2k: 0x5769326b,
  Wi2r: 0x57693272,
  'Mac ': 0x4d616320,
  MacX: 0x4d616358,
} as const;

/** Host OS codes of the footer. */
export const HOST_OS = { Wi2k: 0x5769326b, 'Mac ': 0x4d616320 } as const;

/** Unix time (ms) of the VHD epoch, 2000-01-01T00:00:00Z. */
export const VHD_EPOCH_MS = Date.UTC(2000, 0, 1);

/** The largest virtual size the specification allows for a dynamic disk: 2040 GiB. */
export const MAX_DYNAMIC_SIZE = 2040 * 1024 * 1024 * 1024;
/** Default block size (2 MiB), the only one Hyper-V writes. */
export const DEFAULT_BLOCK_SIZE = 2 * 1024 * 1024;
/** Block sizes accepted when reading: any power of two in this range. */
export const MIN_BLOCK_SIZE = SECTOR;
export const MAX_BLOCK_SIZE = 0x80000000;
/** Hyper-V aligns block data to this boundary. */
export const HYPERV_ALIGNMENT = 4096;
