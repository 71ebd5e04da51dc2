/**
 * A chain's composed guest view as a ByteSource: the door from the VHD layers
 * to the guest layer (partitions and file systems), which knows nothing of
 * VHD.
 */
import type { ByteSource } from '../guest/source.js';
import { GuestError } from '../guest/errors.js';
import type { ChainReader } from './reader.js';

export function chainSource(reader: ChainReader): ByteSource {
  const size = reader.size;
  return {
    size,
    read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) {
        return Promise.reject(new GuestError(`read of ${length} bytes at offset ${offset} lies outside the disk (${size} bytes)`));
      }
      return reader.read(offset, length);
    },
    async readInto(offset, into) {
      if (offset < 0 || offset + into.length > size) throw new GuestError(`read of ${into.length} bytes at offset ${offset} lies outside the disk (${size} bytes)`);
      // (read() fills the buffer it is given, whatever memory backs it.)
      await reader.read(offset, into.length, into as Uint8Array<ArrayBuffer>);
    },
  };
}
