/**
 * maintain --free-space over a family base <- mid <- top whose guest (a FAT16
 * volume made by mkfs.fat, written and deleted in with mtools) freed space in
 * both differencing layers: only the leaf is compacted with --free-space (a
 * disk with children keeps its view exactly, so its children's stay valid),
 * the figures by reason are compact's own dry-run figures, and the metrics
 * carry them with a reason label.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compact } from '../../src/ops/compact.js';
import { maintain } from '../../src/ops/maintain.js';
import { METRIC_NAMES } from '../../src/maintain/metrics.js';
import { VhdToolError } from '../../src/errors.js';
import { chainFromImages, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_SFDISK } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { contentHash } from '../helpers/hash.js';
import { drive, mkfat, mt } from '../guest/fatTools.js';
import { makeDisk, noise, rawOf, step } from '../helpers/freeSpace.js';
import { parsePrometheus } from './fixture.js';

const HAVE = HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_SFDISK;
const START = 2048;

describe.skipIf(!HAVE)('maintain --free-space', () => {
  it('drops free space from the leaf only, reports it by reason, and keeps every view the chain had', async () => {
    const work = tempDir();
    const root = tempDir();
    const vol = mkfat(path.join(work, 'vol.img'), { fat: 16, bytes: 16 * 1024 * 1024, sectorsPerCluster: 4 });
    const base = makeDisk(path.join(work, 'base.img'), { size: 18 * 1024 * 1024, label: 'dos', parts: [{ start: START, sectors: 16 * 2048, type: '06', image: vol }] });
    const file = (name: string, bytes: number, seed: number) => {
      const f = path.join(work, name);
      writeFileSync(f, noise(bytes, seed));
      return f;
    };
    mt.mcopy(drive(base, START * 512), file('a.bin', 300_000, 1), 'a.bin');
    const mid = step(base, work, 'mid.img');
    mt.mcopy(drive(mid, START * 512), file('b.bin', 2_000_000, 2), 'b.bin');
    mt.mcopy(drive(mid, START * 512), file('c.bin', 100_000, 3), 'c.bin');
    mt.mdel(drive(mid, START * 512), 'b.bin');
    const top = step(mid, work, 'top.img');
    mt.mcopy(drive(top, START * 512), file('d.bin', 3_000_000, 4), 'd.bin');
    mt.mcopy(drive(top, START * 512), file('e.bin', 200_000, 5), 'e.bin');
    mt.mdel(drive(top, START * 512), 'd.bin', 'a.bin');
    const [, midVhd, topVhd] = await chainFromImages(root, [base, mid, top], ['base.vhd', 'mid.vhd', 'top.vhd']);

    // compact alone refuses --free-space on a disk whose child lies beside it.
    const refused = await compact(midVhd.path, { freeSpace: true, dryRun: true, threads: 0 }).then(() => null, (e: unknown) => e);
    expect(refused).toBeInstanceOf(VhdToolError);
    expect((refused as VhdToolError).code).toBe('REFUSED');
    expect((refused as VhdToolError).message).toMatch(/is the parent of top\.vhd/);

    const expectTop = await compact(topVhd.path, { freeSpace: true, dryRun: true, threads: 0, noChildCheck: true });
    const expectMid = await compact(midVhd.path, { dryRun: true, threads: 0 });
    expect(expectTop.freeSpace!.bytes.freeSpace).toBeGreaterThan(2_900_000);
    const midView = await contentHash(midVhd.path);
    const topFiles = mt.list(drive(await rawOf(topVhd.path, path.join(work, 'top0.raw')), START * 512)).sort();

    const metrics = path.join(work, 'vhdtool.prom');
    const dry = await maintain([root], { dryRun: true, freeSpace: true, minReclaim: 0, threads: 0 });
    const r = await maintain([root], { freeSpace: true, minReclaim: 0, threads: 0, metricsFile: metrics });
    expect(r.exitCode).toBe(0);
    expect(r.options).toMatchObject({ freeSpace: true, drop: [] });
    const disk = (rep: typeof r, name: string) => rep.chains[0].disks.find((d) => d.path.endsWith(name))!;
    for (const rep of [dry, r]) {
      const t = disk(rep, 'top.vhd');
      expect(t.freeSpace).toMatchObject({ applied: true, reason: null, tableError: null });
      expect(t.freeSpace!.partitions).toEqual(expectTop.freeSpace!.partitions);
      expect(t.droppedBytes).toEqual(expectTop.freeSpace!.bytes);
      expect(t.reclaimableBytes).toBe(expectTop.reclaimableBytes);
      const m = disk(rep, 'mid.vhd');
      expect(m.freeSpace).toMatchObject({ applied: false, reason: expect.stringMatching(/has children/) });
      expect(m.droppedBytes).toMatchObject({ freeSpace: 0, sameAsParent: expectMid.sectors.sameAsParent * 512 });
      expect(rep.summary.droppedBytes).toEqual(rep.chains[0].droppedBytes);
    }
    expect(r.summary.droppedBytes).toEqual(dry.summary.droppedBytes);
    expect(r.summary.droppedBytes.freeSpace).toBe(expectTop.freeSpace!.bytes.freeSpace);
    const act = r.chains[0].actions.find((a) => a.action === 'compact' && a.disk.endsWith('top.vhd'))!;
    expect(act.droppedBytes).toEqual(expectTop.freeSpace!.bytes);
    expect(act.reclaimedBytes).toBe(expectTop.reclaimableBytes);

    // The parent's view is unchanged (its child reads it), the leaf's files are all there.
    expect(await contentHash(midVhd.path)).toBe(midView);
    expect(mt.list(drive(await rawOf(topVhd.path, path.join(work, 'top1.raw')), START * 512)).sort()).toEqual(topFiles);

    const samples = parsePrometheus(readFileSync(metrics, 'utf8'));
    expect(samples.get(`${METRIC_NAMES.dropped}{shard="0/1",reason="freeSpace"}`)).toBe(r.summary.droppedBytes.freeSpace);
    expect(samples.get(`${METRIC_NAMES.dropped}{shard="0/1",reason="sameAsParent"}`)).toBe(r.summary.droppedBytes.sameAsParent);
    expect(samples.get(`${METRIC_NAMES.dropped}{shard="0/1",reason="pagefile"}`)).toBe(0);
    expect(samples.get(`${METRIC_NAMES.reclaimed}{shard="0/1"}`)).toBe(r.summary.bytesReclaimed);
  });

  it('--drop without --free-space is bad usage', async () => {
    const r = await maintain([tempDir()], { drop: ['pagefile'] });
    expect(r.fatal).toMatchObject({ code: 'USAGE' });
  });
});
