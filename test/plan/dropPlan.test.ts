/**
 * The drop plan (pure): what each partition's facts allow to drop, the gates,
 * the refusals of --drop, and the planner's index (cutting planned sectors
 * out of source pieces, attributing sectors to partitions).
 */
import { describe, expect, it } from 'vitest';
import { RangeSet } from '../../src/guest/ranges.js';
import { planDrops, refuseFile, type PartitionFacts, type SpecialFile } from '../../src/plan/dropPlan.js';
import { DropIndex, DropTally } from '../../src/plan/dropIndex.js';

const clean = { state: 'clean' as const, reasons: [] };

function fat(over: Partial<PartitionFacts> = {}): PartitionFacts {
  return {
    index: 1, start: 63 * 512, size: 1 << 20, fs: 'fat16', label: null, error: null, state: clean,
    clusterSize: 2048, clusterArea: { start: 8192, end: 8192 + 400 * 2048 },
    free: RangeSet.from([[8192 + 10 * 2048, 8192 + 20 * 2048], [8192 + 399 * 2048, 8192 + 400 * 2048]]),
    metadata: RangeSet.of(0, 8192), anomalies: [], special: {}, ...over,
  };
}

function special(over: Partial<SpecialFile> = {}): SpecialFile {
  return { path: 'pagefile.sys', size: 100_000, data: RangeSet.of(8192 + 100 * 2048, 8192 + 150 * 2048), head: new Uint8Array(4096), headAt: 8192 + 100 * 2048, ...over };
}

describe('planDrops', () => {
  it('free clusters of a clean volume, shifted onto the disk; metadata and the area outside the clusters never', () => {
    const f = fat({ free: RangeSet.from([[8192 + 10 * 2048, 8192 + 20 * 2048], [4096, 8192 + 2048], [8192 + 399 * 2048, 8192 + 401 * 2048]]) });
    const p = planDrops([f], []).partitions[0];
    expect(p).toMatchObject({ status: 'planned', reason: null, refused: [] });
    expect(p.ranges.freeSpace!.toArray()).toEqual([
      [f.start + 8192, f.start + 8192 + 2048],
      [f.start + 8192 + 10 * 2048, f.start + 8192 + 20 * 2048],
      [f.start + 8192 + 399 * 2048, f.start + 8192 + 400 * 2048],
    ]);
  });

  it('only whole sectors: a free range that does not cover a sector drops none of it', () => {
    const f = fat({ start: 0, free: RangeSet.of(8192 + 100, 8192 + 2000), clusterArea: { start: 0, end: 1 << 20 }, metadata: RangeSet.EMPTY });
    expect(planDrops([f], []).partitions[0].ranges.freeSpace!.toArray()).toEqual([[8704, 9728]]);
  });

  it('never outside the partition, never in the tables, never twice when partitions overlap', () => {
    const a = fat({ index: 1, start: 0, size: 1 << 20, clusterArea: { start: 0, end: 1 << 20 }, free: RangeSet.of(0, 1 << 20), metadata: RangeSet.EMPTY });
    const b = fat({ index: 2, start: 1 << 19, size: 1 << 20, clusterArea: { start: 0, end: 1 << 20 }, free: RangeSet.of(0, 2 << 20), metadata: RangeSet.EMPTY });
    const plan = planDrops([a, b], [], RangeSet.of(0, 512));
    expect(plan.partitions[0].ranges.freeSpace!.toArray()).toEqual([[512, 1 << 20]]);
    expect(plan.partitions[1].ranges.freeSpace!.toArray()).toEqual([[1 << 20, (1 << 19) + (1 << 20)]]);
  });

  it('gates: a state other than clean, an untrustworthy free map, a read error, an unknown file system', () => {
    const cases: Array<[Partial<PartitionFacts>, RegExp]> = [
      [{ state: { state: 'dirty', reasons: ['the dirty bit is set'] } }, /^dirty: the dirty bit is set$/],
      [{ state: { state: 'hibernated', reasons: ['hiberfil.sys holds a hibernation image'] } }, /^hibernated: /],
      [{ state: { state: 'unclean-log', reasons: ['$LogFile'] } }, /^unclean-log: /],
      [{ state: { state: 'needs-recovery', reasons: ['journal'] } }, /^needs-recovery: /],
      [{ anomalies: [{ kind: 'owned-but-free', message: '4096 bytes…' }] }, /free map disagrees.*owned-but-free: 4096 bytes/],
      [{ anomalies: [{ kind: 'double-owned', message: 'x' }] }, /double-owned/],
      [{ anomalies: [{ kind: 'fat-mismatch', message: 'x' }] }, /fat-mismatch/],
      [{ error: 'partition 1 (fat): boot sector: bad' }, /^cannot be read: partition 1/],
      [{ fs: 'unknown', name: 'BitLocker', free: undefined }, /file system not understood \(BitLocker\)/],
    ];
    for (const [over, reason] of cases) {
      const p = planDrops([fat({ ...over, special: { pagefile: special() } })], ['pagefile']).partitions[0];
      expect(p.status).toBe('skipped');
      expect(p.reason).toMatch(reason);
      expect(p.ranges).toEqual({});
    }
    // Benign anomalies (an orphan, unclaimed clusters) do not stop it.
    expect(planDrops([fat({ anomalies: [{ kind: 'orphan', message: 'x' }, { kind: 'unowned-allocated', message: 'y' }] })], []).partitions[0].status).toBe('planned');
    // The opted-in drop is refused in a gated partition, with the gate's reason.
    const g = planDrops([fat({ state: { state: 'dirty', reasons: ['d'] }, special: { pagefile: special() } })], ['pagefile']).partitions[0];
    expect(g.refused).toEqual([{ drop: 'pagefile', reason: 'dirty: d' }]);
  });

  it('--drop pagefile: the file\'s clusters but its first 4 KiB; nothing without the flag', () => {
    const f = fat({ special: { pagefile: special() } });
    expect(planDrops([f], []).partitions[0].ranges.pagefile).toBeUndefined();
    const p = planDrops([f], ['pagefile']).partitions[0];
    expect(p.ranges.pagefile!.toArray()).toEqual([[f.start + 8192 + 102 * 2048, f.start + 8192 + 150 * 2048]]);
  });

  it('swap: the pages after the header page, only with --drop swap', () => {
    const s: PartitionFacts = {
      index: 2, start: 1 << 20, size: 1 << 20, fs: 'swap', label: null, error: null, state: clean, clusterSize: 4096,
      clusterArea: { start: 0, end: 200 * 4096 }, free: RangeSet.EMPTY, metadata: RangeSet.of(0, 4096), anomalies: [],
    };
    expect(planDrops([s], []).partitions[0]).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/--drop swap/) });
    expect(planDrops([s], ['swap']).partitions[0].ranges.swap!.toArray()).toEqual([[(1 << 20) + 4096, (1 << 20) + 200 * 4096]]);
    const h = planDrops([{ ...s, state: { state: 'hibernated', reasons: ['suspend image'] } }], ['swap']).partitions[0];
    expect(h).toMatchObject({ status: 'skipped', refused: [{ drop: 'swap', reason: 'hibernated: suspend image' }] });
  });
});

