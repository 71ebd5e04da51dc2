/**
 * Disks without a partition table whose first sector holds a file system
 * ("superfloppies"), made by mkfs.fat, mkntfs, mkfs.ext4 and mkswap on the
 * whole image; and the cases where a FAT boot sector and an MBR must be told
 * apart (both end in 55 AA). util-linux blkid -p is the independent reader:
 * it reports PTTYPE for a partition table and TYPE for a whole-disk file
 * system.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { classify, readPartitionTable } from '../../src/guest/partitions/index.js';
import { bufferSource } from '../../src/guest/source.js';
import { HAVE_MKFS_EXT4, HAVE_MKFS_FAT, HAVE_MKNTFS, HAVE_SFDISK, blankImage, partition, run } from '../helpers/guest.js';
import { mbrSector } from '../helpers/tables.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const HAVE_MKSWAP = spawnSync('mkswap', ['--version'], { stdio: 'ignore' }).error === undefined;
const HAVE_BLKID = spawnSync('blkid', ['--version'], { stdio: 'ignore' }).error === undefined;

function blkid(file: string): Record<string, string> {
  const r = spawnSync('blkid', ['-p', '-o', 'export', file], { encoding: 'utf8' });
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

async function table(file: string) {
  return readPartitionTable(bufferSource(new Uint8Array(readFileSync(file))));
}

function made(name: string, bytes: number, cmd: string, args: string[]): string {
  const f = blankImage(path.join(tempDir(), name), bytes);
  run(cmd, [...args, f]);
  return f;
}

const superfloppies: Array<[string, boolean, () => string, string]> = [
  ['FAT12 (mkfs.fat)', HAVE_MKFS_FAT, () => made('f12.img', 8 * MiB, 'mkfs.fat', ['-F', '12']), 'vfat'],
  ['FAT16 (mkfs.fat)', HAVE_MKFS_FAT, () => made('f16.img', 32 * MiB, 'mkfs.fat', ['-F', '16']), 'vfat'],
  ['FAT32 (mkfs.fat)', HAVE_MKFS_FAT, () => made('f32.img', 40 * MiB, 'mkfs.fat', ['-F', '32', '-s', '1']), 'vfat'],
  ['FAT with the fake MBR of mkfs.fat --mbr=y', HAVE_MKFS_FAT, () => made('fm.img', 8 * MiB, 'mkfs.fat', ['--mbr=y']), 'vfat'],
  ['NTFS (mkntfs)', HAVE_MKNTFS, () => made('n.img', 8 * MiB, 'mkntfs', ['-F', '-q']), 'ntfs'],
  ['ext4 (mkfs.ext4)', HAVE_MKFS_EXT4, () => made('e.img', 16 * MiB, 'mkfs.ext4', ['-q']), 'ext4'],
  ['Linux swap (mkswap)', HAVE_MKSWAP, () => made('s.img', 8 * MiB, 'mkswap', ['-q']), 'swap'],
];

describe('superfloppies: a file system on the whole disk is one partition, scheme none', () => {
  for (const [what, have, make, type] of superfloppies) {
    it.skipIf(!have)(what, async () => {
      const f = make();
      const t = await table(f);
      const size = readFileSync(f).length;
      expect(t).toMatchObject({ scheme: 'none', warnings: [] });
      expect(t.partitions).toEqual([{ index: 1, scheme: 'none', start: 0, size, type: 'none', typeName: null }]);
      expect(t.tables.isEmpty).toBe(true);
      if (HAVE_BLKID) {
        const b = blkid(f);
        expect(b.TYPE).toBe(type);
        expect(b.PTTYPE).toBeUndefined();
      }
    });
  }

  it.skipIf(!HAVE_MKFS_EXT4)('an ext superblock behind an empty DOS table is a superfloppy', async () => {
    const f = made('e.img', 16 * MiB, 'mkfs.ext4', ['-q']);
    const img = new Uint8Array(readFileSync(f));
    img.set(mbrSector([]), 0);
    const t = await readPartitionTable(bufferSource(img));
    expect(t.scheme).toBe('none');
    expect(t.partitions.length).toBe(1);
  });
});

describe('FAT boot sector or MBR', () => {
  it.skipIf(!HAVE_SFDISK)('an MBR whose boot code starts with a jump (as GRUB\'s does) is still an MBR', async () => {
    const f = blankImage(path.join(tempDir(), 'g.img'), 16 * MiB);
    partition(f, 'label: dos\nstart=2048, size=8192, type=83\n');
    const img = new Uint8Array(readFileSync(f));
    img.set([0xeb, 0x63, 0x90], 0);
    writeFileSync(f, img);
    const t = await table(f);
    expect(t.scheme).toBe('mbr');
    expect(t.partitions.map((p) => p.start)).toEqual([2048 * 512]);
    if (HAVE_BLKID) expect(blkid(f).PTTYPE).toBe('dos');
  });

  it.skipIf(!HAVE_MKFS_FAT)('a FAT boot sector that also carries a sound table is read as the table, with a warning', async () => {
    const f = made('ft.img', 16 * MiB, 'mkfs.fat', ['-F', '12']);
    const img = new Uint8Array(readFileSync(f));
    img.set(mbrSector([{ type: 0x83, lba: 2048, sectors: 4096 }]).subarray(446, 510), 446);
    const t = await readPartitionTable(bufferSource(img));
    expect(t.scheme).toBe('mbr');
    expect(t.partitions.length).toBe(1);
    expect(t.warnings.join()).toMatch(/both a FAT boot parameter block and a partition table/);
  });

  it.skipIf(!HAVE_MKFS_FAT)('a FAT boot sector whose table area passes for a table but lies is read as the FAT volume, with a warning', async () => {
    const f = made('fl.img', 16 * MiB, 'mkfs.fat', ['-F', '12']);
    const img = new Uint8Array(readFileSync(f));
    img.set(mbrSector([{ type: 0x83, lba: 2048, sectors: 999999 }]).subarray(446, 510), 446);
    const t = await readPartitionTable(bufferSource(img));
    expect(t.scheme).toBe('none');
    expect(t.partitions.map((p) => [p.start, p.size])).toEqual([[0, 16 * MiB]]);
    expect(t.warnings).toHaveLength(1);
    expect(t.warnings[0]).toMatch(/FAT boot sector whose table area is no sound partition table \(MBR: partition 1 .* runs past the end/);
  });

  it('classify: the order of the rules', () => {
    const blank = new Uint8Array(8192);
    expect(classify(blank)).toMatchObject({ layout: 'none', warnings: [] });
    const mbr = new Uint8Array(8192);
    mbr.set(mbrSector([{ type: 0x07, lba: 63, sectors: 100 }]));
    expect(classify(mbr).layout).toBe('mbr');
    mbr.set(mbrSector([{ type: 0xee, lba: 1, sectors: 100 }]));
    expect(classify(mbr).layout).toBe('gpt');
    const ntfs = new Uint8Array(8192);
    ntfs.set(mbrSector([{ type: 0x07, lba: 63, sectors: 100 }]));
    ntfs.set(new TextEncoder().encode('NTFS    '), 3);
    expect(classify(ntfs)).toMatchObject({ layout: 'superfloppy', signature: { family: 'ntfs' } });
    const togo = new Uint8Array(8192);
    togo.set([0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a, 0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01], 424);
    expect(classify(togo)).toMatchObject({ layout: 'superfloppy', signature: { name: 'BitLocker' } });
  });
});
