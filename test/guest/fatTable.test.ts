/**
 * FAT entry values (fatgen103) and the compact map's memory bound.
 */
import { describe, expect, it } from 'vitest';
import { GuestError } from '../../src/guest/errors.js';
import { BAD, END, FREE, FatMap, MAX_JUMPS, NEXT, OUT_OF_RANGE, RESERVED, classify, entryAt, entryMask } from '../../src/guest/fat/table.js';

describe('FAT entries', () => {
  it('values mean free, link, end, bad, reserved or out of range, per width (FAT32 masked to 28 bits)', () => {
    const count = 1000;
    const cases: Array<[number, number, number]> = [
      [0xfff, 0, FREE], [0xfff, 1, OUT_OF_RANGE], [0xfff, 2, NEXT], [0xfff, 1001, NEXT], [0xfff, 1002, OUT_OF_RANGE],
      [0xfff, 0xff0, RESERVED], [0xfff, 0xff6, RESERVED], [0xfff, 0xff7, BAD], [0xfff, 0xff8, END], [0xfff, 0xfff, END],
      [0xffff, 0xfff6, RESERVED], [0xffff, 0xfff7, BAD], [0xffff, 0xfff8, END], [0xffff, 0xfef, OUT_OF_RANGE],
      [0x0fffffff, 0x0ffffff7, BAD], [0x0fffffff, 0x0ffffff8, END], [0x0fffffff, 0x0ffffff0, RESERVED],
    ];
    for (const [mask, v, want] of cases) expect(classify(v, mask, count), `0x${v.toString(16)}`).toBe(want);
    // FAT32's upper 4 bits are not part of the entry.
    const w = Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0xf7, 0xff, 0xff, 0xff);
    expect(entryAt('fat32', w, 0, 2)).toBe(0x0ffffff7);
    expect(classify(entryAt('fat32', w, 0, 2), entryMask('fat32'), count)).toBe(BAD);
    // FAT12 packs two entries in three bytes.
    const f12 = Uint8Array.of(0x34, 0x12, 0xab);
    expect([entryAt('fat12', f12, 0, 0), entryAt('fat12', f12, 0, 1)]).toEqual([0x234, 0xab1]);
  });

  it('a FAT with more jumps than the map holds is refused with a GuestError, not unbounded memory', () => {
    const count = MAX_JUMPS + 8;
    const m = new FatMap('fat32', count);
    let thrown: unknown = null;
    try {
      // Every cluster links back to cluster 2: a jump each.
      for (let c = 2; c <= count + 1; c++) m.set(c, 2);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(GuestError);
    expect((thrown as Error).message).toMatch(/more than 16777216 entries/);
    expect(m.bytes).toBeLessThanOrEqual(MAX_JUMPS * 4 + count / 4 + count / 64 + 64);
  });
});
