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
import type { GuestFile, ScanResume, Volume, VolumeState } from '../guest/volume.js';

export interface Light {
  id: string;
  path: string;
  size: number;
  directory: boolean;
  system: boolean;
  /** The reader's handle (readContent needs id, path, size, directory and ref). */
  ref: number;
  /** The data clusters' layout (layoutOf): equal numbers, equal clusters. */
  layout: number;
  /** Bit i: the file's data or metadata overlaps watch set i. */
  touched: number;
  /** data ∪ meta, kept for system files and directories touched by some watch set (metadata accounting). */
  ranges: RangeSet | null;
}

const DIRECTORY = 1;
const SYSTEM = 2;

/**
 * One side's files, in columns (a volume of 200,000 files costs a few MiB
 * of typed arrays, its ids and paths, and one map entry a file, rather than
 * an object a file): record i is `light(i)`.
 */
export class VolumeIndex {
  private readonly byId = new Map<string, number>();
  readonly ids: string[] = [];
  readonly paths: string[] = [];
  private sizes = new Float64Array(1024);
  private refs = new Float64Array(1024);
  private layouts = new Float64Array(1024);
  private touchedBits = new Uint8Array(1024);
  private flags = new Uint8Array(1024);
  /** Bit i: comparison i found this file on the other side. */
  seen = new Uint8Array(1024);
  /** data ∪ meta of the touched system files and directories (metadata accounting). */
  private readonly ranges = new Map<number, RangeSet>();
  /** The root directory (path ''), which is never created nor deleted: only its metadata counts. */
  root: Light | null = null;
  /** The volume's metadata among the differing bytes (watch[0]). */
  metadata: RangeSet = RangeSet.EMPTY;
  /** Of the differing bytes (watch[0]), those some file claims as metadata: its own, and system files' and directories' data. */
  claimed: RangeSet = RangeSet.EMPTY;
  /** The volume's state as its scan found it (clean, dirty, ...). */
  state: VolumeState | null = null;
  /** The reader's state for an incremental scan of the other side (indexVolume with resumable), until that scan takes it. */
  resume: ScanResume | null = null;
  /** Every byte of the watch sets the scan measured against. */
  watched: RangeSet = RangeSet.EMPTY;
  /** The watch sets themselves. */
  watch: readonly RangeSet[] = [];
  /**
   * Holds only files handed over later (indexVolume with `earlier`): the
   * incremental scan of the other side adds the earlier version of each
   * file that may differ (compareVolume); every other file is the same there.
   */
  partial = false;

  get count(): number {
    return this.ids.length;
  }

  /** Measures a scanned file and keeps it (the root apart). */
  take(f: GuestFile, maker: LightMaker): void {
    maker.measure(f);
    if (f.path === '') this.root = maker.light(f);
    else this.add(f, maker);
  }

  /** Adds a scanned file as measured (a second one with an id already held is ignored). */
  add(f: GuestFile, m: LightMaker): void {
    if (this.byId.has(f.id)) return;
    const i = this.ids.length;
    if (i === this.sizes.length) this.grow();
    this.byId.set(f.id, i);
    this.ids.push(f.id);
    this.paths.push(f.path);
    this.sizes[i] = f.size;
    this.refs[i] = f.ref;
    this.layouts[i] = m.layout;
    this.touchedBits[i] = m.touched;
    this.flags[i] = (f.directory ? DIRECTORY : 0) | (f.system ? SYSTEM : 0);
    const r = m.ranges(f);
    if (r) this.ranges.set(i, r);
  }

  private grow(): void {
    const n = this.sizes.length * 2;
    const f64 = (a: Float64Array) => { const b = new Float64Array(n); b.set(a); return b; };
    const u8 = (a: Uint8Array) => { const b = new Uint8Array(n); b.set(a); return b; };
    this.sizes = f64(this.sizes);
    this.refs = f64(this.refs);
    this.layouts = f64(this.layouts);
    this.touchedBits = u8(this.touchedBits);
    this.flags = u8(this.flags);
    this.seen = u8(this.seen);
  }

  /** The record of a file id, or -1. */
  find(id: string): number {
    return this.byId.get(id) ?? -1;
  }

  size(i: number): number { return this.sizes[i]; }
  ref(i: number): number { return this.refs[i]; }
  layout(i: number): number { return this.layouts[i]; }
  touched(i: number): number { return this.touchedBits[i]; }
  directory(i: number): boolean { return (this.flags[i] & DIRECTORY) !== 0; }
  system(i: number): boolean { return (this.flags[i] & SYSTEM) !== 0; }

  light(i: number): Light {
    return {
      id: this.ids[i], path: this.paths[i], size: this.sizes[i], directory: this.directory(i), system: this.system(i), ref: this.refs[i],
      layout: this.layouts[i], touched: this.touchedBits[i], ranges: this.ranges.get(i) ?? null,
    };
  }
}

/** True when some byte of `s` is in `d`. */
export function touches(s: RangeSet, d: RangeSet): boolean {
  const n = s.count;
  if (n === 0 || d.isEmpty || s.last <= d.first || d.last <= s.first) return false;
  for (let i = 0; i < n; i++) if (d.overlaps(s.start(i), s.end(i))) return true;
  return false;
}

