/**
 * The two checksums ext uses for its metadata: CRC-32C (metadata_csum: the
 * superblock, group descriptors, bitmaps, inodes) and CRC-16 (gdt_csum: the
 * group descriptors of older ext4). Both are the raw reflected CRCs of
 * e2fsprogs' `ext2fs_crc32c_le` and `ext2fs_crc16`: the caller passes the
 * starting value and nothing is inverted at the end.
 */

function table(poly: number): Uint32Array {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
}

const CRC32C = table(0x82f63b78);
const CRC16 = table(0xa001);

/** CRC-32C of `bytes[start, end)` continuing from `crc` (start with 0xffffffff). */
export function crc32c(crc: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = crc >>> 0;
  for (let i = start; i < end; i++) c = CRC32C[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** CRC-32C of a little-endian 32-bit value, continuing from `crc`. */
export function crc32cU32(crc: number, value: number): number {
  let c = crc >>> 0;
  for (let k = 0; k < 4; k++) c = CRC32C[(c ^ (value >>> (8 * k))) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

/** CRC-16 (ANSI, reflected) of `bytes[start, end)` continuing from `crc` (start with 0xffff). */
export function crc16(crc: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) c = (CRC16[(c ^ bytes[i]) & 0xff] ^ (c >>> 8)) & 0xffff;
  return c;
}
