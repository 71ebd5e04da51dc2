/**
 * What the guest layer reads from: a read-only run of bytes with a size.
 *
 * The guest layer (partition tables and file systems) knows nothing of VHD.
 * It is handed a ByteSource: a chain's composed guest view (see
 * `chain/guestSource.ts`), a raw image file, or a buffer in tests. A
 * partition is a slice of its disk's source.
 */
import { GuestError } from './errors.js';

export interface ByteSource {
  /** Size in bytes. */
  readonly size: number;
  /**
   * Reads exactly `length` bytes at `offset`. Reading past `size` is an
   * error: callers validate offsets first (see `readChecked`).
   */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** The largest single read a reader may ask for (64 MiB): a cap on what one lying field can cost. */
export const MAX_READ = 64 * 1024 * 1024;

/**
 * Reads `length` bytes at `offset` after checking the range against the
 * source, naming `what` (the structure) in the error a bad range gives.
 */
export async function readChecked(src: ByteSource, offset: number, length: number, what: string): Promise<Uint8Array> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new GuestError(`${what}: invalid range (offset ${offset}, length ${length})`);
  }
  if (length > MAX_READ) throw new GuestError(`${what}: ${length} bytes at offset ${offset} is more than one structure can hold`);
  if (offset + length > src.size) {
    throw new GuestError(`${what}: ${length} bytes at offset ${offset} run past the end of the volume (${src.size} bytes)`);
  }
  return src.read(offset, length);
}

/** A window [start, start + size) of `src`, as a source of its own (a partition of a disk). */
export function sliceSource(src: ByteSource, start: number, size: number): ByteSource {
  if (start < 0 || size < 0 || start + size > src.size) {
    throw new GuestError(`range ${start} + ${size} lies outside the disk (${src.size} bytes)`);
  }
  return {
    size,
    read(offset, length) {
      if (offset < 0 || offset + length > size) {
        return Promise.reject(new GuestError(`read of ${length} bytes at offset ${offset} lies outside the volume (${size} bytes)`));
      }
      return src.read(start + offset, length);
    },
  };
}

/** A source over bytes in memory (tests, small images). */
export function bufferSource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.length,
    read(offset, length) {
      if (offset < 0 || offset + length > bytes.length) {
        return Promise.reject(new GuestError(`read of ${length} bytes at offset ${offset} lies outside the source (${bytes.length} bytes)`));
      }
      return Promise.resolve(bytes.slice(offset, offset + length));
    },
  };
}