describe('refuseFile', () => {
  const head = (s: string) => {
    const b = new Uint8Array(4096);
    for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
    return b;
  };
  it('a pending crash dump, a hibernation image, a header that cannot be located', () => {
    expect(refuseFile('pagefile', special({ head: head('PAGEDUMP') }))).toMatch(/crash dump.*PAGEDUMP/);
    expect(refuseFile('swapfile', special({ head: head('PAGEDU64') }))).toMatch(/swapfile\.sys holds a crash dump/);
    expect(refuseFile('hiberfil', special({ head: head('hibr') }))).toMatch(/hibernation image \("hibr"/);
    expect(refuseFile('hiberfil', special({ head: head('HIBR') }))).toMatch(/Fast Startup/);
    expect(refuseFile('hiberfil', special({ size: 100 }))).toMatch(/shorter than a hibernation header/);
    expect(refuseFile('pagefile', special({ headAt: null }))).toMatch(/could not be established/);
    expect(refuseFile('hiberfil', special({ head: head('wake') }))).toBeNull();
    expect(refuseFile('pagefile', special())).toBeNull();
  });
});

describe('DropIndex', () => {
  const plan = planDrops([
    fat({ index: 1, start: 0, size: 64 * 512, clusterArea: { start: 0, end: 64 * 512 }, free: RangeSet.from([[8 * 512, 16 * 512], [40 * 512, 48 * 512]]), metadata: RangeSet.EMPTY }),
    fat({ index: 2, start: 100 * 512, size: 64 * 512, clusterArea: { start: 0, end: 64 * 512 }, free: RangeSet.of(0, 4 * 512), metadata: RangeSet.EMPTY }),
  ], []);

  it('cuts planned sectors out of source pieces (file offsets follow), tallied by reason and partition', () => {
    const idx = new DropIndex(plan);
    expect(idx.sectors).toBe(20);
    const tally = new DropTally(idx.slots);
    const a = idx.cut([{ sector: 0, count: 50, layer: 0, fileOffset: 1000 }], tally);
    expect(a.removed).toBe(16);
    expect(a.pieces).toEqual([
      { sector: 0, count: 8, layer: 0, fileOffset: 1000 },
      { sector: 16, count: 24, layer: 0, fileOffset: 1000 + 16 * 512 },
      { sector: 48, count: 2, layer: 0, fileOffset: 1000 + 48 * 512 },
    ]);
    const b = idx.cut([{ sector: 98, count: 4, layer: 0, fileOffset: 0 }, { sector: 102, count: 10, layer: -1, fileOffset: 0 }], tally);
    expect(b.removed).toBe(4);
    expect(b.pieces).toEqual([{ sector: 98, count: 2, layer: 0, fileOffset: 0 }, { sector: 104, count: 8, layer: -1, fileOffset: 0 }]);
    expect(tally.get('freeSpace', 0)).toBe(16);
    expect(tally.get('freeSpace', 1)).toBe(4);
    expect(tally.get('freeSpace')).toBe(20);
    expect(tally.planned()).toBe(20);
  });

  it('slot runs: each sector to its partition, the rest to the last slot (outside)', () => {
    const idx = new DropIndex(plan);
    expect(idx.slotRuns(60, 50)).toEqual([60, 4, 0, 64, 36, 2, 100, 10, 1]);
    expect(idx.slotRuns(10, 5)).toEqual([10, 5, 0]);
    expect(idx.slotRuns(200, 5)).toEqual([200, 5, 2]);
  });
});
