/**
 * writeRuns decides which parts of a unit the executor writes; what it leaves
 * out becomes a hole that must read zero. Checked against a brute-force model
 * over random drop maps and source runs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writeRuns } from '../../src/exec/rewrite.js';

const unitArb = fc.integer({ min: 1, max: 1024 }).chain((sectors) => fc.record({
  sectors: fc.constant(sectors),
  // Source runs: sorted, disjoint stretches inside the unit.
  cuts: fc.uniqueArray(fc.integer({ min: 0, max: sectors }), { maxLength: 8 }).map((c) => [...c].sort((a, b) => a - b)),
  // Kept sectors come in stretches, like real data; the rest are dropped.
  kept: fc.array(fc.tuple(fc.integer({ min: 0, max: sectors - 1 }), fc.integer({ min: 1, max: 300 })), { maxLength: 6 }),
}));

describe('writeRuns', () => {
  it('covers every kept sector, leaves out only dropped or unsourced sectors, and its holes are aligned and at least 64 KiB', () => {
    fc.assert(fc.property(unitArb, ({ sectors, cuts, kept }) => {
      const src: number[] = [];
      for (let i = 0; i + 1 < cuts.length; i += 2) if (cuts[i + 1] > cuts[i]) src.push(cuts[i], cuts[i + 1] - cuts[i], 0, 0);
      const keep = new Uint8Array(sectors);
      for (const [s, n] of kept) keep.fill(1, s, Math.min(sectors, s + n));
      const inSrc = new Uint8Array(sectors);
      for (let i = 0; i < src.length; i += 4) inSrc.fill(1, src[i], src[i] + src[i + 1]);
      const drop = new Uint8Array(Math.ceil(sectors / 8));
      for (let s = 0; s < sectors; s++) if (!(inSrc[s] && keep[s])) drop[s >>> 3] |= 0x80 >>> (s & 7);
      const runs = writeRuns(drop, src, sectors);
      const covered = new Uint8Array(sectors);
      let prevEnd = -1;
      for (let i = 0; i < runs.length; i += 2) {
        const [s, n] = [runs[i], runs[i + 1]];
        expect(n).toBeGreaterThan(0);
        expect(s).toBeGreaterThan(prevEnd);
        expect(s + n).toBeLessThanOrEqual(sectors);
        expect(s % 8).toBe(0);
        if (prevEnd >= 0) {
          // A hole between two runs: aligned at both ends and at least 128 sectors.
          expect(prevEnd % 8).toBe(0);
          expect(s - prevEnd).toBeGreaterThanOrEqual(128);
        }
        covered.fill(1, s, s + n);
        prevEnd = s + n;
      }
      for (let s = 0; s < sectors; s++) if (inSrc[s] && keep[s]) expect(covered[s]).toBe(1);
    }), { numRuns: 500 });
  });

  it('writes nothing when every sector is dropped, and one run when nothing is', () => {
    expect(writeRuns(new Uint8Array(512).fill(0xff), [0, 4096, 0, 0], 4096)).toEqual([]);
    expect(writeRuns(new Uint8Array(512), [0, 4096, 0, 0], 4096)).toEqual([0, 4096]);
    // Kept sectors 0-9 and 1000-1009: the zero stretch between is a hole from 16 to 1000.
    const drop = new Uint8Array(512).fill(0xff);
    for (const s of [...Array(10).keys(), ...Array.from({ length: 10 }, (_, i) => 1000 + i)]) drop[s >>> 3] &= ~(0x80 >>> (s & 7));
    expect(writeRuns(drop, [0, 4096, 0, 0], 4096)).toEqual([0, 16, 1000, 16]);
  });
});
