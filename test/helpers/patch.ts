/**
 * Byte surgery on generated disks, for tests of what vhdtool does with broken
 * files. Everything here works on plain bytes with node:fs; the codecs are used
 * only to find and re-encode fields (their own round trip is tested apart).
 */
import { closeSync, openSync, readSync, statSync, writeSync, ftruncateSync } from 'node:fs';
import {
  decodeFooter, decodeHeader, encodeFooter, encodeHeader, sealFooter, sealHeader,
  type DynamicHeader, type Footer,
} from '../../src/format/index.js';

export function readRange(file: string, offset: number, length: number): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const b = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, b, done, length - done, offset + done);
      if (n <= 0) throw new Error(`short read of ${file} at ${offset + done}`);
      done += n;
    }
    return b;
  } finally {
    closeSync(fd);
  }
}

export function writeRange(file: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

export function truncateTo(file: string, size: number): void {
  const fd = openSync(file, 'r+');
  try {
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

export function fileSize(file: string): number {
  return statSync(file).size;
}

export function readFooterAt(file: string, offset: number): Footer {
  return decodeFooter(readRange(file, offset, 512));
}

/** The end footer of `file`. */
export function readFooter(file: string): Footer {
  return readFooterAt(file, fileSize(file) - 512);
}

export function readHeader(file: string): DynamicHeader {
  const f = readFooter(file);
  return decodeHeader(readRange(file, f.dataOffset!, 1024));
}

/**
 * Rewrites the footer (end copy, and the copy at 0 when `copy`), resealing the
 * checksum unless `reseal` is false.
 */
export function patchFooter(file: string, mutate: (f: Footer) => Footer, opts: { copy?: boolean; end?: boolean; reseal?: boolean } = {}): void {
  const f = mutate(readFooter(file));
  const bytes = encodeFooter(opts.reseal === false ? f : sealFooter(f));
  if (opts.end !== false) writeRange(file, fileSize(file) - 512, bytes);
  if (opts.copy !== false && f.diskType !== 'fixed') writeRange(file, 0, bytes);
}

export function patchHeader(file: string, mutate: (h: DynamicHeader) => DynamicHeader, opts: { reseal?: boolean } = {}): void {
  const off = readFooter(file).dataOffset!;
  const h = mutate(readHeader(file));
  writeRange(file, off, encodeHeader(opts.reseal === false ? h : sealHeader(h)));
}

/** Sets BAT entry `i` to `sector` (0xFFFFFFFF = unused). */
export function setBatEntry(file: string, i: number, sector: number): void {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, sector >>> 0);
  writeRange(file, readHeader(file).tableOffset + i * 4, b);
}

export function batEntry(file: string, i: number): number {
  const b = readRange(file, readHeader(file).tableOffset + i * 4, 4);
  return new DataView(b.buffer).getUint32(0);
}
