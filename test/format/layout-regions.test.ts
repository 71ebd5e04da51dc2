/**
 * Layout arithmetic for the files vhdtool writes (Hyper-V 4 KiB-aligned block
 * data, or packed) and the overlap test the checker relies on.
 */
import { describe, expect, it } from 'vitest';
import {
  sparseLayout, sparseFileSize, storedBlockOffset, fixedFileSize, findOverlap, findOverlaps, describeRegion,
  type Region,
} from '../../src/format/index.js';

const MiB = 1024 * 1024;

describe('sparseLayout', () => {
  it('places footer copy, header, BAT, locators, then 4 KiB-aligned block data (Hyper-V)', () => {
    const l = sparseLayout({ maxTableEntries: 3, blockSize: 2 * MiB, locatorSpaces: [512, 1024], align: 4096 });
    expect(l.headerOffset).toBe(512);
    expect(l.tableOffset).toBe(1536);
    // BAT of 3 entries takes one sector: locators from 2048.
    expect(l.locatorOffsets).toEqual([2048, 2560]);
    expect(l.bitmapBytes).toBe(512);
    // Metadata ends at 3584; first data must start on 4096, so its bitmap sits at 3584.
    expect(l.firstBlockOffset).toBe(3584);
    expect(l.blockStride).toBe(2 * MiB + 4096);
    expect(l.emptyFileSize).toBe(3584 + 512);
  });

  it('keeps every stored block\'s data on a 4 KiB boundary, for any block size and metadata size', () => {
    for (const blockSize of [4096, 8192, 65536, 512 * 1024, 2 * MiB]) {
      for (const entries of [1, 3, 128, 129, 1000]) {
        for (const spaces of [[], [512], [512, 65536], [1536, 512, 512]]) {
          const l = sparseLayout({ maxTableEntries: entries, blockSize, locatorSpaces: spaces, align: 4096 });
          const metaEnd = 1536 + Math.ceil((entries * 4) / 512) * 512 + spaces.reduce((a, b) => a + b, 0);
          expect(l.firstBlockOffset).toBeGreaterThanOrEqual(metaEnd);
          expect(l.firstBlockOffset - metaEnd).toBeLessThan(4096);
          for (let i = 0; i < 4; i++) {
            const off = storedBlockOffset(l, i);
            expect((off + 512) % 4096).toBe(0);
            if (i > 0) expect(off - storedBlockOffset(l, i - 1)).toBeGreaterThanOrEqual(512 + blockSize);
          }
        }
      }
    }
  });

  it('4 KiB blocks: bitmap padded to a sector, stride of 8 KiB when aligned, 4.5 KiB when packed', () => {
    expect(sparseLayout({ maxTableEntries: 10, blockSize: 4096, locatorSpaces: [], align: 4096 }).blockStride).toBe(8192);
    const p = sparseLayout({ maxTableEntries: 10, blockSize: 4096, locatorSpaces: [], align: 512 });
    expect(p.blockStride).toBe(4608);
    expect(p.firstBlockOffset).toBe(2048);
  });

  it('packed (align 512): blocks back to back right after the metadata, like qemu', () => {
    const l = sparseLayout({ maxTableEntries: 2, blockSize: 2 * MiB, locatorSpaces: [], align: 512 });
    expect(l.firstBlockOffset).toBe(2048);
    expect(storedBlockOffset(l, 1)).toBe(2048 + 512 + 2 * MiB);
    expect(sparseFileSize(l, 2, 2 * MiB)).toBe(2048 + 2 * (512 + 2 * MiB) + 512);
  });

  it('locatorsFirst puts the locator data before the BAT', () => {
    const l = sparseLayout({ maxTableEntries: 3, blockSize: 2 * MiB, locatorSpaces: [512, 512], align: 4096, locatorsFirst: true });
    expect(l.locatorOffsets).toEqual([1536, 2048]);
    expect(l.tableOffset).toBe(2560);
    expect(l.firstBlockOffset).toBe(3584);
  });

  it('file sizes: empty = metadata + footer; n blocks = last block end + footer; fixed = data + footer', () => {
    const l = sparseLayout({ maxTableEntries: 3, blockSize: 2 * MiB, locatorSpaces: [512, 1024], align: 4096 });
    expect(sparseFileSize(l, 0, 2 * MiB)).toBe(l.emptyFileSize);
    expect(sparseFileSize(l, 1, 2 * MiB)).toBe(3584 + 512 + 2 * MiB + 512);
    expect(sparseFileSize(l, 3, 2 * MiB)).toBe(3584 + 2 * (2 * MiB + 4096) + 512 + 2 * MiB + 512);
    expect(fixedFileSize(4194304)).toBe(4194816);
  });

  it('refuses alignments and locator spaces that are not multiples of 512', () => {
    expect(() => sparseLayout({ maxTableEntries: 1, blockSize: 4096, locatorSpaces: [], align: 1000 })).toThrow(RangeError);
    expect(() => sparseLayout({ maxTableEntries: 1, blockSize: 4096, locatorSpaces: [], align: 0 })).toThrow(RangeError);
    expect(() => sparseLayout({ maxTableEntries: 1, blockSize: 4096, locatorSpaces: [100], align: 512 })).toThrow(RangeError);
  });
});

describe('region overlap', () => {
  const r = (name: string, start: number, end: number): Region => ({ name, start, end });

  it('adjacent regions do not overlap', () => {
    expect(findOverlap([r('footer copy', 0, 512), r('header', 512, 1536), r('BAT', 1536, 2048), r('footer', 2048, 2560)])).toBeNull();
    expect(findOverlaps([r('a', 0, 10), r('b', 10, 20)])).toEqual([]);
  });

  it('finds an overlap whatever the input order', () => {
    const a = r('block 0', 4096, 4096 + 2560);
    const b = r('block 1', 4096 + 2048, 4096 + 4608);
    expect(findOverlap([b, r('header', 512, 1536), a])).toEqual([a, b]);
  });

  it('a region nested in a wide one overlaps it, and so does one that starts inside it after a nested one ends', () => {
    const wide = r('BAT', 0, 100);
    const x = r('block 1', 10, 20);
    const y = r('block 2', 30, 40);
    expect(findOverlaps([y, x, wide])).toEqual([[wide, x], [wide, y]]);
  });

  it('ignores empty regions and honours the limit', () => {
    expect(findOverlap([r('empty', 5, 5), r('a', 0, 10)])).toBeNull();
    const many = Array.from({ length: 20 }, (_, i) => r(`b${i}`, i, i + 2));
    expect(findOverlaps(many, 3)).toHaveLength(3);
    expect(findOverlaps(many)).toHaveLength(10);
  });

  it('describes a region with hex bounds', () => {
    expect(describeRegion(r('block 3', 0x1000, 0x201200))).toBe('block 3 [0x1000, 0x201200)');
  });
});
