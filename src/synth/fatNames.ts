/**
 * Directory slots for the FAT writer of the synthetic guest sample (fat16.ts):
 * 8.3 names generated from long names as Windows generates them (Microsoft's
 * FAT specification, fatgen103, "Basis-Name Generation Algorithm" and
 * "Numeric-Tail Generation Algorithm"), VFAT long-name slots, the checksum
 * that binds them, and DOS dates. Pure: strings in, bytes out.
 *
 * Written independently of the reader (src/guest/fat/dirs.ts), so that the
 * tests of the sample check one against the other and both against mtools,
 * Sleuth Kit and fsck.fat.
 */

export const SLOT = 32;
export const ATTR_VOLUME = 0x08;
export const ATTR_DIRECTORY = 0x10;
export const ATTR_ARCHIVE = 0x20;
export const ATTR_LFN = 0x0f;

/** UTF-16 units in one long-name slot. */
const LFN_UNITS = 13;
/** Where a long-name slot keeps its 13 units: 5 at 1, 6 at 14, 2 at 28. */
const LFN_UNIT_OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/** Characters that may stand in an 8.3 name besides A-Z and 0-9 (fatgen103). */
const SHORT_EXTRA = new Set([...'$%\'-_@~`!(){}^#&']);
/** Characters no FAT name may hold. */
const FORBIDDEN = /[\u0000-\u001f"*/:<>?\\|]/;

/** One long name's 8.3 form: 11 bytes of name + extension, space padded. */
export interface ShortName {
  /** The 11 characters, e.g. "SETTINGSINI" or "PROGRA~1   ". */
  raw: string;
  /** True when the long name must be written in long-name slots too (it is not exactly its 8.3 form). */
  needsLongName: boolean;
}

/** Throws unless `name` can be a FAT long name (no path separators, no forbidden characters, 1-255 units). */
export function checkLongName(name: string): void {
  if (name.length < 1 || name.length > 255 || name === '.' || name === '..' || FORBIDDEN.test(name) || /[ .]$/.test(name)) {
    throw new RangeError(`not a FAT file name: ${JSON.stringify(name)}`);
  }
}

/**
 * An upper-case character as it may stand in an 8.3 name, and whether it had
 * to be replaced. Anything outside ASCII becomes '_', as Windows does for a
 * character its OEM code page lacks (the writer uses no code page).
 */
function shortChar(c: string): { c: string; lossy: boolean } {
  const u = c.toUpperCase();
  if (/^[A-Z0-9]$/.test(u) || SHORT_EXTRA.has(u)) return { c: u, lossy: false };
  return { c: '_', lossy: true };
}

/** The basis name and extension of fatgen103's algorithm: upper case, spaces and periods stripped, cut at 8 and 3. */
function basis(name: string): { base: string; ext: string; lossy: boolean; cut: boolean } {
  const stripped = name.replace(/^\.+/, '');
  const dot = stripped.lastIndexOf('.');
  const [rawBase, rawExt] = dot < 0 ? [stripped, ''] : [stripped.slice(0, dot), stripped.slice(dot + 1)];
  let lossy = false;
  const conv = (s: string) => [...s.replace(/[ .]/g, '')].map((c) => {
    const r = shortChar(c);
    lossy ||= r.lossy;
    return r.c;
  }).join('');
  const base = conv(rawBase);
  const ext = conv(rawExt);
  const cut = base.length > 8 || ext.length > 3 || /[ ]/.test(name) || rawBase.includes('.') || name.startsWith('.');
  return { base: base.slice(0, 8), ext: ext.slice(0, 3), lossy, cut };
}

const pad11 = (base: string, ext: string) => base.padEnd(8, ' ') + ext.padEnd(3, ' ');

/**
 * The 8.3 name Windows gives `name` in a folder already holding `taken` (raw
 * 11-character names): the basis name, with a numeric tail ~N (the first
 * free one) when the conversion lost characters or cut the name.
 */
export function shortNameFor(name: string, taken: ReadonlySet<string>): ShortName {
  checkLongName(name);
  const b = basis(name);
  const plain = pad11(b.base, b.ext);
  const display = b.ext ? `${b.base}.${b.ext}` : b.base;
  if (!b.lossy && !b.cut && b.base.length > 0) {
    if (taken.has(plain)) throw new RangeError(`${name}: the folder already holds ${display}`);
    return { raw: plain, needsLongName: display !== name };
  }
  for (let n = 1; n < 1_000_000; n++) {
    const tail = `~${n}`;
    const raw = pad11((b.base || '_').slice(0, 8 - tail.length) + tail, b.ext);
    if (!taken.has(raw)) return { raw, needsLongName: true };
  }
  throw new RangeError(`${name}: no free numeric tail`);
}

/** The checksum of an 8.3 name that each of its long-name slots carries (fatgen103). */
export function shortNameChecksum(raw: string): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = ((((sum & 1) << 7) | (sum >> 1)) + raw.charCodeAt(i)) & 0xff;
  return sum;
}

