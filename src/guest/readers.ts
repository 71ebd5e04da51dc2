/**
 * The file-system readers vhdtool knows, in the order they are probed. Each
 * recognises its volume by content (never by partition type byte alone) and
 * opens it as a Volume. `detect.ts` walks this list.
 */
import type { ByteSource } from './source.js';
import type { FsKind, Volume } from './volume.js';
import { ntfsReader } from './ntfs/index.js';
import { fatReader } from './fat/volume.js';
import { extReader } from './ext/index.js';
import { swapReader } from './swap.js';

/** Bytes of a volume's start handed to `probe` (fewer when the volume is smaller). */
export const PROBE_BYTES = 128 * 1024;

export interface VolumeReader {
  /** The family, for messages ("ntfs", "fat", "ext", "swap"). */
  readonly name: string;
  /** True when `head` (the volume's first PROBE_BYTES) carries this file system's signature. */
  probe(head: Uint8Array, size: number): boolean;
  /** Opens the volume; throws a GuestError when it cannot be read safely. */
  open(src: ByteSource): Promise<Volume>;
}

export type { FsKind };

export const READERS: VolumeReader[] = [
  ntfsReader,
  fatReader,
  extReader,
  swapReader,
];
