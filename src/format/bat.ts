/**
 * The block allocation table: `maxTableEntries` unsigned 32-bit big-endian
 * entries, each the absolute *sector* offset of a block's bitmap, or
 * 0xFFFFFFFF for a block that is not allocated. The table is padded to a
 * sector boundary (padding entries are 0xFFFFFFFF).
 */
import { BAT_UNUSED, SECTOR } from './constants.js';
import { roundUp } from './bytes.js';

export class Bat {
  /** Raw entries as read (unsigned); only this class sees the unused marker. */
  private readonly entries: Uint32Array;

  constructor(entries: Uint32Array) {
    this.entries = entries;
  }

  /** An all-unused table of `n` entries. */
  static empty(n: number): Bat {
    return new Bat(new Uint32Array(n).fill(BAT_UNUSED));
  }

  get length(): number {
    return this.entries.length;
  }

  /** Sector offset of block `i`'s bitmap, or null when the block is not allocated. */
  get(i: number): number | null {
    const v = this.entries[i];
    return v === BAT_UNUSED || v === undefined ? null : v;
  }

  set(i: number, sector: number | null): void {
    if (sector !== null && (!Number.isInteger(sector) || sector < 0 || sector >= BAT_UNUSED)) {
      throw new RangeError(`BAT sector offset ${sector} does not fit in 32 bits`);
    }
    this.entries[i] = sector === null ? BAT_UNUSED : sector;
  }

  /** Indices of allocated blocks, in block order. */
  *allocated(): Iterable<number> {
    const e = this.entries;
    for (let i = 0; i < e.length; i++) if (e[i] !== BAT_UNUSED) yield i;
  }

  countAllocated(): number {
    let n = 0;
    const e = this.entries;
    for (let i = 0; i < e.length; i++) if (e[i] !== BAT_UNUSED) n++;
    return n;
  }
}

/** Bytes the table occupies on disk: 4 per entry, rounded up to a sector. */
export function batBytes(entries: number): number {
  return roundUp(entries * 4, SECTOR);
}

/** Decodes the first `count` entries from `bytes` (which must hold at least 4*count bytes). */
export function decodeBat(bytes: Uint8Array, count: number): Bat {
  const e = new Uint32Array(count);
  for (let i = 0, o = 0; i < count; i++, o += 4) {
    e[i] = ((bytes[o] << 24) >>> 0) + ((bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3]);
  }
  return new Bat(e);
}

/** Encodes a table of `totalEntries` entries (those past `bat.length` are unused), padded to a sector. */
export function encodeBat(bat: Bat, totalEntries = bat.length): Uint8Array {
  const b = new Uint8Array(batBytes(totalEntries)).fill(0xff);
  for (let i = 0; i < bat.length; i++) {
    const s = bat.get(i);
    if (s === null) continue;
    const o = i * 4;
    b[o] = (s >>> 24) & 0xff;
    b[o + 1] = (s >>> 16) & 0xff;
    b[o + 2] = (s >>> 8) & 0xff;
    b[o + 3] = s & 0xff;
  }
  return b;
}
