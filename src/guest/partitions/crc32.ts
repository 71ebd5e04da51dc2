/**
 * CRC-32 (IEEE 802.3, the one GPT uses): node:zlib's native crc32 where the
 * running Node has it (20.15 and later), else a table-driven one.
 */
import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array) => number;

const native = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

let table: Uint32Array | null = null;

function tableCrc32(data: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const crc32: Crc32 = native ? (d) => native(d) >>> 0 : tableCrc32;

/** @internal The portable implementation, exported so a test can check it against the native one. */
export const portableCrc32: Crc32 = tableCrc32;
