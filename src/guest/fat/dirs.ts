/**
 * FAT directory entries: 32-byte slots, short (8.3) entries and the VFAT
 * long-name (LFN) entries that precede them. Pure: bytes in, entries out.
 *
 * Short entry: name 0-7, extension 8-10 (space padded; a first byte 0x05
 * stands for 0xE5), attributes 11, NT case bits 12 (0x08 base lower case,
 * 0x10 extension lower case), first cluster high word 20 (FAT32), first
 * cluster low word 26, size 28. First byte 0xE5: deleted; 0x00: this and
 * every later slot is unused.
 *
 * LFN entry (attributes 0x0F): sequence number 0 (bit 6 marks the last,
 * which comes first on disk), 13 UTF-16 units at 1-10, 14-25, 28-31,
 * checksum of the short name at 13. A long name is used only when its
 * sequence is complete, in order, and every checksum matches the short
 * entry that follows; otherwise the 8.3 name is used and the problem noted.
 */
import { decodeOemName } from './bpb.js';

export const SLOT = 32;

const ATTR_VOLUME = 0x08;
const ATTR_DIRECTORY = 0x10;
const ATTR_LFN = 0x0f;

export interface DirEntry {
  /** The long name when valid, else the 8.3 name (with the NT case bits applied). */
  name: string;
  shortName: string;
  attributes: number;
  directory: boolean;
  firstCluster: number;
  size: number;
  /** Volume byte offsets of the entry's slots: its long-name slots, then the short entry. */
  slots: number[];
  /** Why a long name was dropped for the 8.3 name, or why the name was changed; null when fine. */
  nameProblem: string | null;
}

/** The 8.3 name checksum stored in every LFN slot (fatgen103). */
export function shortNameChecksum(b: Uint8Array, at: number): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((((sum & 1) << 7) | (sum >> 1)) + b[at + i]) & 0xff;
  return sum;
}

/** The display form of a short entry's 11-byte name. */
export function shortName(b: Uint8Array, at: number): string {
  const raw = b.slice(at, at + 11);
  if (raw[0] === 0x05) raw[0] = 0xe5;
  const nt = b[at + 12];
  let base = decodeOemName(raw.subarray(0, 8)).trimEnd();
  let ext = decodeOemName(raw.subarray(8, 11)).trimEnd();
  if (nt & 0x08) base = base.toLowerCase();
  if (nt & 0x10) ext = ext.toLowerCase();
  return ext ? `${base}.${ext}` : base;
}

const LFN_OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

interface PendingLfn {
  /** Sequence number the next LFN slot must carry. */
  expect: number;
  checksum: number;
  /** Name pieces by sequence number (index seq - 1). */
  pieces: string[];
  slots: number[];
  broken: string | null;
}

/**
 * Parses a directory's slots as they are read, window by window; a long
 * name may run across windows (and clusters). `feed` returns false once the
 * 0x00 end marker is seen: the rest of the directory is unused.
 */
export class DirParser {
  private lfn: PendingLfn | null = null;
  /** Label entries seen (attribute 0x08 without the LFN bits). */
  labels: string[] = [];
  ended = false;

  constructor(private readonly fat32: boolean) {}

  /** Parses `bytes` (a multiple of 32), whose first byte lies at volume offset `at`. */
  feed(bytes: Uint8Array, at: number, onEntry: (e: DirEntry) => void): boolean {
    if (this.ended) return false;
    for (let o = 0; o + SLOT <= bytes.length; o += SLOT) {
      const first = bytes[o];
      if (first === 0x00) {
        this.ended = true;
        return false;
      }
      const attr = bytes[o + 11];
      if (first === 0xe5) {
        this.lfn = null;
        continue;
      }
      if ((attr & 0x3f) === ATTR_LFN) {
        this.lfnSlot(bytes, o, at + o);
        continue;
      }
      const e = this.shortSlot(bytes, o, at + o, attr);
      if (e) onEntry(e);
    }
    return true;
  }

  private lfnSlot(b: Uint8Array, o: number, pos: number): void {
    const ord = b[o];
    const seq = ord & 0x1f;
    const checksum = b[o + 13];
    let name = '';
    let done = false;
    for (const k of LFN_OFFSETS) {
      const u = b[o + k] | (b[o + k + 1] << 8);
      if (done || u === 0x0000) {
        done = true;
        continue;
      }
      name += String.fromCharCode(u);
    }
    if (ord & 0x40) {
      // A new sequence; one left unfinished before it had no short entry and is dropped.
      this.lfn = { expect: seq - 1, checksum, pieces: [], slots: [pos], broken: seq === 0 ? 'long-name sequence number 0' : null };
      if (seq > 0) this.lfn.pieces[seq - 1] = name;
      return;
    }
    const p = this.lfn;
    if (p === null) return; // a stray middle slot with no start: nothing to attach it to
    p.slots.push(pos);
    if (p.broken) return;
    if (seq !== p.expect || seq === 0) p.broken = `long-name slot ${seq} where ${p.expect} was expected`;
    else if (checksum !== p.checksum) p.broken = 'long-name slots with different checksums';
    else {
      p.pieces[seq - 1] = name;
      p.expect = seq - 1;
    }
  }

  private shortSlot(b: Uint8Array, o: number, pos: number, attr: number): DirEntry | null {
    const p = this.lfn;
    this.lfn = null;
    if (attr & ATTR_VOLUME && !(attr & ATTR_DIRECTORY)) {
      this.labels.push(decodeOemName(b.subarray(o, o + 11)).trimEnd());
      return null;
    }
    const dots = b[o] === 0x2e && (b[o + 1] === 0x20 || (b[o + 1] === 0x2e && b[o + 2] === 0x20));
    if (dots) return null;
    const short = shortName(b, o);
    let name = short;
    let problem: string | null = null;
    if (p !== null) {
      if (p.broken) problem = p.broken;
      else if (p.expect !== 0) problem = `long name incomplete (slot ${p.expect} missing)`;
      else if (p.checksum !== shortNameChecksum(b, o)) problem = 'long-name checksum does not match the 8.3 name';
      else name = p.pieces.join('');
    }
    const clean = cleanName(name);
    if (clean !== name) problem = problem ?? `name ${JSON.stringify(name)} holds '/', a NUL or nothing`;
    const hi = this.fat32 ? b[o + 20] | (b[o + 21] << 8) : 0;
    return {
      name: clean,
      shortName: short,
      attributes: attr,
      directory: (attr & ATTR_DIRECTORY) !== 0,
      firstCluster: ((hi << 16) | b[o + 26] | (b[o + 27] << 8)) >>> 0,
      size: (b[o + 28] | (b[o + 29] << 8) | (b[o + 30] << 16) | (b[o + 31] << 24)) >>> 0,
      slots: p ? [...p.slots, pos] : [pos],
      nameProblem: problem ? `${problem}; ${problem.startsWith('name ') ? 'written as' : 'used the 8.3 name'} ${JSON.stringify(clean)}` : null,
    };
  }
}

/** A name safe in a '/'-separated path: '/' and NUL become '_', an empty name '_'. */
function cleanName(n: string): string {
  const c = n.replace(/[/\u0000]/g, '_');
  return c === '' || c === '.' || c === '..' ? `_${c}` : c;
}
