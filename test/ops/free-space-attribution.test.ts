/**
 * The compare kernel's drops attributed by partition: a child that rewrote,
 * unchanged, sectors on both sides of a partition's start (a unit straddling
 * the boundary) counts those before it as outside partitions and those after
 * it in the partition, each as zero over zero or same as the parent by its
 * own bytes; free-space drops are counted where they lie.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compact } from '../../src/ops/compact.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain } from '../../src/synth/build.js';
import { HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_SFDISK } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { drive, mkfat, mt } from '../guest/fatTools.js';
import { makeDisk, noise } from '../helpers/freeSpace.js';

const START = 2048;

describe.skipIf(!(HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_SFDISK))('compact --free-space: drops by partition', () => {
  it('a unit across a partition\'s start: outside and inside counted apart, by each sector\'s bytes', async () => {
    const dir = tempDir();
    const vol = mkfat(path.join(dir, 'vol.img'), { fat: 16, bytes: 8 * 1024 * 1024, sectorsPerCluster: 2 });
    const img = makeDisk(path.join(dir, 'base.img'), { size: 12 * 1024 * 1024, label: 'dos', parts: [{ start: START, sectors: 8 * 2048, type: '06', image: vol }] });
    const src = path.join(dir, 'f.bin');
    writeFileSync(src, noise(100_000, 1));
    mt.mcopy(drive(img, START * 512), src, 'f.bin');
    const base = new Uint8Array(readFileSync(img));
    // The child rewrote sectors 2000-2099 with the same bytes (a guest's whole-region write), and
    // wrote 64 KiB of new data in the volume's last free clusters.
    const same = base.subarray(2000 * 512, 2100 * 512);
    const tail = (START + 8 * 2048 - 128) * 512;
    const [, child] = await writeSynthChain(nodeFileSystem, dir, [
      { type: 'dynamic', virtualSize: base.length, writes: [{ sector: 0, data: base }] },
      { type: 'differencing', virtualSize: base.length, writes: [{ sector: 2000, data: same }, { sector: tail / 512, data: noise(64 * 1024, 2) }] },
    ], ['b.vhd', 'c.vhd']);
    const zeroSector = (s: number) => base.subarray(s * 512, s * 512 + 512).every((x) => x === 0);
    let outZ = 0, outS = 0, inZ = 0, inS = 0;
    for (let s = 2000; s < 2100; s++) {
      const z = zeroSector(s);
      if (s < START) { if (z) outZ++; else outS++; } else if (z) inZ++; else inS++;
    }
    expect(outZ).toBe(48);
    expect(inS).toBeGreaterThan(0);
    const r = await compact(child.path, { freeSpace: true, dryRun: true, threads: 0 });
    const f = r.freeSpace!;
    expect(f.outside).toMatchObject({ zeroOverZero: outZ * 512, sameAsParent: outS * 512, freeSpace: 0 });
    expect(f.partitions[0].bytes).toMatchObject({ zeroOverZero: inZ * 512, sameAsParent: inS * 512, freeSpace: 64 * 1024 });
    expect(f.bytes.sameAsParent).toBe((outS + inS) * 512);
    expect(r.sectors).toMatchObject({ examined: 100 + 128, kept: 0, sameAsParent: outS + inS, zeroOverZero: outZ + inZ, freeSpace: 128 });
    expect(r.blocks).toMatchObject({ before: 2, after: 0, freed: 1, emptied: 1 });
    // The real run re-proves every kernel drop against the parent, and agrees with the dry run.
    const real = await compact(child.path, { freeSpace: true, threads: 0 });
    expect(real.freeSpace).toEqual(f);
    expect(real.reclaimedBytes).toBe(r.reclaimableBytes);
  });
});
