/**
 * The bytes of a dynamic or differencing disk that no structure accounts for.
 *
 * Every byte before the end footer belongs to the footer copy, the header,
 * the BAT (padded to a sector; blktap's batmap after it), a locator's
 * reserved space, or a block the BAT points to (spare entries past the
 * disk's size included). What is left are gaps: Hyper-V's alignment padding
 * before each block's data, the room between metadata structures, the
 * zero-filled stretch Windows leaves before the footer. Producers leave them
 * zero, except Hyper-V, which pads its BAT region to 4 KiB with unused
 * entries (0xFFFFFFFF).
 *
 * Non-zero bytes in a gap are `orphan-data`: possibly the data of a block
 * whose BAT entry was lost. Only the gaps are read, never block data.
 */
import {
  batBytes, decodeBat, hex, latin1, roundUp, u32, u64, SECTOR, HYPERV_ALIGNMENT,
} from '../format/index.js';
import { readAt, readExactSync } from '../io/fsys.js';

/** Largest piece of a gap read at once. */
const CHUNK = 1 << 20;
import type { Vhd } from '../vhd/image.js';

/** A stretch of non-zero bytes no structure accounts for. */
export interface Orphan {
  /** The gap holding it, [start, end). */
  start: number;
  end: number;
  /** First byte that breaks the gap's rule. */
  firstAt: number;
  /** Where the gap lies, for messages: "between block 3 and block 4", "after the BAT"... */
  where: string;
}

export interface GapScan {
  orphans: Orphan[];
  /** The gap between the last structure and the footer, when there is one. */
  tail: { start: number; bytes: number; zero: boolean; after: string; padding: number } | null;
  /** Allocated BAT entries past what the virtual size needs. */
  spareAllocated: number;
  /** Bytes of gap read. */
  bytesRead: number;
}

interface Span {
  start: number;
  end: number;
  name: string;
}

/** A block whose BAT entry lies past what the virtual size needs. */
export interface SpareBlock extends Span {
  /** Its BAT index. */
  index: number;
}

/** Allocated BAT entries past the disk's size (their blocks are structures too). */
export async function spareBlocks(vhd: Vhd): Promise<SpareBlock[]> {
  const m = vhd.meta;
  const h = m.header!;
  const out: SpareBlock[] = [];
  const chunk = 65536;
  for (let index = m.blockCount; index < h.maxTableEntries;) {
    const n = Math.min(chunk, h.maxTableEntries - index);
    const bat = decodeBat(await readAt(vhd.file, h.tableOffset + index * 4, n * 4), n);
    for (const i of bat.allocated()) {
      const start = bat.get(i)! * SECTOR;
      out.push({ index: index + i, start, end: start + m.bitmapSize + m.blockSize!, name: `spare block ${index + i}` });
    }
    index += n;
  }
  return out;
}

/** The structures of a sparse disk, as byte spans (unsorted, may overlap). */
async function structures(vhd: Vhd, spare: Span[]): Promise<{ spans: Span[]; batEnd: number }> {
  const m = vhd.meta;
  const h = m.header!;
  const spans: Span[] = [{ start: 0, end: SECTOR, name: 'footer copy' }];
  spans.push({ start: m.footer.dataOffset!, end: m.footer.dataOffset! + 1024, name: 'header' });
  let batEnd = h.tableOffset + batBytes(h.maxTableEntries);
  spans.push({ start: h.tableOffset, end: batEnd, name: 'BAT' });
  const batmap = await readBatmapHeader(vhd, batEnd);
  if (batmap) {
    spans.push({ start: batEnd, end: batEnd + SECTOR, name: 'batmap header' }, { ...batmap, name: 'batmap' });
    batEnd += SECTOR;
  }
  for (const l of m.locators) {
    const e = l.entry;
    const reserved = Math.max(roundUp(e.dataLength, SECTOR), l.spaceBytes ?? 0);
    spans.push({ start: e.dataOffset, end: e.dataOffset + reserved, name: `locator ${l.index} (${String(e.platform)})` });
  }
  for (const b of m.bat!.allocated()) {
    const start = m.bat!.get(b)! * SECTOR;
    spans.push({ start, end: start + m.bitmapSize + m.blockSize!, name: `block ${b}` });
  }
  spans.push(...spare);
  return { spans, batEnd };
}

/** blktap's batmap: a "tdbatmap" header right after the sector-padded BAT, pointing at the map. */
async function readBatmapHeader(vhd: Vhd, at: number): Promise<Span | null> {
  if (at + SECTOR > vhd.meta.footerOffset) return null;
  const b = await readAt(vhd.file, at, SECTOR);
  if (latin1(b, 0, 8) !== 'tdbatmap') return null;
  const offset = u64(b, 8);
  const sectors = u32(b, 16);
  if (offset === null || offset < SECTOR || offset + sectors * SECTOR > vhd.meta.footerOffset) return null;
  return { start: offset, end: offset + sectors * SECTOR, name: 'batmap' };
}

