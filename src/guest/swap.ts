/**
 * Linux swap: the signature and the header page (include/linux/swap.h,
 * `union swap_header`). The header is the first page of the area; its last
 * 10 bytes hold "SWAPSPACE2" (version 1) or "SWAP-SPACE" (version 0, long
 * obsolete). Page sizes 4 KiB to 64 KiB are recognised by where the
 * signature sits. Version 1 fields, in the writer's byte order:
 *   1024 version (1)   1028 last_page   1032 nr_badpages
 *   1036 UUID (16 bytes)   1052 label (16 bytes, NUL-padded)
 *   1536 badpages[nr_badpages] (page numbers)
 *
 * Hibernation to swap replaces the signature with a suspend signature
 * ("S1SUSPEND", "LINHIB0001", ...; see signatures.ts) and keeps the header
 * fields (the kernel's swsusp_header covers only the end of the page, with
 * the original signature 10 bytes before its own). Such an area is reported
 * as 'hibernated': it holds a resumable system image.
 *
 * Swap has no free space in the file-system sense: its pages hold whatever
 * was swapped out, and nothing records which are in use. The volume has no
 * files; its metadata is the header page.
 */
import { GuestError } from './errors.js';
import { RangeSet } from './ranges.js';
import type { VolumeReader } from './readers.js';
import { swapMagic, type SwapMagic } from './signatures.js';
import { readChecked, type ByteSource } from './source.js';
import type { GuestFile, ScanOptions, Volume, VolumeScan, VolumeState } from './volume.js';

export interface SwapHeader {
  pageSize: number;
  /** 1 (SWAPSPACE2) or 0 (SWAP-SPACE). */
  version: number;
  /** Index of the last usable page (the area is pages 0..lastPage; page 0 is the header). */
  lastPage: number;
  /** Pages marked bad (version 1). */
  badPages: number[];
  uuid: string | null;
  label: string | null;
  /** False when a big-endian machine wrote the header. */
  littleEndian: boolean;
  /** The signature found at pageSize - 10. */
  magic: string;
  /** The hibernation signature when the area holds a suspend image, else null. */
  suspend: string | null;
}

/** The kernel's limit on bad pages: they must fit between offset 1536 and the signature. */
export function maxBadPages(pageSize: number): number {
  return Math.floor((pageSize - 10 - 1536) / 4);
}

/**
 * Decodes the header page (`page`, at least pageSize bytes) of a swap area of
 * `size` bytes, found with signature `m`. Throws a GuestError for a header
 * the kernel would refuse to swapon.
 */
export function decodeSwapHeader(page: Uint8Array, m: SwapMagic, size: number): SwapHeader {
  const { pageSize, magic, suspend } = m;
  const pages = Math.floor(size / pageSize);
  const base = { pageSize, magic, suspend };
  if (magic === 'SWAP-SPACE') {
    return { ...base, version: 0, lastPage: pages - 1, badPages: [], uuid: null, label: null, littleEndian: true };
  }
  const v = new DataView(page.buffer, page.byteOffset, page.byteLength);
  // mkswap writes in its machine's byte order: version 1 tells which.
  const le = v.getUint32(1024, false) !== 1;
  const version = v.getUint32(1024, le);
  if (version !== 1) {
    if (suspend) return { ...base, version, lastPage: pages - 1, badPages: [], uuid: null, label: null, littleEndian: true };
    throw new GuestError(`swap: header version ${version} (1 expected); the kernel refuses it`);
  }
  const lastPage = v.getUint32(1028, le);
  const nrBad = v.getUint32(1032, le);
  if (lastPage === 0) throw new GuestError('swap: the header says the area is empty (last page 0)');
  if (lastPage >= pages) {
    throw new GuestError(`swap: the header claims ${lastPage + 1} pages of ${pageSize} bytes, the volume holds ${pages}`);
  }
  if (nrBad > maxBadPages(pageSize)) throw new GuestError(`swap: ${nrBad} bad pages listed, more than the ${maxBadPages(pageSize)} a ${pageSize}-byte header holds`);
  const badPages: number[] = [];
  for (let i = 0; i < nrBad; i++) {
    const p = v.getUint32(1536 + 4 * i, le);
    if (p === 0 || p > lastPage) throw new GuestError(`swap: bad page ${p} lies outside the area (pages 1-${lastPage})`);
    badPages.push(p);
  }
  return { ...base, version, lastPage, badPages, uuid: uuidAt(page, 1036), label: labelAt(page, 1052), littleEndian: le };
}

/** The UUID as mkswap and blkid print it (bytes in order), or null when all zero. */
function uuidAt(b: Uint8Array, off: number): string | null {
  const bytes = b.subarray(off, off + 16);
  if (bytes.every((x) => x === 0)) return null;
  const h = [...bytes].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function labelAt(b: Uint8Array, off: number): string | null {
  let end = off;
  while (end < off + 16 && b[end] !== 0) end++;
  return end > off ? new TextDecoder('utf-8').decode(b.subarray(off, end)) : null;
}

export class SwapVolume implements Volume {
  readonly kind = 'swap' as const;
  readonly clusterSize: number;
  readonly clusterArea: { start: number; end: number };
  readonly label: string | null;

  constructor(readonly size: number, readonly header: SwapHeader) {
    this.clusterSize = header.pageSize;
    this.clusterArea = { start: 0, end: (header.lastPage + 1) * header.pageSize };
    this.label = header.label;
  }

  state(): VolumeState {
    const h = this.header;
    if (!h.suspend) return { state: 'clean', reasons: [] };
    return { state: 'hibernated', reasons: [`the swap area holds a hibernation image (signature ${h.suspend})`] };
  }

  scan(opts: ScanOptions = {}): Promise<VolumeScan> {
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason);
    const h = this.header;
    const anomalies = h.badPages.length
      ? [{ kind: 'bad-pages', message: `${h.badPages.length} page(s) marked bad in the swap header`, ranges: RangeSet.from(h.badPages.map((p) => [p * h.pageSize, (p + 1) * h.pageSize] as const)) }]
      : [];
    return Promise.resolve({
      state: this.state(),
      free: RangeSet.EMPTY,
      metadata: RangeSet.of(0, h.pageSize),
      fileData: RangeSet.EMPTY,
      anomalies,
      files: 0,
      directories: 0,
    });
  }

  async *readContent(f: GuestFile): AsyncIterable<Uint8Array> {
    throw new GuestError(`swap: holds no files (asked for ${f.path})`);
  }
}

export const swapReader: VolumeReader = {
  name: 'swap',
  probe(head: Uint8Array): boolean {
    return swapMagic(head) !== null;
  },
  async open(src: ByteSource): Promise<Volume> {
    const head = await readChecked(src, 0, Math.min(src.size, 65536), 'swap header');
    const m = swapMagic(head);
    if (!m) throw new GuestError('swap: no swap signature in the first page');
    if (src.size < 2 * m.pageSize) throw new GuestError(`swap: the volume (${src.size} bytes) is smaller than two ${m.pageSize}-byte pages`);
    return new SwapVolume(src.size, decodeSwapHeader(head.subarray(0, m.pageSize), m, src.size));
  },
};
