/**
 * Which file system a volume (a partition, or a whole disk) holds, by its
 * content: the first PROBE_BYTES are offered to each reader's probe in turn
 * and the first that claims them opens the volume. What no reader claims is
 * named by its signature (BitLocker, LUKS, LVM2, exFAT, ...; see
 * signatures.ts) and returned as an UnknownVolume, of which nothing is ever
 * counted as free. A partition's type byte or GUID is never consulted: a
 * type 0x07 partition may hold NTFS, exFAT or BitLocker, and a type 0x83 one
 * anything at all.
 *
 * One check comes before the readers: a volume that dresses as a readable
 * file system over encrypted content (BitLocker To Go's FAT boot sector) is
 * never handed to a reader, whose free map would call ciphertext free.
 */
import { PROBE_BYTES, READERS, type VolumeReader } from './readers.js';
import { disguisedVolume, recognise } from './signatures.js';
import { readChecked, type ByteSource } from './source.js';
import type { UnknownVolume, Volume } from './volume.js';

export type Detection =
  /** A reader claims the volume. */
  | { reader: VolumeReader }
  /** No reader claims it; `name` says what it looks like ("unrecognised" when nothing matches). */
  | { reader: null; name: string };

/** The first PROBE_BYTES of `src` (all of it when smaller). */
export function readHead(src: ByteSource): Promise<Uint8Array> {
  return readChecked(src, 0, Math.min(PROBE_BYTES, src.size), 'start of the volume');
}

/** Decides from the volume's first bytes who reads it. Pure. */
export function detect(head: Uint8Array, size: number, readers: readonly VolumeReader[] = READERS): Detection {
  const disguised = disguisedVolume(head);
  if (disguised) return { reader: null, name: disguised };
  for (const reader of readers) if (reader.probe(head, size)) return { reader };
  const sig = recognise(head);
  if (!sig) return { reader: null, name: 'unrecognised' };
  return { reader: null, name: sig.family === 'table' ? `${sig.name} (nested in the partition)` : sig.name };
}

/**
 * Opens the volume with the first reader that claims it, or returns an
 * UnknownVolume naming it. A reader's GuestError (the volume is claimed but
 * cannot be read safely) propagates; callers attribute it to the partition
 * (`inPartition`).
 */
export async function openVolume(src: ByteSource, readers: readonly VolumeReader[] = READERS): Promise<Volume | UnknownVolume> {
  const d = detect(await readHead(src), src.size, readers);
  if (d.reader) return d.reader.open(src);
  return unknownVolume(src.size, d.name);
}

export function unknownVolume(size: number, name: string): UnknownVolume {
  return { kind: 'unknown', size, name };
}

/** True for a volume no reader reads. */
export function isUnknown(v: Volume | UnknownVolume): v is UnknownVolume {
  return !('scan' in v);
}
