/**
 * One volume's files, as `diff` keeps them: a light record per file (no
 * ranges), with what the comparison needs to decide without reading data.
 *
 * A file is "touched" by a set of differing bytes when its data clusters or
 * its own metadata (MFT record, inode and extent blocks, directory entry)
 * overlap them. A file touched by nothing, whose size and cluster layout are
 * the same in both views, has the same content in both: every byte of it is
 * read from sectors that do not differ, through the same mapping. Only the
 * others are read.
 *
 * A record holds `touched` as a bit mask, one bit per set of differing bytes
 * it was scanned against (`watch`), so one scan of a volume serves several
 * comparisons (the template check compares OLD with NEW and with CHILD).
 */
import { createHash } from 'node:crypto';
import { VhdToolError } from '../errors.js';
import { GuestError } from '../guest/errors.js';
import { RangeSet, RangeSetBuilder } from '../guest/ranges.js';
import type { GuestFile, Volume, VolumeScan } from '../guest/volume.js';

export interface Light {
  id: string;
  path: string;
  size: number;
  directory: boolean;
  system: boolean;
  /** The reader's handle (readContent needs id, path, size, directory and ref). */
  ref: number;
  /** The data clusters' layout: equal keys, equal clusters. */
  layout: string;
  /** Bit i: the file's data or metadata overlaps watch set i. */
  touched: number;
  /** Bit i: comparison i found this file on the other side (the index's records only). */
  seen: number;
  /** data ∪ meta, kept for system files and directories touched by some watch set (metadata accounting). */
  ranges: RangeSet | null;
}

export interface VolumeIndex {
  files: Map<string, Light>;
  /** The root directory (path ''), which is never created nor deleted: only its metadata counts. */
  root: Light | null;
  scan: VolumeScan;
  /** Bytes some file claims as metadata: every file's own metadata, system files' and directories' data too. */
  claimed: RangeSet;
}

/** True when some byte of `s` is in `d`. */
export function touches(s: RangeSet, d: RangeSet): boolean {
  if (s.isEmpty || d.isEmpty || s.last <= d.first || d.last <= s.first) return false;
  for (const [a, b] of s) if (d.overlaps(a, b)) return true;
  return false;
}

/** Ranges up to this many are kept verbatim in the layout key; more are hashed. */
const VERBATIM_RANGES = 4;

export function layoutKey(data: RangeSet): string {
  if (data.count <= VERBATIM_RANGES) {
    let k = '';
    for (const [s, e] of data) k += `${s}-${e},`;
    return k;
  }
  const h = createHash('sha1');
  const pair = new Float64Array(2);
  for (const [s, e] of data) {
    pair[0] = s;
    pair[1] = e;
    h.update(pair);
  }
  return `#${data.count}:${h.digest('base64')}`;
}

/**
 * Turns scanned files into light records. A file whose own metadata is empty
 * inherits the touched bits of the file whose id its id extends (an NTFS
 * named stream `mft:R:S:name` lives in the record of `mft:R:S`); one that
 * has neither metadata nor such a parent, and holds bytes its clusters do
 * not, is always touched (its content lies where we cannot see).
 */
export class LightMaker {
  private lastBase: { id: string; touched: number } = { id: '', touched: 0 };

  constructor(private readonly watch: readonly RangeSet[]) {}

  make(f: GuestFile): Light {
    let touched = 0;
    for (let i = 0; i < this.watch.length; i++) {
      const w = this.watch[i];
      if (touches(f.data, w) || touches(f.meta, w)) touched |= 1 << i;
    }
    if (f.meta.isEmpty) {
      if (this.lastBase.id && f.id.startsWith(`${this.lastBase.id}:`)) touched |= this.lastBase.touched;
      else if (!f.directory && f.size > f.data.bytes) touched = (1 << this.watch.length) - 1;
    } else {
      this.lastBase = { id: f.id, touched };
    }
    const keep = (f.system || f.directory) && touched !== 0;
    return {
      id: f.id, path: f.path, size: f.size, directory: f.directory, system: f.system, ref: f.ref,
      layout: f.directory || f.system ? '' : layoutKey(f.data), touched, seen: 0,
      ranges: keep ? f.data.union(f.meta) : null,
    };
  }
}

/** Scans a volume's metadata into an index (no file data is read). */
export async function indexVolume(vol: Volume, watch: readonly RangeSet[], signal?: AbortSignal): Promise<VolumeIndex> {
  const files = new Map<string, Light>();
  const claimed = new RangeSetBuilder();
  const maker = new LightMaker(watch);
  let root: Light | null = null;
  const scan = await vol.scan({
    signal,
    onFile: (f) => {
      claimed.addSet(f.meta);
      if (f.system || f.directory) claimed.addSet(f.data);
      const l = maker.make(f);
      if (f.path === '') root = l;
      else if (!files.has(l.id)) files.set(l.id, l);
    },
  });
  return { files, root, scan, claimed: claimed.build() };
}

/** The ids of a volume's files (one metadata scan). */
export async function idsOf(vol: Volume, signal?: AbortSignal): Promise<Set<string>> {
  const out = new Set<string>();
  await vol.scan({ signal, onFile: (f) => { out.add(f.id); } });
  return out;
}

/** Paths of the files whose data or own metadata overlap `ranges` (volume bytes): one metadata scan. */
export async function ownersOf(vol: Volume, ranges: RangeSet, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  await vol.scan({
    signal,
    onFile: (f) => {
      if (f.path !== '' && (touches(f.data, ranges) || touches(f.meta, ranges))) out.push(f.path);
    },
  });
  return out;
}

/** A light record as the GuestFile readContent takes (ranges are not needed to read). */
export function asGuestFile(l: Light): GuestFile {
  return { id: l.id, path: l.path, size: l.size, directory: l.directory, system: l.system, data: RangeSet.EMPTY, meta: RangeSet.EMPTY, ref: l.ref };
}

/** SHA-256 of a file's content, `size` bytes in all (checked). */
export async function hashContent(vol: Volume, l: Light, signal?: AbortSignal, onBytes?: (n: number) => void): Promise<string> {
  const h = createHash('sha256');
  let n = 0;
  for await (const chunk of vol.readContent(asGuestFile(l))) {
    if (signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
    h.update(chunk);
    n += chunk.length;
    onBytes?.(chunk.length);
  }
  if (n !== l.size) throw new GuestError(`${l.path}: its content reads ${n} bytes, its size says ${l.size}`);
  return h.digest('hex');
}
