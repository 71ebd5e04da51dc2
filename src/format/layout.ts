/**
 * Where things go in a file vhdtool writes. Pure arithmetic, no I/O.
 *
 * Dynamic and differencing disks are laid out the way Hyper-V (Windows Server
 * 2012 and later) lays them out, with block *data* on 4 KiB boundaries:
 *
 *     0      footer copy (512)
 *     512    dynamic header (1024)
 *     1536   BAT (4 bytes x maxTableEntries, padded to a sector)
 *     ...    parent locator data, one sector-aligned slot each
 *     ...    blocks: [bitmap][data], data 4 KiB aligned, in the order given
 *     end    footer (512)
 *
 * With `align: 512` the blocks are packed back to back instead. A fixed disk
 * is the raw data followed by the footer.
 *
 * With `hyperV: true` the metadata is placed as in Windows' own differencing
 * disks (diskpart/Hyper-V, e.g. dfvfs fat-differential.vhd):
 *
 *     0      footer copy (512)
 *     512    dynamic header (1024)
 *     4096   first locator (W2ku), its reserved space
 *     8192   BAT, on a 4 KiB boundary, padded with unused entries to one
 *     ...    the other locators (W2ru), each on a 4 KiB boundary
 *     ...    blocks, data 4 KiB aligned
 *
 * With no locator (a dynamic disk) the BAT follows the header at 1536, as in
 * Hyper-V's dynamic disks.
 *
 * Derived sizes: bitmap = ceil(blockSize/512/8) rounded up to 512; stride
 * (distance between consecutive blocks) = roundUp(bitmap + blockSize, align).
 */
import { batBytes } from './bat.js';
import { bitmapBytes } from './bitmap.js';
import { roundUp } from './bytes.js';
import { FOOTER_SIZE, HEADER_SIZE, HYPERV_ALIGNMENT, SECTOR } from './constants.js';

export interface SparseLayoutInput {
  /** Entries in the BAT (at least the number of blocks the size needs). */
  maxTableEntries: number;
  /** Data bytes per block. */
  blockSize: number;
  /** Bytes reserved for each locator's data; each a multiple of 512. */
  locatorSpaces: number[];
  /** Alignment of block data: 4096 (Hyper-V) or 512 (packed). */
  align: number;
  /** Put the locator data before the BAT (some producers do; used by tests). */
  locatorsFirst?: boolean;
  /** Place the metadata as Hyper-V does (see the file comment). */
  hyperV?: boolean;
}

export interface SparseLayout {
  headerOffset: number;
  tableOffset: number;
  /** Bytes from the table offset to the next structure: the BAT padded to a sector (Hyper-V: to 4 KiB). */
  batRegionBytes: number;
  locatorOffsets: number[];
  /** Byte offset of the first stored block's bitmap. */
  firstBlockOffset: number;
  /** Bytes from one stored block's bitmap to the next. */
  blockStride: number;
  bitmapBytes: number;
  /** File size with no block stored, including the end footer. */
  emptyFileSize: number;
}

export function sparseLayout(input: SparseLayoutInput): SparseLayout {
  const { maxTableEntries, blockSize, locatorSpaces, align } = input;
  if (align % SECTOR !== 0 || align <= 0) throw new RangeError('alignment must be a positive multiple of 512');
  const bm = bitmapBytes(blockSize);
  const headerOffset = FOOTER_SIZE;
  let pos = headerOffset + HEADER_SIZE;
  let tableOffset = 0;
  const locatorOffsets: number[] = [];
  const placeLocators = () => {
    for (const space of locatorSpaces) {
      if (space % SECTOR !== 0) throw new RangeError('locator space must be a multiple of 512');
      locatorOffsets.push(pos);
      pos += space;
    }
  };
  let batRegionBytes = batBytes(maxTableEntries);
  if (input.hyperV) {
    if (input.locatorsFirst) throw new RangeError('hyperV and locatorsFirst exclude each other');
    const spaces = [...locatorSpaces];
    const place = (space: number) => {
      if (space % SECTOR !== 0) throw new RangeError('locator space must be a multiple of 512');
      pos = roundUp(pos, HYPERV_ALIGNMENT);
      locatorOffsets.push(pos);
      pos += space;
    };
    if (spaces.length) {
      place(spaces.shift()!);
      pos = roundUp(pos, HYPERV_ALIGNMENT);
      batRegionBytes = roundUp(batRegionBytes, HYPERV_ALIGNMENT);
    }
    tableOffset = pos;
    pos += batRegionBytes;
    for (const space of spaces) place(space);
  } else {
    if (input.locatorsFirst) placeLocators();
    tableOffset = pos;
    pos += batRegionBytes;
    if (!input.locatorsFirst) placeLocators();
  }
  const stride = roundUp(bm + blockSize, align);
  const firstData = roundUp(pos + bm, align);
  const firstBlockOffset = firstData - bm;
  return { headerOffset, tableOffset, batRegionBytes, locatorOffsets, firstBlockOffset, blockStride: stride, bitmapBytes: bm, emptyFileSize: pos + FOOTER_SIZE };
}

/** Total file size (end footer included) when `blockCount` blocks are stored. */
export function sparseFileSize(l: SparseLayout, blockCount: number, blockSize: number): number {
  if (blockCount === 0) return l.emptyFileSize;
  return l.firstBlockOffset + (blockCount - 1) * l.blockStride + l.bitmapBytes + blockSize + FOOTER_SIZE;
}

/** Byte offset of the `i`-th stored block's bitmap. */
export function storedBlockOffset(l: SparseLayout, i: number): number {
  return l.firstBlockOffset + i * l.blockStride;
}

/** Size of a fixed disk file holding `virtualSize` bytes. */
export function fixedFileSize(virtualSize: number): number {
  return virtualSize + FOOTER_SIZE;
}