/**
 * A number standing for a file's cluster layout (its data ranges): equal
 * layouts, equal numbers. One range, the common case, is encoded exactly
 * (start and end, both multiples of 512, fit in 53 bits together for
 * volumes up to 2^44 bytes); more ranges are hashed (53 bits, so two
 * different layouts of one file compare equal with a chance of 2^-53).
 */
export function layoutOf(data: RangeSet): number {
  const n = data.count;
  if (n === 0) return 0;
  if (n === 1) {
    const s = data.start(0) / 512;
    const len = (data.end(0) - data.start(0)) / 512;
    // start < 2^35 sectors, length < 2^17 sectors: exact; otherwise hashed below.
    if (s < 2 ** 35 && len < 2 ** 17 && Number.isInteger(s) && Number.isInteger(len)) return 1 + s * 2 ** 17 + len;
  }
  let h1 = 0x811c9dc5 ^ n;
  let h2 = 0x01000193 ^ n;
  for (let k = 0; k < 2 * n; k++) {
    const v = k & 1 ? data.end(k >> 1) : data.start(k >> 1);
    const lo = v % 2 ** 32;
    const hi = Math.floor(v / 2 ** 32);
    h1 = Math.imul(h1 ^ lo, 0x85ebca6b) ^ (h1 >>> 13);
    h2 = Math.imul(h2 ^ hi ^ lo, 0xc2b2ae35) ^ (h2 >>> 16);
  }
  // Negative: never equal to an exact single-range code.
  return -(((h1 >>> 0) % 2 ** 21) * 2 ** 32 + (h2 >>> 0)) - 1;
}

/**
 * Measures scanned files and turns the ones a comparison keeps into light
 * records. `watch[0]` are the bytes that differ (the claimed-metadata
 * accounting follows them). A file whose own metadata is empty inherits the
 * touched bits of the file whose id its id extends (an NTFS named stream
 * `mft:R:S:name` lives in the record of `mft:R:S`); one that has neither
 * metadata nor such a parent, and holds bytes its clusters do not, is always
 * touched (its content lies where we cannot see).
 */
export class LightMaker {
  private lastId = '';
  private lastTouched = 0;
  /** What `measure` found for the last file. */
  touched = 0;
  layout = 0;

  constructor(private readonly watch: readonly RangeSet[], private readonly claimed: RangeSetBuilder | null = null) {}

  /** Sets `touched` and `layout` for `f` (and notes the metadata it claims among the differing bytes). */
  measure(f: GuestFile): void {
    let touched = 0;
    for (let i = 0; i < this.watch.length; i++) {
      const w = this.watch[i];
      if (touches(f.data, w) || touches(f.meta, w)) touched |= 1 << i;
    }
    if (f.meta.isEmpty) {
      if (this.lastId !== '' && f.id.length > this.lastId.length && f.id.startsWith(this.lastId) && f.id[this.lastId.length] === ':') touched |= this.lastTouched;
      else if (!f.directory && f.size > f.data.bytes) touched = (1 << this.watch.length) - 1;
    } else {
      this.lastId = f.id;
      this.lastTouched = touched;
    }
    if (this.claimed && touched & 1) {
      this.claimed.addSet(f.meta.intersect(this.watch[0]));
      if (f.system || f.directory) this.claimed.addSet(f.data.intersect(this.watch[0]));
    }
    this.touched = touched;
    this.layout = f.directory || f.system ? 0 : layoutOf(f.data);
  }

  /** The ranges kept for the file `measure` saw last: data ∪ meta of a touched system file or directory, else null. */
  ranges(f: GuestFile): RangeSet | null {
    return (f.system || f.directory) && this.touched !== 0 ? f.data.union(f.meta) : null;
  }

  /** The light record of the file `measure` saw last. */
  light(f: GuestFile): Light {
    return {
      id: f.id, path: f.path, size: f.size, directory: f.directory, system: f.system, ref: f.ref,
      layout: this.layout, touched: this.touched, ranges: this.ranges(f),
    };
  }
}

/**
 * Scans a volume's metadata into an index (no file data is read); `watch[0]`
 * are the bytes that differ. `resumable`: the index keeps what the reader
 * offers for an incremental scan of the other side (VolumeIndex.resume);
 * `earlier` (with resumable): no file is indexed now, the other side's scan
 * hands over those that may differ (VolumeIndex.partial).
 */
export async function indexVolume(vol: Volume, watch: readonly RangeSet[], signal?: AbortSignal, mode: 'full' | 'resumable' | 'earlier' = 'full'): Promise<VolumeIndex> {
  const index = new VolumeIndex();
  const claimed = new RangeSetBuilder();
  const maker = new LightMaker(watch, claimed);
  const watched = watch.reduce((u, w) => u.union(w), RangeSet.EMPTY);
  const scan = await vol.scan({
    signal,
    resumable: mode !== 'full',
    ...(mode === 'earlier' ? { within: watched } : { onFile: (f: GuestFile) => index.take(f, maker) }),
  });
  index.metadata = watch.length ? scan.metadata.intersect(watch[0]) : RangeSet.EMPTY;
  index.claimed = claimed.build();
  index.state = scan.state;
  index.resume = scan.resume ?? null;
  index.watch = watch;
  index.watched = watched;
  index.partial = mode === 'earlier';
  return index;
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
