import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RangeSet, RangeSetBuilder } from '../src/guest/ranges.js';
import { Ownership } from '../src/guest/ownership.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 200);
const U = 200;
const arbPairs = fc.array(fc.tuple(fc.integer({ min: 0, max: U }), fc.integer({ min: 0, max: 40 })).map(([s, l]) => [s, s + l] as [number, number]), { maxLength: 30 });

/** The model: a boolean per position. */
function model(pairs: Array<[number, number]>): boolean[] {
  const m = new Array<boolean>(U + 50).fill(false);
  for (const [s, e] of pairs) for (let i = s; i < e; i++) m[i] = true;
  return m;
}
const asModel = (r: RangeSet) => model(r.toArray());

describe('RangeSet', () => {
  it('a set built from ranges in any order holds exactly the positions of those ranges, canonical (sorted, disjoint, non-adjacent)', () => {
    fc.assert(fc.property(arbPairs, (pairs) => {
      const r = RangeSet.from(pairs);
      expect(asModel(r)).toEqual(model(pairs));
      const a = r.toArray();
      for (let i = 1; i < a.length; i++) expect(a[i][0]).toBeGreaterThan(a[i - 1][1]);
      expect(r.bytes).toBe(model(pairs).filter(Boolean).length);
    }), { numRuns: RUNS });
  });

  it('union, intersect and subtract agree with the positions of the model, and intersectBytes with the intersection', () => {
    fc.assert(fc.property(arbPairs, arbPairs, (p, q) => {
      const a = RangeSet.from(p);
      const b = RangeSet.from(q);
      const ma = model(p);
      const mb = model(q);
      expect(asModel(a.union(b))).toEqual(ma.map((x, i) => x || mb[i]));
      expect(asModel(a.intersect(b))).toEqual(ma.map((x, i) => x && mb[i]));
      expect(asModel(a.subtract(b))).toEqual(ma.map((x, i) => x && !mb[i]));
      expect(a.intersectBytes(b)).toBe(ma.filter((x, i) => x && mb[i]).length);
    }), { numRuns: RUNS });
  });

  it('a few ranges intersected with hundreds (the long skips of the galloping merge) agree with the model, both ways round', () => {
    // Hundreds of short ranges with short gaps, spread over [0, ~1600); a few wide ranges anywhere in it.
    const arbMany = fc.array(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })), { minLength: 50, maxLength: 200 })
      .map((gl) => { let at = 0; return gl.map(([g, l]) => { at += g; const r: [number, number] = [at, at + l]; at += l; return r; }); });
    const arbFew = fc.array(fc.tuple(fc.integer({ min: 0, max: 1600 }), fc.integer({ min: 0, max: 60 })).map(([s, l]) => [s, s + l] as [number, number]), { maxLength: 4 });
    const big = (pairs: Array<[number, number]>) => {
      const m = new Array<boolean>(1700).fill(false);
      for (const [s, e] of pairs) for (let i = s; i < e; i++) m[i] = true;
      return m;
    };
    fc.assert(fc.property(arbMany, arbFew, (p, q) => {
      const a = RangeSet.from(p);
      const b = RangeSet.from(q);
      const want = big(p).map((x, i) => x && big(q)[i]);
      expect(big(a.intersect(b).toArray())).toEqual(want);
      expect(big(b.intersect(a).toArray())).toEqual(want);
      expect(a.intersectBytes(b)).toBe(want.filter(Boolean).length);
      expect(b.intersectBytes(a)).toBe(want.filter(Boolean).length);
    }), { numRuns: RUNS });
  });

  it('has, overlaps and covers answer as the model does for every range', () => {
    fc.assert(fc.property(arbPairs, fc.integer({ min: 0, max: U }), fc.integer({ min: 0, max: 30 }), (p, s, l) => {
      const a = RangeSet.from(p);
      const m = model(p);
      const slice = m.slice(s, s + l);
      expect(a.has(s)).toBe(m[s]);
      expect(a.overlaps(s, s + l)).toBe(slice.some(Boolean));
      expect(a.covers(s, s + l)).toBe(slice.every(Boolean));
    }), { numRuns: RUNS });
  });

  it('widen covers every unit a position of the set touches, narrow keeps only units the set covers whole', () => {
    fc.assert(fc.property(arbPairs, fc.constantFrom(1, 2, 4, 8), (p, unit) => {
      const a = RangeSet.from(p);
      const m = model(p);
      const w = asModel(a.widen(unit));
      const n = asModel(a.narrow(unit));
      for (let u = 0; u * unit < m.length; u++) {
        const cells = m.slice(u * unit, (u + 1) * unit);
        const full = cells.length === unit && cells.every(Boolean);
        for (let i = u * unit; i < Math.min(m.length, (u + 1) * unit); i++) {
          expect(w[i]).toBe(cells.some(Boolean));
          expect(n[i]).toBe(full);
        }
      }
    }), { numRuns: RUNS });
  });

  it('shift moves every position by the same amount, clip keeps the positions inside the window', () => {
    fc.assert(fc.property(arbPairs, fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: U }), fc.integer({ min: 0, max: U }), (p, d, s, l) => {
      const a = RangeSet.from(p);
      expect(a.shift(d).toArray()).toEqual(a.toArray().map(([x, y]) => [x + d, y + d]));
      expect(asModel(a.clip(s, s + l))).toEqual(model(p).map((x, i) => x && i >= s && i < s + l));
    }), { numRuns: RUNS });
  });
});

describe('Ownership', () => {
  it('finds exactly the bytes claimed twice and the owned bytes the free map contains', () => {
    fc.assert(fc.property(fc.array(arbPairs, { maxLength: 6 }), arbPairs, (owners, freePairs) => {
      const own = new Ownership();
      const count = new Array<number>(U + 50).fill(0);
      owners.forEach((pairs, i) => {
        const id = own.owner(`f${i}`);
        const set = RangeSet.from(pairs);
        own.add(id, set);
        for (const [s, e] of set) for (let k = s; k < e; k++) count[k]++;
      });
      const free = RangeSet.from(freePairs);
      const { owned, anomalies } = own.check(free);
      const twice = anomalies.find((a) => a.kind === 'double-owned')?.ranges ?? RangeSet.EMPTY;
      const bad = anomalies.find((a) => a.kind === 'owned-but-free')?.ranges ?? RangeSet.EMPTY;
      expect(asModel(owned)).toEqual(count.map((c) => c > 0));
      expect(asModel(twice)).toEqual(count.map((c) => c > 1));
      const fm = model(freePairs);
      expect(asModel(bad)).toEqual(count.map((c, i) => c > 0 && fm[i]));
    }), { numRuns: RUNS });
  });

  it('a builder fed ranges in ascending order merges them as it goes', () => {
    const b = new RangeSetBuilder(1);
    b.add(0, 10).add(10, 20).add(5, 12).add(30, 40);
    expect(b.rangeCount).toBe(2);
    expect(b.build().toArray()).toEqual([[0, 20], [30, 40]]);
  });
});
