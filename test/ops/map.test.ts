/**
 * map on FAT volumes made by mkfs.fat and mtools, in MBR partitions at
 * sector 63 and at 1 MiB, turned into a chain whose child owns exactly the
 * sectors the guest changed. Every figure is checked against Sleuth Kit
 * (blkls for free space, fls + istat for each file's clusters).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { map, type MapResult } from '../../src/ops/map.js';
import { RangeSet, RangeSetBuilder } from '../../src/guest/ranges.js';
import { mulberry32 } from '../../src/synth/random.js';
import { blankImage, chainFromImages, changedSectors, embed, extract, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_SFDISK, HAVE_TSK, partition, run } from '../helpers/guest.js';
import { drive, mkfat, mt, tskClusters, tskFiles, tskFree, tskLayout } from '../guest/fatTools.js';
import { tempDir } from '../helpers/tmp.js';

const CAN = HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_SFDISK && HAVE_TSK;
const MiB = 1024 * 1024;
const BIN = path.resolve('bin/vhdtool.js');

function randomFile(dir: string, name: string, bytes: number, seed: number): string {
  const rnd = mulberry32(seed);
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = Math.floor(rnd() * 256);
  const p = path.join(dir, name);
  writeFileSync(p, b);
  return p;
}

interface Scenario { dir: string; base: string; child: string; disk: { base: string; child: string }; start: number; size: number }

/** A disk with one FAT16 partition at `startSector`: a base with files, and a child where files were added and deleted. */
function scenario(startSector: number, sectorsPerCluster: number): Scenario {
  const dir = tempDir('vhdtool-map-');
  const diskBytes = 40 * MiB;
  const start = startSector * 512;
  const size = 32 * MiB;
  const base = blankImage(path.join(dir, 'base.img'), diskBytes);
  partition(base, `label: dos\nstart=${startSector}, size=${size / 512}, type=6\n`);
  const part = mkfat(path.join(dir, 'part.img'), { fat: 16, bytes: size, sectorsPerCluster });
  const d = drive(part);
  mt.mmd(d, 'docs', 'docs/old');
  for (let i = 0; i < 6; i++) mt.mcopy(d, randomFile(dir, `f${i}.bin`, 40_000 + i * 9_000, i + 1), `docs/f${i}.bin`);
  mt.mcopy(d, randomFile(dir, 'keep.dat', 300_000, 99), 'keep.dat');
  embed(base, part, start);
  // The guest's changes: new files, one of them deleted again, an old file deleted, one appended.
  for (let i = 0; i < 4; i++) mt.mcopy(d, randomFile(dir, `n${i}.bin`, 120_000 + i * 33_000, 100 + i), `docs/old/n${i}.bin`);
  mt.mcopy(d, randomFile(dir, 'big.tmp', 2_000_000, 7), 'big.tmp');
  mt.mdel(d, 'big.tmp', 'docs/f2.bin');
  const child = path.join(dir, 'child.img');
  copyFileSync(base, child);
  embed(child, part, start);
  // A boot loader's sector in the gap before the partition changes too: outside every partition.
  const fd = Buffer.alloc(512, 0x5a);
  execFileSync('dd', [`of=${child}`, 'bs=512', 'seek=20', 'conv=notrunc', 'status=none'], { input: fd });
  return { dir, base, child, disk: { base: '', child: '' }, start, size };
}

async function chained(s: Scenario): Promise<Scenario> {
  const [b, c] = await chainFromImages(s.dir, [s.base, s.child], ['base.vhd', 'child.vhd']);
  return { ...s, disk: { base: b.path, child: c.path } };
}

/** What Sleuth Kit says each leaf byte of the partition is. */
function oracle(s: Scenario, leaf: RangeSet) {
  const part = extract(s.child, s.start, s.size, path.join(s.dir, 'child-part.img'));
  const layout = tskLayout(part);
  const clusterBytes = layout.sectorsPerCluster * layout.sectorSize;
  const clusterStart = layout.clusterAreaStartSector * layout.sectorSize;
  const free = tskFree(part);
  const files = new Map<string, { data: RangeSet; size: number }>();
  for (const [p, e] of tskFiles(part)) {
    if (e.directory) continue;
    const b = new RangeSetBuilder();
    for (const c of tskClusters(part, e.inode, layout)) b.add(clusterStart + (c - 2) * clusterBytes, clusterStart + (c - 1) * clusterBytes);
    files.set(p, { data: b.build(), size: e.size });
  }
  const local = leaf.clip(s.start, s.start + s.size).shift(-s.start);
  const allFiles = [...files.values()].reduce((u, f) => u.union(f.data), RangeSet.EMPTY);
  const freeLeaf = local.intersect(free);
  const fileLeaf = local.intersect(allFiles).subtract(freeLeaf);
  const perFile = [...files].map(([p, f]) => ({ path: p, leafBytes: f.data.intersectBytes(local), size: f.size }))
    .filter((f) => f.leafBytes > 0).sort((a, b) => b.leafBytes - a.leafBytes || (a.path < b.path ? -1 : 1));
  return { leafBytes: local.bytes, free: freeLeaf.bytes, file: fileLeaf.bytes, meta: local.bytes - freeLeaf.bytes - fileLeaf.bytes, perFile };
}

