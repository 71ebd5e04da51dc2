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
  const absParent = path.resolve(parentPath);
  let rel = path.relative(path.dirname(path.resolve(childPath)), absParent).split(path.sep).join('\\');
  if (!rel.startsWith('..')) rel = '.\\' + rel;
  return [
    { platform: 'W2ku', data: encodeUtf16Le(absParent) },
    { platform: 'W2ru', data: encodeUtf16Le(rel) },
  ];
}

/** Bytes reserved for a locator's data: its length rounded up to a sector (at least one). */
export function locatorSpace(dataLength: number): number {
  return Math.max(SECTOR, roundUp(dataLength, SECTOR));
}

/** Bytes reserved for a locator to be written: its requested space, at least its data, in sectors. */
export function locatorSlot(l: LocatorData): number {
  return Math.max(locatorSpace(l.data.length), roundUp(l.space ?? 0, SECTOR));
}
