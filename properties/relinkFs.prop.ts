/**
 * introducedBy, the heart of relink's guest-filesystems check: what the
 * composed view (child over candidate) adds to the candidate's own anomalies.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RangeSet } from '../src/guest/ranges.js';
import { introducedBy } from '../src/ops/relink/fsProof.js';
import type { Anomaly } from '../src/guest/volume.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 200);
const SECTOR = 512;
const RECORD = 1024;
const KINDS = ['double-owned', 'owned-but-free', 'unowned-allocated', 'orphan', 'bad-index', 'bad-chain'];

const arbRanges = fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 1, max: 30 })), { maxLength: 12 })
  .map((ps) => RangeSet.from(ps.map(([s, l]) => [s * SECTOR, (s + l) * SECTOR] as [number, number])));

const arbAnomaly = fc.record({
  kind: fc.constantFrom(...KINDS),
  ranges: fc.option(arbRanges, { nil: undefined }),
  count: fc.integer({ min: 1, max: 20 }),
  message: fc.string({ maxLength: 8 }),
}).map((a): Anomaly => (a.ranges && !a.ranges.isEmpty ? a : { kind: a.kind, message: a.message, count: a.count }));

/** One anomaly per kind (as the readers give them). */
const arbList = fc.uniqueArray(arbAnomaly, { selector: (a) => a.kind, maxLength: KINDS.length });

describe('relink guest-filesystems: what composing adds', () => {
  it('anomalies the candidate already has are never held against it, whatever the child holds', () => {
    fc.assert(fc.property(arbList, arbRanges, (list, held) => {
      expect(introducedBy(list, list, held)).toEqual({ introduced: [], childOwn: [] });
    }), { numRuns: RUNS });
  });

  it('by bytes: a kind is introduced exactly when the composed view has bytes of it the candidate lacks, and those bytes are counted', () => {
    fc.assert(fc.property(fc.constantFrom(...KINDS), arbRanges, arbRanges, arbRanges, (kind, cand, extra, held) => {
      fc.pre(!cand.isEmpty);
      const composed = cand.union(extra);
      const r = introducedBy([{ kind, message: 'c', ranges: composed, count: 1 }], [{ kind, message: 'c', ranges: cand, count: 1 }], held);
      const want = composed.subtract(cand).bytes;
      expect(r.introduced).toEqual(want > 0 ? [{ kind, bytes: want, message: 'c' }] : []);
    }), { numRuns: RUNS });
  });

  it('by count where no bytes are given: more cases than the candidate has are introduced, as many or fewer are not', () => {
    fc.assert(fc.property(fc.constantFrom(...KINDS), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 50 }), arbRanges, (kind, a, b, held) => {
      const r = introducedBy([{ kind, message: 'x', count: a }], [{ kind, message: 'y', count: b }], held);
      expect(r.introduced.length).toBe(a > b ? 1 : 0);
    }), { numRuns: RUNS });
  });

  it('torn records count against the candidate exactly when one of them is torn only in the composed view and mixes the child\'s sectors with the candidate\'s; the rest of the newly torn bytes are the child\'s own', () => {
    // 64 records of 2 sectors: each torn in the candidate already, newly torn, or whole; the child holds some sectors.
    const arbScene = fc.array(fc.record({ state: fc.constantFrom('whole', 'candidate', 'new'), held: fc.constantFrom(0, 1, 2, 3) }), { minLength: 64, maxLength: 64 })
      // A record torn only in the composed view has at least one of its sectors from the child (else it would read as the candidate's).
      .map((rs) => rs.map((r) => (r.state === 'new' && r.held === 0 ? { ...r, held: 1 } : r)));
    fc.assert(fc.property(arbScene, (recs) => {
      const pairs = (pick: (r: { state: string; held: number }) => boolean) => recs.flatMap((r, i) => (pick(r) ? [[i * RECORD, (i + 1) * RECORD] as [number, number]] : []));
      const heldPairs = recs.flatMap((r, i) => [...(r.held & 1 ? [[i * RECORD, i * RECORD + SECTOR] as [number, number]] : []), ...(r.held & 2 ? [[i * RECORD + SECTOR, (i + 1) * RECORD] as [number, number]] : [])]);
      const candTorn = RangeSet.from(pairs((r) => r.state === 'candidate'));
      const composedTorn = candTorn.union(RangeSet.from(pairs((r) => r.state === 'new')));
      const res = introducedBy(
        composedTorn.isEmpty ? [] : [{ kind: 'torn-record', message: 't', ranges: composedTorn }],
        candTorn.isEmpty ? [] : [{ kind: 'torn-record', message: 't', ranges: candTorn }],
        RangeSet.from(heldPairs),
      );
      const seam = recs.some((r) => r.state === 'new' && r.held !== 3);
      expect(res.introduced.length).toBe(seam ? 1 : 0);
      const newBytes = recs.filter((r) => r.state === 'new').length * RECORD;
      const counted = [...res.introduced, ...res.childOwn].reduce((n, a) => n + (a.bytes ?? 0), 0);
      expect(counted).toBe(newBytes);
      if (!seam) expect(res.childOwn.reduce((n, a) => n + (a.bytes ?? 0), 0)).toBe(newBytes);
    }), { numRuns: RUNS });
  });
});