/**
 * The long-name slots for `name`, in the order they are stored (the last
 * part first, its sequence number marked with 0x40), ready to precede the
 * short entry whose 11-character name is `raw`.
 */
export function longNameSlots(name: string, raw: string): Uint8Array[] {
  const units: number[] = [];
  for (let i = 0; i < name.length; i++) units.push(name.charCodeAt(i));
  const count = Math.ceil(units.length / LFN_UNITS);
  if (units.length % LFN_UNITS) units.push(0x0000);
  while (units.length < count * LFN_UNITS) units.push(0xffff);
  const sum = shortNameChecksum(raw);
  const slots: Uint8Array[] = [];
  for (let seq = count; seq >= 1; seq--) {
    const s = new Uint8Array(SLOT);
    s[0] = seq | (seq === count ? 0x40 : 0);
    s[11] = ATTR_LFN;
    s[13] = sum;
    LFN_UNIT_OFFSETS.forEach((at, i) => {
      const u = units[(seq - 1) * LFN_UNITS + i];
      s[at] = u & 0xff;
      s[at + 1] = u >> 8;
    });
    slots.push(s);
  }
  return slots;
}

/** A DOS date (bits 15-9 year since 1980, 8-5 month, 4-0 day), from a date's UTC fields. */
export function dosDate(d: Date): number {
  const y = d.getUTCFullYear();
  if (y < 1980 || y > 2107) throw new RangeError(`a DOS date holds the years 1980 to 2107, not ${y}`);
  return ((y - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
}

/** A DOS time (bits 15-11 hours, 10-5 minutes, 4-0 seconds / 2), from a date's UTC fields. */
export function dosTime(d: Date): number {
  return (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1);
}

/** The creation time's hundredths of a second (0-199: the odd second and the milliseconds / 10). */
export function dosHundredths(d: Date): number {
  return (d.getUTCSeconds() & 1) * 100 + Math.floor(d.getUTCMilliseconds() / 10);
}

export interface ShortEntryInit {
  raw: string;
  attributes: number;
  firstCluster: number;
  size: number;
  created: Date;
  written: Date;
}

/** A 32-byte short directory entry (FAT12/16: the high cluster word stays 0). */
export function shortEntry(e: ShortEntryInit): Uint8Array {
  const s = new Uint8Array(SLOT);
  const v = new DataView(s.buffer);
  for (let i = 0; i < 11; i++) s[i] = e.raw.charCodeAt(i);
  s[11] = e.attributes;
  s[13] = dosHundredths(e.created);
  v.setUint16(14, dosTime(e.created), true);
  v.setUint16(16, dosDate(e.created), true);
  v.setUint16(18, dosDate(e.written), true);
  v.setUint16(22, dosTime(e.written), true);
  v.setUint16(24, dosDate(e.written), true);
  v.setUint16(26, e.firstCluster, true);
  v.setUint32(28, e.size, true);
  return s;
}
