/**
 * compact --free-space --drop: the content of pagefile.sys, swapfile.sys and
 * hiberfil.sys (here on a FAT16 volume, where Windows may keep a pagefile
 * too) and a Linux swap area (mkswap) are dropped from the child, their
 * first 4 KiB (the header) kept; a pagefile holding a crash dump and a
 * hiberfil holding a hibernation image are refused, with the reason. The
 * oracles: Sleuth Kit places the files' clusters, mtools reads every other
 * file, fsck.fat checks the volume; the view changes nowhere else.
 */
import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compact } from '../../src/ops/compact.js';
import { RangeSet, RangeSetBuilder } from '../../src/guest/ranges.js';
import { chainFromImages, extract, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_SFDISK, HAVE_TSK, run } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { drive, fsckFat, HAVE_FSCK_FAT, mkfat, mt, tskClusters, tskFiles, tskFree, tskLayout } from '../guest/fatTools.js';
import { heldBytes, makeDisk, noise, rawOf, step } from '../helpers/freeSpace.js';
import { spawnSync } from 'node:child_process';

const HAVE_MKSWAP = spawnSync('mkswap', ['--version'], { stdio: 'ignore' }).error === undefined;
const HAVE = HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_SFDISK && HAVE_TSK && HAVE_FSCK_FAT && HAVE_MKSWAP;

const FAT_START = 2048;
const FAT_SECTORS = 24 * 2048;
const SWAP_START = FAT_START + FAT_SECTORS;
const SWAP_SECTORS = 8 * 2048;
const DISK = (SWAP_START + SWAP_SECTORS + 2048) * 512;

function local(dir: string, name: string, data: Uint8Array): string {
  const f = path.join(dir, name);
  writeFileSync(f, data);
  return f;
}

function withHead(data: Buffer, head: string): Buffer {
  const b = Buffer.from(data);
  b.write(head, 0, 'latin1');
  return b;
}

/** Overwrites bytes of an image. */
function patch(img: string, at: number, data: Uint8Array): void {
  const fd = openSync(img, 'r+');
  try {
    writeSync(fd, data, 0, data.length, at);
  } finally {
    closeSync(fd);
  }
}

function readAt(img: string, at: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync(img, 'r');
  try {
    readSync(fd, b, 0, n, at);
  } finally {
    closeSync(fd);
  }
  return b;
}

/** Disk bytes of a root file's clusters, as Sleuth Kit lists them. */
function clustersOfFile(img: string, name: string): RangeSet {
  const files = tskFiles(img, FAT_START);
  const layout = tskLayout(img, FAT_START);
  const cs = layout.sectorsPerCluster * 512;
  const b = new RangeSetBuilder();
  for (const c of tskClusters(img, files.get(name)!.inode, layout, FAT_START)) {
    const at = FAT_START * 512 + layout.clusterAreaStartSector * 512 + (c - 2) * cs;
    b.add(at, at + cs);
  }
  return b.build();
}

function changedBytes(a: string, b: string): RangeSet {
  const x = readAt(a, 0, DISK);
  const y = readAt(b, 0, DISK);
  const out: Array<[number, number]> = [];
  for (let o = 0; o < DISK; o += 512) if (x.compare(y, o, o + 512, o, o + 512) !== 0) out.push([o, o + 512]);
  return RangeSet.from(out);
}

interface Built {
  dir: string;
  leaf: string;
  /** Guest view before, as a raw image. */
  before: string;
}

/** A disk with a FAT16 volume holding the three Windows files and other files, and a swap partition; a child that rewrote all of them. */
async function build(heads: { pagefile?: string; hiberfil?: string } = {}): Promise<Built> {
  const dir = tempDir();
  const vol = mkfat(path.join(dir, 'vol.img'), { fat: 16, bytes: FAT_SECTORS * 512, sectorsPerCluster: 4 });
  const swap = path.join(dir, 'swap.img');
  writeFileSync(swap, Buffer.alloc(SWAP_SECTORS * 512));
  run('mkswap', ['-q', swap]);
  const base = makeDisk(path.join(dir, 'base.img'), {
    size: DISK, label: 'dos',
    parts: [{ start: FAT_START, sectors: FAT_SECTORS, type: '06', image: vol }, { start: SWAP_START, sectors: SWAP_SECTORS, type: '82', image: swap }],
  });
  const d0 = drive(base, FAT_START * 512);
  mt.mcopy(d0, local(dir, 'keep.bin', noise(50_000, 1)), 'keep.bin');
  mt.mcopy(d0, local(dir, 'p0', noise(2_000_000, 2)), 'pagefile.sys');
  mt.mcopy(d0, local(dir, 'h0', withHead(noise(1_000_000, 3), 'wake')), 'hiberfil.sys');
  mt.mcopy(d0, local(dir, 's0', noise(300_000, 4)), 'swapfile.sys');
  patch(base, SWAP_START * 512 + 4096, noise(3 * 1024 * 1024, 5));
  const child = step(base, dir, 'child.img');
  const d1 = drive(child, FAT_START * 512);
  // Rewritten in place by the guest: same size, new content (Windows rewrites them as it runs).
  const over = (local: string, name: string) => run('mcopy', ['-o', '-i', d1, local, `::/${name}`]);
  over(local(dir, 'p1', withHead(noise(2_000_000, 12), heads.pagefile ?? '\0\0\0\0\0\0\0\0')), 'pagefile.sys');
  over(local(dir, 'h1', withHead(noise(1_000_000, 13), heads.hiberfil ?? 'wake')), 'hiberfil.sys');
  over(local(dir, 's1', noise(300_000, 14)), 'swapfile.sys');
  mt.mcopy(d1, local(dir, 'new.bin', noise(70_000, 15)), 'new.bin');
  patch(child, SWAP_START * 512 + 4096, noise(3 * 1024 * 1024, 16));
  const layers = await chainFromImages(dir, [base, child]);
  const leaf = layers[1].path;
  return { dir, leaf, before: await rawOf(leaf, path.join(dir, 'before.raw')) };
}

