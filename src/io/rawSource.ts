/** A raw image file (or any file) as a ByteSource, read-only. */
import type { ByteSource } from '../guest/source.js';
import { GuestError } from '../guest/errors.js';
import { readExact, type RandomAccessFile } from './fsys.js';

export function fileSource(file: RandomAccessFile, size: number): ByteSource {
  return {
    size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) {
        throw new GuestError(`read of ${length} bytes at offset ${offset} lies outside the image (${size} bytes)`);
      }
      const buf = new Uint8Array(length);
      await readExact(file, buf, 0, length, offset);
      return buf;
    },
    async readInto(offset, into) {
      if (offset < 0 || offset + into.length > size) {
        throw new GuestError(`read of ${into.length} bytes at offset ${offset} lies outside the image (${size} bytes)`);
      }
      await readExact(file, into, 0, into.length, offset);
    },
  };
}