function check(r: MapResult, s: Scenario, leaf: RangeSet): void {
  const want = oracle(s, leaf);
  expect(r.partitions).toHaveLength(1);
  const p = r.partitions[0];
  expect(p).toMatchObject({ index: 1, scheme: 'mbr', start: s.start, size: s.size, type: '0x06', fileSystem: 'fat16', state: 'clean', error: null });
  expect(p.leafBytes).toBe(want.leafBytes);
  expect(p.leafFreeBytes).toBe(want.free);
  expect(p.leafFileBytes).toBe(want.file);
  expect(p.leafMetadataBytes).toBe(want.meta);
  expect(p.leafFreeBytes).toBeGreaterThan(1_000_000); // big.tmp's clusters, freed in the child
  expect(p.files?.map((f) => ({ ...f, path: f.path.toLowerCase() }))).toEqual(want.perFile.map((f) => ({ ...f, path: f.path.toLowerCase() })));
  expect(r.leafBytes).toBe(leaf.bytes);
  expect(r.outsideBytes).toBe(leaf.bytes - want.leafBytes);
  expect(r.outside).toEqual({ tableBytes: leaf.intersectBytes(RangeSet.of(0, 512)), gapBytes: 512, tailBytes: 0 });
}

describe.skipIf(!CAN)('map on FAT volumes made by the real tools, checked against Sleuth Kit', () => {
  it('a partition at sector 63 (not 4 KiB aligned), 2 KiB clusters: every figure and every file', async () => {
    const s = await chained(scenario(63, 4));
    const leaf = changedSectors(s.base, s.child);
    const r = await map(s.disk.child, { files: true });
    check(r, s, leaf);
    expect(r.partitions[0].alignment).toEqual({ startSector: 63, bitmapAligned: false, blockAligned: false, clustersCrossBlocks: true });
    expect(r.layers.map((l) => l.type)).toEqual(['differencing', 'dynamic']);
    expect(r.layers[0].heldBytes).toBe(leaf.bytes);
  });

  it('a partition at 1 MiB, 512-byte clusters', async () => {
    const s = await chained(scenario(2048, 1));
    const leaf = changedSectors(s.base, s.child);
    const r = await map(s.disk.child, { files: true });
    check(r, s, leaf);
    expect(r.partitions[0].alignment).toEqual({ startSector: 2048, bitmapAligned: true, blockAligned: false, clustersCrossBlocks: false });
  });

  it('the command line: --json --files, --svg draws a picture, and refuses to draw over a disk', async () => {
    const s = await chained(scenario(2048, 8));
    const svg = path.join(s.dir, 'map.svg');
    const out = spawnSync('node', [BIN, 'map', s.disk.child, '--files', '--json', '--svg', svg], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    const r = JSON.parse(out.stdout) as MapResult;
    expect(r.partitions[0].files!.length).toBeGreaterThan(3);
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg [^]*<\/svg>\n$/);
    const human = spawnSync('node', [BIN, 'map', s.disk.child, '--files', '--limit', '2'], { encoding: 'utf8' });
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/partition 1 \(mbr 0x06\): fat16, 4\.0 KiB clusters/);
    expect(human.stdout).toMatch(/\.\.\. and \d+ more files/);
    const before = readFileSync(s.disk.base);
    const refused = spawnSync('node', [BIN, 'map', s.disk.child, '--svg', s.disk.base], { encoding: 'utf8' });
    expect(refused.status).toBe(6);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(readFileSync(s.disk.base).equals(before)).toBe(true);
    const renamed = path.join(s.dir, 'copy-of-base.svg');
    copyFileSync(s.disk.base, renamed);
    expect(spawnSync('node', [BIN, 'map', s.disk.child, '--svg', renamed]).status).toBe(6);
    expect(existsSync(renamed) && readFileSync(renamed).equals(before)).toBe(true);
  });
});

describe.skipIf(!CAN)('map reports what it cannot read, per partition', () => {
  it('a partition whose file system is not recognised counts as not read; another partition is still mapped', async () => {
    const dir = tempDir('vhdtool-map-');
    const base = blankImage(path.join(dir, 'base.img'), 24 * MiB);
    partition(base, 'label: gpt\nstart=2048, size=16384, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\nstart=18432, size=20480, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n');
    const part = mkfat(path.join(dir, 'p2.img'), { fat: 16, bytes: 20480 * 512, sectorsPerCluster: 2 });
    embed(base, part, 18432 * 512);
    const child = path.join(dir, 'child.img');
    copyFileSync(base, child);
    // Random bytes in partition 1 (no file system), a file in partition 2.
    execFileSync('dd', ['if=/dev/urandom', `of=${child}`, 'bs=512', 'seek=3000', 'count=40', 'conv=notrunc', 'status=none']);
    mt.mcopy(drive(child, 18432 * 512), randomFile(dir, 'a.bin', 50_000, 5), 'a.bin');
    const [, c] = await chainFromImages(dir, [base, child], ['base.vhd', 'child.vhd']);
    const r = await map(c.path, { files: true });
    expect(r.scheme).toBe('gpt');
    const [p1, p2] = r.partitions;
    expect(p1).toMatchObject({ index: 1, fileSystem: 'unknown', detected: 'unrecognised', leafBytes: 40 * 512, leafUnknownBytes: 40 * 512, leafFreeBytes: 0 });
    expect(p2).toMatchObject({ index: 2, fileSystem: 'fat16', leafUnknownBytes: 0 });
    expect(p2.files!.map((f) => f.path)).toEqual(['a.bin']);
    expect(p2.files![0].leafBytes).toBe(Math.ceil(50_000 / 1024) * 1024);
    // Sleuth Kit agrees partition 1 holds no file system it knows.
    expect(spawnSync('fsstat', ['-o', '2048', child]).status).not.toBe(0);
    void run;
  });
});