describe.skipIf(!HAVE)('compact --free-space --drop (pagefile, swapfile, hiberfil, swap)', () => {
  it('drops the files\' and the swap area\'s content, keeps their first 4 KiB, changes nothing else', async () => {
    const b = await build();
    const pagefile = clustersOfFile(b.before, 'pagefile.sys');
    const hiberfil = clustersOfFile(b.before, 'hiberfil.sys');
    const swapfile = clustersOfFile(b.before, 'swapfile.sys');
    const free = tskFree(b.before, FAT_START).shift(FAT_START * 512);
    const swapPages = RangeSet.of((SWAP_START * 512) + 4096, (SWAP_START + SWAP_SECTORS) * 512);
    const held0 = await heldBytes(b.leaf);
    const drop = ['pagefile', 'swapfile', 'hiberfil', 'swap'] as const;
    const dry = await compact(b.leaf, { freeSpace: true, drop: [...drop], dryRun: true, threads: 1 });
    const r = await compact(b.leaf, { freeSpace: true, drop: [...drop], threads: 1 });
    expect(r.freeSpace).toEqual(dry.freeSpace);
    expect(r.reclaimedBytes).toBe(dry.reclaimableBytes);
    const [fat, swap] = r.freeSpace!.partitions;
    expect(fat).toMatchObject({ fs: 'fat16', status: 'planned', refused: [] });
    expect(swap).toMatchObject({ fs: 'swap', status: 'planned', refused: [] });
    // Each reason counts exactly the child's sectors in that file (its first 4 KiB excepted) or area.
    const held = (set: RangeSet) => held0.intersectBytes(set);
    const firstPage = (set: RangeSet) => RangeSet.of(set.first, set.first + 4096);
    expect(fat.bytes.pagefile).toBe(held(pagefile) - held(firstPage(pagefile)));
    expect(fat.bytes.hiberfil).toBe(held(hiberfil) - held(firstPage(hiberfil)));
    expect(fat.bytes.swapfile).toBe(held(swapfile) - held(firstPage(swapfile)));
    expect(fat.bytes.pagefile).toBeGreaterThan(1_900_000);
    expect(swap.bytes.swap).toBe(held(swapPages));
    expect(swap.bytes.swap).toBeGreaterThan(3_000_000);

    const after = await rawOf(b.leaf, path.join(b.dir, 'after.raw'));
    const changed = changedBytes(b.before, after);
    const allowed = free.union(pagefile).union(hiberfil).union(swapfile).union(swapPages)
      .subtract(firstPage(pagefile)).subtract(firstPage(hiberfil)).subtract(firstPage(swapfile));
    expect(changed.subtract(allowed).isEmpty).toBe(true);
    expect(changed.intersectBytes(pagefile)).toBeGreaterThan(1_000_000);
    // The headers read as before; every other file reads as before; the volume checks clean.
    for (const f of [pagefile, hiberfil, swapfile]) expect(readAt(after, f.first, 4096).equals(readAt(b.before, f.first, 4096))).toBe(true);
    expect(readAt(after, SWAP_START * 512, 4096).equals(readAt(b.before, SWAP_START * 512, 4096))).toBe(true);
    for (const name of ['keep.bin', 'new.bin']) {
      expect(Buffer.from(mt.cat(drive(after, FAT_START * 512), name)).equals(Buffer.from(mt.cat(drive(b.before, FAT_START * 512), name)))).toBe(true);
    }
    const fsck = fsckFat(extract(after, FAT_START * 512, FAT_SECTORS * 512, path.join(b.dir, 'fat.img')));
    expect(fsck.status, fsck.output).toBe(0);
    expect(run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', extract(after, SWAP_START * 512, SWAP_SECTORS * 512, path.join(b.dir, 'swap.img'))]).trim()).toBe('swap');
  });

  it('without --drop the files and the swap area stay; a pending crash dump and a hibernation image are refused with the reason', async () => {
    const b = await build({ pagefile: 'PAGEDU64', hiberfil: 'hibr' });
    const plain = await compact(b.leaf, { freeSpace: true, dryRun: true, threads: 1 });
    const [fat0, swap0] = plain.freeSpace!.partitions;
    expect(fat0.bytes).toMatchObject({ pagefile: 0, hiberfil: 0, swapfile: 0 });
    expect(swap0).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/--drop swap/) });
    const r = await compact(b.leaf, { freeSpace: true, drop: ['pagefile', 'hiberfil', 'swapfile'], dryRun: true, threads: 1 });
    const fat = r.freeSpace!.partitions[0];
    expect(fat.refused).toEqual([
      { drop: 'pagefile', reason: expect.stringMatching(/pagefile\.sys holds a crash dump Windows has not saved yet \(PAGEDU64\)/) },
      { drop: 'hiberfil', reason: expect.stringMatching(/hiberfil\.sys holds a hibernation image \("hibr"/) },
    ]);
    expect(fat.bytes.pagefile).toBe(0);
    expect(fat.bytes.hiberfil).toBe(0);
    expect(fat.bytes.swapfile).toBeGreaterThan(200_000);
  });
});
