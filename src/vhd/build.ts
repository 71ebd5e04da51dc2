/**
 * Fresh metadata for disks vhdtool creates: footers and headers as Hyper-V
 * writes them (features 0x2, version 1.0, host "Wi2k", CHS geometry from the
 * size by the spec's algorithm), and W2ku/W2ru parent locators.
 */
import * as path from 'node:path';
import {
  dateToVhdTime, encodeUtf16Le, geometryForSize, newUuid, FEATURE_RESERVED, FILE_FORMAT_VERSION, FOOTER_COOKIE,
  HEADER_COOKIE, HEADER_VERSION, UNUSED_LOCATOR, LOCATOR_COUNT, roundUp, SECTOR,
  type DiskType, type DynamicHeader, type Footer, type PlatformCode, type Uuid, type VhdTime,
} from '../format/index.js';

/** vhdtool's creator application code and version (1.0). */
export const CREATOR_APP = 'vhdt';
export const CREATOR_VERSION = 0x00010000;

export interface FooterInit {
  type: DiskType;
  virtualSize: number;
  uniqueId?: Uuid;
  timestamp?: VhdTime;
  creatorApplication?: string;
  creatorVersion?: number;
}

export function newFooter(init: FooterInit): Footer {
  return {
    cookie: FOOTER_COOKIE,
    features: FEATURE_RESERVED,
    formatVersion: FILE_FORMAT_VERSION,
    dataOffset: init.type === 'fixed' ? null : 512,
    timestamp: init.timestamp ?? dateToVhdTime(new Date()),
    creatorApplication: init.creatorApplication ?? CREATOR_APP,
    creatorVersion: init.creatorVersion ?? CREATOR_VERSION,
    creatorHostOs: 'Wi2k',
    originalSize: init.virtualSize,
    currentSize: init.virtualSize,
    geometry: geometryForSize(init.virtualSize),
    diskType: init.type,
    checksum: 0,
    uniqueId: init.uniqueId ?? newUuid(),
    savedState: 0,
    reserved: new Uint8Array(427),
  };
}

export interface ParentLink {
  uniqueId: Uuid;
  timestamp: VhdTime;
  /** Stored in the header's Parent Unicode Name (Hyper-V stores the absolute path; vhdtool the file name). */
  unicodeName: string;
}

export function newHeader(blockSize: number, maxTableEntries: number, parent: ParentLink | null): DynamicHeader {
  return {
    cookie: HEADER_COOKIE,
    dataOffset: null,
    tableOffset: 0,
    headerVersion: HEADER_VERSION,
    maxTableEntries,
    blockSize,
    checksum: 0,
    parentUniqueId: parent?.uniqueId ?? null,
    parentTimestamp: parent?.timestamp ?? 0,
    reserved1: 0,
    parentUnicodeName: parent?.unicodeName ?? '',
    locators: Array.from({ length: LOCATOR_COUNT }, () => ({ ...UNUSED_LOCATOR })),
    reserved2: new Uint8Array(256),
  };
}

/** Locator data to store: platform code and its raw bytes. */
export interface LocatorData {
  platform: PlatformCode;
  data: Uint8Array;
  /** Bytes to reserve (rounded up to a sector); default: the data length rounded up. */
  space?: number;
}

/**
 * W2ku (absolute) and W2ru (relative, ".\" prefixed, backslashes) locators
 * for `parentPath` as seen from a child stored at `childPath`.
 */
export function hyperVLocators(childPath: string, parentPath: string): LocatorData[] {
  return [
    { platform: 'W2ku', data: encodeUtf16Le(path.resolve(parentPath)) },
    { platform: 'W2ru', data: encodeUtf16Le(relativeLocatorPath(childPath, parentPath)) },
  ];
}

/** The parent's path relative to the child's folder, Windows style: ".\base.vhd", "..\golden\base.vhd". */
export function relativeLocatorPath(childPath: string, parentPath: string): string {
  const rel = path.relative(path.dirname(path.resolve(childPath)), path.resolve(parentPath)).split(path.sep).join('\\');
  return rel.startsWith('..\\') ? rel : '.\\' + rel;
}

/**
 * Bytes Hyper-V reserves for each locator's data (read from Windows'
 * differencing disks: W2ku 4 KiB, W2ru 64 KiB, in bytes), so a later relink
 * to a longer path can rewrite the locators in place.
 */
export const HYPERV_LOCATOR_SPACE: Readonly<Record<'W2ku' | 'W2ru', number>> = { W2ku: 4096, W2ru: 65536 };

/** W2ku and W2ru locators with Hyper-V's reserved spaces (more, in 4 KiB steps, for a longer path). */
export function hyperVLocatorsReserved(childPath: string, parentPath: string): LocatorData[] {
  return hyperVLocators(childPath, parentPath).map((l) => {
    const min = HYPERV_LOCATOR_SPACE[l.platform as 'W2ku' | 'W2ru'];
    return { ...l, space: Math.max(min, roundUp(l.data.length, 4096)) };
  });
}

/** A MacX locator: a UTF-8 file URL of the absolute path, as blktap writes it. */
export function macXLocatorData(parentPath: string): Uint8Array {
  const abs = path.resolve(parentPath).split(path.sep).map(encodeURIComponent).join('/');
  return new TextEncoder().encode(`file://${abs}`);
}

/** The deprecated ASCII locators (Wi2k absolute, Wi2r relative), or null when the path is not ASCII. */
export function asciiLocatorData(text: string): Uint8Array | null {
  const b = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7e || c < 0x20) return null;
    b[i] = c;
  }
  return b;
}

/**
 * What vhdtool stores in a child's Parent Unicode Name: the parent's path
 * relative to the child's folder with "/" separators ("base.vhd" beside it,
 * "../golden/base.vhd" elsewhere), which readers that ignore locators
 * (vhd-lib, libvhdi's tools) resolve from the child's folder; the file name
 * alone when that does not fit the field's 256 UTF-16 code units.
 */
export function parentUnicodeNameFor(childPath: string, parentPath: string): string {
  const rel = path.relative(path.dirname(path.resolve(childPath)), path.resolve(parentPath)).split(path.sep).join('/');
  return rel.length <= 256 ? rel : path.basename(parentPath).slice(0, 256);
}

/** Bytes reserved for a locator's data: its length rounded up to a sector (at least one). */
export function locatorSpace(dataLength: number): number {
  return Math.max(SECTOR, roundUp(dataLength, SECTOR));
}

/** Bytes reserved for a locator to be written: its requested space, at least its data, in sectors. */
export function locatorSlot(l: LocatorData): number {
  return Math.max(locatorSpace(l.data.length), roundUp(l.space ?? 0, SECTOR));
}
