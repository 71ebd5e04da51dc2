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
  /**
   * Optional: reads exactly `into.length` bytes at `offset` into `into`.
   * A reader that reads a lot (an MFT pass) reuses its buffers through it:
   * fresh buffers cost page faults and garbage collection.
   */
  readInto?(offset: number, into: Uint8Array): Promise<void>;
}

/** The largest single read a reader may ask for (64 MiB): a cap on what one lying field can cost. */
export const MAX_READ = 64 * 1024 * 1024;

/**
 * Reads `length` bytes at `offset` after checking the range against the
 * source, naming `what` (the structure) in the error a bad range gives.
 */
export async function readChecked(src: ByteSource, offset: number, length: number, what: string): Promise<Uint8Array> {
  checkRange(src, offset, length, what);
  return src.read(offset, length);
}

function checkRange(src: ByteSource, offset: number, length: number, what: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new GuestError(`${what}: invalid range (offset ${offset}, length ${length})`);
  }
  if (length > MAX_READ) throw new GuestError(`${what}: ${length} bytes at offset ${offset} is more than one structure can hold`);
  if (offset + length > src.size) {
    throw new GuestError(`${what}: ${length} bytes at offset ${offset} run past the end of the volume (${src.size} bytes)`);
  }
}

/** readChecked into a buffer of the caller's (`into.length` bytes), through `readInto` when the source has it. */
export async function readCheckedInto(src: ByteSource, offset: number, into: Uint8Array, what: string): Promise<void> {
  if (src.readInto) {
    checkRange(src, offset, into.length, what);
    return src.readInto(offset, into);
  }
  into.set(await readChecked(src, offset, into.length, what));
}

/** A window [start, start + size) of `src`, as a source of its own (a partition of a disk). */
export function sliceSource(src: ByteSource, start: number, size: number): ByteSource {
  if (start < 0 || size < 0 || start + size > src.size) {
    throw new GuestError(`range ${start} + ${size} lies outside the disk (${src.size} bytes)`);
  }
  const outside = (offset: number, length: number) => new GuestError(`read of ${length} bytes at offset ${offset} lies outside the volume (${size} bytes)`);
  const slice: ByteSource = {
    size,
    read(offset, length) {
      if (offset < 0 || offset + length > size) return Promise.reject(outside(offset, length));
      return src.read(start + offset, length);
    },
  };
  if (src.readInto) {
    const readInto = src.readInto.bind(src);
    slice.readInto = (offset, into) => (offset < 0 || offset + into.length > size ? Promise.reject(outside(offset, into.length)) : readInto(start + offset, into));
  }
  return slice;
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
    readInto(offset, into) {
      if (offset < 0 || offset + into.length > bytes.length) {
        return Promise.reject(new GuestError(`read of ${into.length} bytes at offset ${offset} lies outside the source (${bytes.length} bytes)`));
      }
      into.set(bytes.subarray(offset, offset + into.length));
      return Promise.resolve();
    },
  };
}
