/**
 * The facts MANIFEST.md records for each real fixture (per-file details
 * section), parsed at test time so the expected values come from the
 * independent tools that wrote the manifest (libvhdi/pyvhdi, qemu-img, a
 * Python footer/header dump), never from vhdtool.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { HAVE_REAL, REAL_DIR } from './real.js';

export interface ManifestLocator {
  platform: string;
  dataSpace: number;
  length: number;
  offset: number;
  value: string;
}

export interface ManifestEntry {
  /** Name as listed ("node-vhd-dynamic.vhd.gz" for compressed ones). */
  name: string;
  fileSize: number;
  features: number;
  dataOffset: string;
  timestamp: number;
  creatorApp: string;
  creatorVersion: number;
  creatorHost: string;
  originalSize: number;
  currentSize: number;
  geometry: { cylinders: number; heads: number; sectorsPerTrack: number };
  diskType: number;
  footerChecksumValid: boolean;
  uuid: string;
  savedState: number;
  header: null | {
    tableOffset: number;
    maxTableEntries: number;
    blockSize: number;
    checksumValid: boolean;
    parentUuid: string;
    parentTimestamp: number;
    parentUnicodeName: string;
    allocated: number;
    total: number;
  };
  locators: ManifestLocator[];
}

/** Undoes the Python repr escaping the manifest uses inside '...' ('\\\\' -> '\\', '\\0' -> NUL). */
function unrepr(s: string): string {
  return s.replace(/\\(\\|0|')/g, (_, c: string) => (c === '0' ? '\0' : c));
}

function need(m: RegExpExecArray | null, what: string, name: string): RegExpExecArray {
  if (!m) throw new Error(`MANIFEST.md: cannot parse ${what} of ${name}`);
  return m;
}

export function manifest(): Map<string, ManifestEntry> {
  const out = new Map<string, ManifestEntry>();
  if (!HAVE_REAL) return out;
  const text = readFileSync(path.join(REAL_DIR, 'MANIFEST.md'), 'utf8');
  const sections = text.split(/^### /m).slice(1);
  for (const sec of sections) {
    const name = sec.slice(0, sec.indexOf('\n')).trim();
    const footerLine = need(/^- file size (\d+); footer: (.*)$/m.exec(sec), 'footer line', name);
    const f = footerLine[2];
    const creator = need(/creator app '((?:[^'\\]|\\.)*)' ver 0x([0-9a-f]+) host '([^']*)'/.exec(f), 'creator', name);
    const sizes = need(/original_size (\d+), current_size (\d+), geometry C\/H\/S (\d+)\/(\d+)\/(\d+)/.exec(f), 'sizes', name);
    const e: ManifestEntry = {
      name,
      fileSize: Number(footerLine[1]),
      features: parseInt(need(/features 0x([0-9a-f]+)/.exec(f), 'features', name)[1], 16),
      dataOffset: need(/data_offset (0x[0-9a-f]+)/.exec(f), 'data offset', name)[1],
      timestamp: Number(need(/timestamp (\d+)/.exec(f), 'timestamp', name)[1]),
      // The manifest writes a NUL in a four-character code as "\\0" ('d2v\\0').
      creatorApp: creator[1].replace(/\\\\0/g, '\0'),
      creatorVersion: parseInt(creator[2], 16),
      creatorHost: creator[3],
      originalSize: Number(sizes[1]),
      currentSize: Number(sizes[2]),
      geometry: { cylinders: Number(sizes[3]), heads: Number(sizes[4]), sectorsPerTrack: Number(sizes[5]) },
      diskType: Number(need(/disk type (\d+)/.exec(f), 'disk type', name)[1]),
      footerChecksumValid: need(/checksum valid=(True|False)/.exec(f), 'checksum', name)[1] === 'True',
      uuid: need(/uuid ([0-9a-f-]{36})/.exec(f), 'uuid', name)[1],
      savedState: Number(need(/saved_state (\d+)/.exec(f), 'saved state', name)[1]),
      header: null,
      locators: [],
    };
    const h = /^- dynamic header: table_offset (\d+), max_table_entries (\d+), block_size (\d+), header version 0x[0-9a-f]+, checksum valid=(True|False), parent uuid ([0-9a-f-]{36}), parent time stamp (\d+), parent unicode name '((?:[^'\\]|\\.)*)'; BAT allocated (\d+)\/(\d+)$/m.exec(sec);
    if (h) {
      e.header = {
        tableOffset: Number(h[1]),
        maxTableEntries: Number(h[2]),
        blockSize: Number(h[3]),
        checksumValid: h[4] === 'True',
        parentUuid: h[5],
        parentTimestamp: Number(h[6]),
        parentUnicodeName: unrepr(h[7]),
        allocated: Number(h[8]),
        total: Number(h[9]),
      };
    } else if (e.diskType !== 2) {
      throw new Error(`MANIFEST.md: no dynamic header line for ${name}`);
    }
    for (const m of sec.matchAll(/^ {2}- parent locator (\S+): data space (\d+), length (\d+), offset (\d+), value '((?:[^'\\]|\\.)*)'$/gm)) {
      e.locators.push({ platform: m[1], dataSpace: Number(m[2]), length: Number(m[3]), offset: Number(m[4]), value: unrepr(m[5]) });
    }
    out.set(name, e);
  }
  return out;
}

/** Parent of each real child, as MANIFEST.md pairs them. */
export const REAL_PARENTS: Record<string, string> = {
  'fat-differential.vhd': 'fat-parent.vhd',
  'ntfs-differential.vhd': 'ntfs-parent.vhd',
  'image-differential.vhd': 'image.vhd',
};

/** The two ~127 GiB all-zero fixtures whose content is proved without hashing each separately. */
export const ZERO_GIANTS = ['hyperv2012r2-dynamic.vhd', 'virtualpc-dynamic.vhd'];
