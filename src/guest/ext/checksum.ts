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

/** Slicing-by-8 tables: T[k][b] is the CRC of byte b followed by k zero bytes (every inode is checksummed). */
const T = (() => {
  const t = new Uint32Array(8 * 256);
  t.set(CRC32C);
  for (let k = 1; k < 8; k++) {
    for (let b = 0; b < 256; b++) {
      const prev = t[(k - 1) * 256 + b];
      t[k * 256 + b] = (CRC32C[prev & 0xff] ^ (prev >>> 8)) >>> 0;
    }
  }
  return t;
})();

/** CRC-32C of `bytes[start, end)` continuing from `crc` (start with 0xffffffff). */
export function crc32c(crc: number, bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = crc >>> 0;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const lo = (c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24))) >>> 0;
    c = T[7 * 256 + (lo & 0xff)] ^ T[6 * 256 + ((lo >>> 8) & 0xff)] ^ T[5 * 256 + ((lo >>> 16) & 0xff)] ^ T[4 * 256 + (lo >>> 24)]
      ^ T[3 * 256 + bytes[i + 4]] ^ T[2 * 256 + bytes[i + 5]] ^ T[256 + bytes[i + 6]] ^ T[bytes[i + 7]];
  }
  for (; i < end; i++) c = CRC32C[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
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
