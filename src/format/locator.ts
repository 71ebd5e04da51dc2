/**
 * Parent locators: eight 24-byte entries in the dynamic header, each pointing
 * at locator data elsewhere in the file.
 *
 * | off | size | field                               |
 * |-----|------|-------------------------------------|
 * |   0 |    4 | platform code                       |
 * |   4 |    4 | platform data space                 |
 * |   8 |    4 | platform data length (bytes)        |
 * |  12 |    4 | reserved                            |
 * |  16 |    8 | platform data offset (absolute)     |
 *
 * Data space is "sectors" by the spec but bytes in what Hyper-V, Virtual PC,
 * VirtualBox and blktap write; it is read as blktap does: below 512 it counts
 * sectors, a multiple of 512 counts bytes, anything else is invalid.
 */
import { FormatError } from '../errors.js';
import { putU32, putU64, u32, u64 } from './bytes.js';
import { PLATFORM_CODES, SECTOR } from './constants.js';

export type PlatformCode = keyof typeof PLATFORM_CODES;

export interface LocatorEntry {
  /** Platform; null for an unused entry (code 0); an unknown code is kept as a number. */
  platform: PlatformCode | number | null;
  /** Reserved space for the data, as stored (see `locatorSpaceBytes`). */
  dataSpace: number;
  /** Length of the locator data in bytes. */
  dataLength: number;
  /** The reserved u32 at offset 12. */
  reserved: number;
  /** Absolute byte offset of the locator data. */
  dataOffset: number;
}

const PLATFORM_BY_CODE = new Map<number, PlatformCode>(
  Object.entries(PLATFORM_CODES).map(([k, v]) => [v, k as PlatformCode]),
);

export function platformCode(p: PlatformCode | number | null): number {
  if (p === null) return 0;
  return typeof p === 'number' ? p : PLATFORM_CODES[p];
}

export function decodeLocatorEntry(b: Uint8Array, off: number): LocatorEntry {
  const code = u32(b, off);
  const dataOffset = u64(b, off + 16);
  if (dataOffset === null) throw new FormatError('parent locator data offset is larger than 2^53');
  return {
    platform: code === 0 ? null : (PLATFORM_BY_CODE.get(code) ?? code),
    dataSpace: u32(b, off + 4),
    dataLength: u32(b, off + 8),
    reserved: u32(b, off + 12),
    dataOffset,
  };
}

export function encodeLocatorEntry(l: LocatorEntry, b: Uint8Array, off: number): void {
  putU32(b, off, platformCode(l.platform));
  putU32(b, off + 4, l.dataSpace);
  putU32(b, off + 8, l.dataLength);
  putU32(b, off + 12, l.reserved);
  putU64(b, off + 16, l.dataOffset);
}

export const UNUSED_LOCATOR: LocatorEntry = Object.freeze({ platform: null, dataSpace: 0, dataLength: 0, reserved: 0, dataOffset: 0 });

/** Bytes reserved for locator data, by blktap's rule; null when the value is ambiguous. */
export function locatorSpaceBytes(dataSpace: number): { bytes: number; unit: 'sectors' | 'bytes' } | null {
  if (dataSpace < SECTOR) return { bytes: dataSpace * SECTOR, unit: 'sectors' };
  if (dataSpace % SECTOR === 0) return { bytes: dataSpace, unit: 'bytes' };
  return null;
}

/** What a locator's data decodes to. */
export type LocatorValue =
  | { ok: true; path: string }
  | { ok: true; path: null; opaque: true }
  | { ok: false; reason: string };

/**
 * Decodes locator data (exactly `dataLength` bytes) into a path.
 * W2ku/W2ru are UTF-16LE; Wi2k/Wi2r are ASCII; MacX is a UTF-8 file URL;
 * "Mac " is an opaque alias record.
 */
export function decodeLocatorData(platform: PlatformCode | number | null, data: Uint8Array): LocatorValue {
  switch (platform) {
    case 'W2ku':
    case 'W2ru': {
      if (data.length % 2 !== 0) return { ok: false, reason: `UTF-16 data has an odd length (${data.length} bytes)` };
      let text: string;
      try {
        text = new TextDecoder('utf-16le', { fatal: true, ignoreBOM: false }).decode(data);
      } catch {
        return { ok: false, reason: 'data is not valid UTF-16' };
      }
      return checkPath(stripNuls(text));
    }
    case 'Wi2k':
    case 'Wi2r': {
      for (const c of data) if (c > 0x7f) return { ok: false, reason: 'ASCII data holds a byte above 0x7f' };
      return checkPath(stripNuls(String.fromCharCode(...data)));
    }
    case 'MacX': {
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(data);
      } catch {
        return { ok: false, reason: 'data is not valid UTF-8' };
      }
      text = stripNuls(text);
      const m = /^file:\/\/(localhost)?(\/.*)$/i.exec(text);
      if (!m) return { ok: false, reason: 'MacX data is not a file:// URL' };
      try {
        return checkPath(decodeURIComponent(m[2]));
      } catch {
        return { ok: false, reason: 'MacX URL has bad percent-escapes' };
      }
    }
    case 'Mac ':
      return { ok: true, path: null, opaque: true };
    default:
      return { ok: false, reason: `unknown platform code ${typeof platform === 'number' ? '0x' + platform.toString(16) : String(platform)}` };
  }
}

function stripNuls(s: string): string {
  return s.replace(/\0+$/, '');
}

function checkPath(p: string): LocatorValue {
  if (p.length === 0) return { ok: false, reason: 'path is empty' };
  if (p.includes('\0')) return { ok: false, reason: 'path holds a NUL character' };
  return { ok: true, path: p };
}

/** Encodes a path as W2ku/W2ru locator data (UTF-16LE, no terminator). */
export function encodeUtf16Le(s: string): Uint8Array {
  const b = new Uint8Array(s.length * 2);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    b[i * 2] = c & 0xff;
    b[i * 2 + 1] = c >>> 8;
  }
  return b;
}
