/**
 * Writing new VHD files. The writers only append to files vhdtool created
 * itself; they never open an existing file for writing.
 *
 * SparseWriter (dynamic and differencing): reserve a slot per stored block in
 * the order blocks are produced, write its data and bitmap, record it in the
 * BAT, then `finish()` writes the header, BAT, locators and both footers.
 * FixedWriter: write data at virtual offsets, then `finish()` sizes the file
 * (holes read as zeros) and appends the footer.
 */
import {
  Bat, encodeBat, encodeFooter, encodeHeader, sealFooter, sealHeader, sparseLayout, sparseFileSize, storedBlockOffset,
  FOOTER_SIZE, SECTOR,
  type DynamicHeader, type Footer, type SparseLayout,
} from '../format/index.js';
import type { RandomAccessFile } from '../io/fsys.js';
import { locatorSlot, type LocatorData } from './build.js';

export interface SparseSpec {
  /** Footer to write; data offset and checksum are filled in. */
  footer: Footer;
  /** Header to write; table offset, locator entries and checksum are filled in. */
  header: DynamicHeader;
  locators: LocatorData[];
  /** Block data alignment: 4096 (Hyper-V, default) or 512 (packed). */
  align?: number;
  /** Place locator data before the BAT (for tests of producers that do). */
  locatorsFirst?: boolean;
  /** Place the metadata as Hyper-V does (first locator at 4 KiB, BAT padded to 4 KiB); see format/layout.ts. */
  hyperV?: boolean;
}

export class SparseWriter {
  readonly layout: SparseLayout;
  readonly bat: Bat;
  private stored = 0;
  private readonly blockSize: number;

  constructor(readonly file: RandomAccessFile, readonly spec: SparseSpec) {
    const h = spec.header;
    this.blockSize = h.blockSize;
    this.layout = sparseLayout({
      maxTableEntries: h.maxTableEntries,
      blockSize: h.blockSize,
      locatorSpaces: spec.locators.map((l) => locatorSlot(l)),
      align: spec.align ?? 4096,
      locatorsFirst: spec.locatorsFirst,
      hyperV: spec.hyperV,
    });
    this.bat = Bat.empty(h.maxTableEntries);
  }

  /** Number of blocks stored so far. */
  get storedBlocks(): number {
    return this.stored;
  }

  /** Size the file will have with `n` stored blocks. */
  sizeWith(n: number): number {
    return sparseFileSize(this.layout, n, this.blockSize);
  }

  /** Reserves the next block slot for virtual block `block`; returns the byte offset of its bitmap. */
  reserve(block: number): number {
    if (this.bat.get(block) !== null) throw new Error(`internal: block ${block} stored twice`);
    const off = storedBlockOffset(this.layout, this.stored++);
    this.bat.set(block, off / SECTOR);
    return off;
  }

  /** Writes `data` at byte `at` of the block's data area. */
  writeData(blockOffset: number, at: number, data: Uint8Array): Promise<void> {
    return this.file.write(data, 0, data.length, blockOffset + this.layout.bitmapBytes + at);
  }

  writeBitmap(blockOffset: number, bitmap: Uint8Array): Promise<void> {
    if (bitmap.length !== this.layout.bitmapBytes) throw new Error('internal: bitmap size');
    return this.file.write(bitmap, 0, bitmap.length, blockOffset);
  }

  /** Writes a whole block (bitmap then data) into a fresh slot. */
  async writeBlock(block: number, bitmap: Uint8Array, data: Uint8Array): Promise<number> {
    const off = this.reserve(block);
    await this.file.writev([bitmap, data], off);
    return off;
  }

  /** Writes the metadata and both footers; returns the final footer and header. The caller fsyncs. */
  async finish(): Promise<{ size: number; footer: Footer; header: DynamicHeader }> {
    const l = this.layout;
    const size = this.sizeWith(this.stored);
    const header: DynamicHeader = sealHeader({
      ...this.spec.header,
      tableOffset: l.tableOffset,
      locators: this.spec.header.locators.map((_, i) => {
        const d = this.spec.locators[i];
        if (!d) return { platform: null, dataSpace: 0, dataLength: 0, reserved: 0, dataOffset: 0 };
        return { platform: d.platform, dataSpace: locatorSlot(d), dataLength: d.data.length, reserved: 0, dataOffset: l.locatorOffsets[i] };
      }),
    });
    const footer = sealFooter({ ...this.spec.footer, dataOffset: l.headerOffset });
    const fb = encodeFooter(footer);
    await this.file.write(fb, 0, FOOTER_SIZE, 0);
    await this.file.write(encodeHeader(header), 0, 1024, l.headerOffset);
    // Padding past the entries reads as unused entries (0xFFFFFFFF), as Hyper-V fills its 4 KiB BAT region.
    const bat = encodeBat(this.bat, l.batRegionBytes / 4);
    await this.file.write(bat, 0, bat.length, l.tableOffset);
    for (let i = 0; i < this.spec.locators.length; i++) {
      const d = this.spec.locators[i].data;
      const space = new Uint8Array(locatorSlot(this.spec.locators[i]));
      space.set(d);
      await this.file.write(space, 0, space.length, l.locatorOffsets[i]);
    }
    await this.file.truncate(size - FOOTER_SIZE);
    await this.file.write(fb, 0, FOOTER_SIZE, size - FOOTER_SIZE);
    return { size, footer, header };
  }
}

export class FixedWriter {
  constructor(readonly file: RandomAccessFile, readonly footer: Footer) {}

  /** Writes guest data at byte `offset`. */
  write(offset: number, data: Uint8Array): Promise<void> {
    return this.file.write(data, 0, data.length, offset);
  }

  get size(): number {
    return this.footer.currentSize + FOOTER_SIZE;
  }

  async finish(): Promise<{ size: number; footer: Footer }> {
    const footer = sealFooter({ ...this.footer, dataOffset: null });
    await this.file.truncate(footer.currentSize);
    await this.file.write(encodeFooter(footer), 0, FOOTER_SIZE, footer.currentSize);
    return { size: footer.currentSize + FOOTER_SIZE, footer };
  }
}