/** Gaps between the merged spans, within [0, limit). */
function gapsBetween(spans: Span[], limit: number): Array<{ start: number; end: number; before: string; after: string }> {
  const sorted = spans.filter((s) => s.end > s.start).sort((a, b) => a.start - b.start || a.end - b.end);
  const gaps: Array<{ start: number; end: number; before: string; after: string }> = [];
  let pos = 0;
  let last = 'start of file';
  for (const s of sorted) {
    if (s.start >= limit) break;
    if (s.start > pos) gaps.push({ start: pos, end: s.start, before: last, after: s.name });
    if (s.end > pos) {
      pos = s.end;
      last = s.name;
    }
  }
  if (pos < limit) gaps.push({ start: pos, end: limit, before: last, after: 'footer' });
  return gaps;
}

/** Offset of the first non-zero byte of `b` (from `from`), or -1. */
function firstNonZero(b: Uint8Array, from = 0): number {
  let i = from;
  for (; i < b.length && (i & 7) !== 0; i++) if (b[i] !== 0) return i;
  const words = Math.floor((b.length - i) / 8);
  if (words > 0 && (b.byteOffset + i) % 8 === 0) {
    const w = new BigUint64Array(b.buffer, b.byteOffset + i, words);
    for (let k = 0; k < words; k++) {
      if (w[k] !== 0n) {
        for (let j = i + k * 8; j < i + k * 8 + 8; j++) if (b[j] !== 0) return j;
      }
    }
    i += words * 8;
  }
  for (; i < b.length; i++) if (b[i] !== 0) return i;
  return -1;
}

/** Hyper-V's BAT padding: whole words of unused entries (0xFFFFFFFF) or zero. Offset of the first other byte, or -1. */
function firstBadPadding(b: Uint8Array): number {
  for (let i = 0; i < b.length; i += 4) {
    const v = u32(b, i);
    if (v !== 0 && v !== 0xffffffff) return i;
  }
  return -1;
}

/** Reads every gap of a dynamic or differencing disk and reports what should not be there. */
export async function scanGaps(vhd: Vhd): Promise<GapScan> {
  const m = vhd.meta;
  const spare = await spareBlocks(vhd);
  const { spans, batEnd } = await structures(vhd, spare);
  const gaps = gapsBetween(spans, m.footerOffset);
  const orphans: Orphan[] = [];
  let tail: GapScan['tail'] = null;
  let bytesRead = 0;
  const slackEnd = roundUp(batEnd, HYPERV_ALIGNMENT);
  // Gaps are small and many (Hyper-V leaves 3.5 KiB before each block's data): read them synchronously
  // into one buffer, where an asynchronous read would cost more than the read itself.
  const buf = new Uint8Array(CHUNK);
  for (const g of gaps) {
    const isTail = g.end === m.footerOffset;
    let bad = -1;
    let padding = 0;
    for (let off = g.start; off < g.end && bad < 0; off += CHUNK) {
      const n = Math.min(CHUNK, g.end - off);
      readExactSync(vhd.file, buf, 0, n, off);
      const b = buf.subarray(0, n);
      bytesRead += n;
      // Hyper-V fills its BAT region up to 4 KiB with unused entries.
      const pad = g.start === batEnd ? Math.max(0, Math.min(n, slackEnd - off)) : 0;
      padding += pad;
      const p = pad > 0 ? firstBadPadding(b.subarray(0, pad)) : -1;
      const z = p >= 0 ? p : firstNonZero(b, pad);
      if (z >= 0) bad = off + z;
    }
    if (isTail) tail = { start: g.start, bytes: g.end - g.start, zero: bad < 0, after: g.before, padding };
    if (bad >= 0) {
      const where = isTail ? `between the ${g.before} and the footer` : `between the ${g.before} and the ${g.after}`;
      orphans.push({ start: g.start, end: g.end, firstAt: bad, where });
    }
  }
  return { orphans, tail, spareAllocated: spare.length, bytesRead };
}

export function describeOrphan(o: Orphan): string {
  return `${o.end - o.start} bytes at ${hex(o.start)} ${o.where} hold data no structure accounts for (first non-zero byte at ${hex(o.firstAt)}): possibly a block whose BAT entry was lost`;
}

/** The warning for a clean tail gap (Windows leaves one). */
export function describeTail(t: NonNullable<GapScan['tail']>): string {
  const after = t.after.startsWith('block ') ? 'last block' : t.after;
  const pad = t.padding > 0 ? ` (the first ${t.padding} pad the BAT to 4 KiB with unused entries, as Hyper-V does)` : '';
  return `${t.bytes} ${t.padding > 0 ? '' : 'zero '}bytes between the ${after} and the footer${pad}`;
}
