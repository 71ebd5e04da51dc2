/**
 * The command line of compact --free-space and --drop: usage errors, the
 * human report (per partition, skipped partitions with their reason, the
 * blocks kept for used sectors) and the JSON shape.
 */
import * as path from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chainFromImages, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_SFDISK } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { drive, mkfat, mt } from '../guest/fatTools.js';
import { makeDisk, noise, step } from '../helpers/freeSpace.js';
import { hasStackTrace, runCli } from '../helpers/cliRun.js';

describe('vhdtool compact --free-space (command line)', () => {
  it('--drop needs --free-space, and takes only known names (exit 2, one line)', async () => {
    const a = await runCli(['compact', 'x.vhd', '--drop', 'pagefile']);
    expect(a.code).toBe(2);
    expect(a.err.join('\n')).toMatch(/--drop needs --free-space/);
    const b = await runCli(['compact', 'x.vhd', '--free-space', '--drop', 'pagefile,swp']);
    expect(b.code).toBe(2);
    expect(b.err.join('\n')).toMatch(/unknown drop "swp"; one or more of pagefile, swapfile, hiberfil, swap/);
    const c = await runCli(['maintain', tempDir(), '--drop', 'swap']);
    expect(c.code).toBe(2);
    expect(hasStackTrace([...a.err, ...b.err, ...c.err])).toBe(false);
  });

  it.skipIf(!(HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_SFDISK))('reports by partition in words and in JSON', async () => {
    const dir = tempDir();
    const vol = mkfat(path.join(dir, 'vol.img'), { fat: 16, bytes: 8 * 1024 * 1024, sectorsPerCluster: 2 });
    const base = makeDisk(path.join(dir, 'base.img'), {
      size: 20 * 1024 * 1024, label: 'dos',
      parts: [{ start: 2048, sectors: 8 * 2048, type: '06', image: vol }, { start: 2048 + 8 * 2048, sectors: 8 * 2048, type: '83' }],
    });
    const child = step(base, dir, 'child.img');
    const src = path.join(dir, 'f.bin');
    writeFileSync(src, noise(3_000_000, 1));
    mt.mcopy(drive(child, 2048 * 512), src, 'f.bin');
    writeFileSync(src, noise(5000, 2));
    mt.mcopy(drive(child, 2048 * 512), src, 'g.bin');
    mt.mdel(drive(child, 2048 * 512), 'f.bin');
    const [, leaf] = await chainFromImages(dir, [base, child]);

    const human = await runCli(['compact', leaf.path, '--free-space', '--dry-run', '--threads', '0']);
    expect(human.code).toBe(0);
    const text = human.out.join('\n');
    expect(text).toMatch(/partition 1 \(fat16\): would drop freeSpace 2\.\d\d MiB/);
    expect(text).toMatch(/partition 2 \(unknown\): left as it is: file system not understood \(unrecognised\)/);
    expect(text).toMatch(/would reclaim/);

    const j = await runCli(['compact', leaf.path, '--free-space', '--json', '--threads', '0']);
    expect(j.code).toBe(0);
    const r = JSON.parse(j.out.join('\n'));
    expect(Object.keys(r.freeSpace).sort()).toEqual(['blocksFreed', 'blocksKept', 'bytes', 'drops', 'outside', 'partitions', 'tableError']);
    expect(Object.keys(r.freeSpace.bytes)).toEqual(['sameAsParent', 'zeroOverZero', 'freeSpace', 'pagefile', 'swapfile', 'hiberfil', 'swap']);
    expect(r.freeSpace.partitions.map((p: { index: number; status: string }) => [p.index, p.status])).toEqual([[1, 'planned'], [2, 'skipped']]);
    expect(r.sectors.freeSpace * 512).toBe(r.freeSpace.bytes.freeSpace);
    expect(r.freeSpace.bytes.freeSpace).toBeGreaterThan(2_900_000);
    expect(r.changed).toBe(true);
    // The FAT's and the directory's sectors share blocks with the file kept: those blocks stay, and say why.
    expect(r.freeSpace.blocksKept.count).toBeGreaterThan(0);
    expect(r.freeSpace.blocksKept.usedBytes).toBeGreaterThan(0);
  });
});
