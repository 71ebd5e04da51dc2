/**
 * The scan's compact FAT (two bits a cluster and a side array found by
 * rank) against a plain array of entries.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BAD, FatMap, TAKEN_BEFORE, TAKEN_FREE, classify, entryMask } from '../src/guest/fat/table.js';
import type { FatKind } from '../src/guest/fat/bpb.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 200);

/** Entries of clusters 2 .. count + 1: mostly links to the next cluster, ends and free, with jumps and special values. */
const arbFat = fc.constantFrom<FatKind>('fat12', 'fat16', 'fat32').chain((kind) =>
  fc.integer({ min: 1, max: 600 }).chain((count) => {
    const mask = entryMask(kind);
    const value = (c: number) => fc.oneof(
      fc.constant(0),
      fc.constant(c + 1),
      fc.constant(mask),
      fc.integer({ min: mask - 7, max: mask }),
      fc.constant(mask - 8),
      fc.integer({ min: mask - 15, max: mask - 9 }),
      fc.integer({ min: 0, max: count + 5 }),
      fc.constant(1),
    );
    return fc.tuple(fc.constant(kind), fc.constant(count), fc.tuple(...Array.from({ length: count }, (_, i) => value(i + 2))));
  }));

describe('FatMap', () => {
  it('filled by set or setMany, take gives each cluster its entry once, then says taken (or free); peek changes nothing; forEachUntaken lists exactly the allocated, not bad, untaken clusters', () => {
    fc.assert(fc.property(arbFat, fc.array(fc.nat(), { maxLength: 400 }), fc.nat(), ([kind, count, values], order, split) => {
      const mask = entryMask(kind);
      const m = new FatMap(kind, count);
      // Entry by entry, or in two batches as the FAT pass does (set and setMany must agree).
      const cut = split % (count + 1);
      values.slice(0, cut).forEach((v, i) => m.set(i + 2, v));
      m.setMany(2 + cut, Uint32Array.from(values.slice(cut)), count - cut);
      const isFree = (c: number) => values[c - 2] === 0;
      const taken = new Set<number>();
      for (const o of order) {
        const c = 2 + (o % count);
        expect(m.peek(c, isFree)).toBe(values[c - 2] === 0 ? 'free' : taken.has(c) ? 'taken' : 'untaken');
        const got = m.take(c);
        const v = values[c - 2];
        if (v === 0) expect(got).toBe(TAKEN_FREE);
        else if (taken.has(c)) expect([TAKEN_BEFORE, TAKEN_FREE]).toContain(got);
        else {
          // Ends of chain come back as the mask (any 0x..F8-0x..FF is the end), everything else exactly.
          expect(got).toBe(v >= mask - 7 && v !== c + 1 ? mask : v);
          taken.add(c);
        }
      }
      const untaken: number[] = [];
      m.forEachUntaken((s, e) => {
        for (let c = s; c < e; c++) untaken.push(c);
      });
      const want = values.map((v, i) => i + 2).filter((c) => {
        const v = values[c - 2];
        return v !== 0 && !taken.has(c) && classify(v, mask, count) !== BAD;
      });
      expect(untaken).toEqual(want);
    }), { numRuns: RUNS });
  });
});
