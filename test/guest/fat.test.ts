/**
 * The FAT reader against volumes made by mkfs.fat and filled by mtools,
 * every figure checked against Sleuth Kit (fsstat, fls, istat, blkls, icat),
 * mtools (mdir, mcopy out) and fsck.fat.
 */
import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sliceSource } from '../../src/guest/source.js';
import { fileSource } from '../../src/io/rawSource.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_SFDISK, HAVE_TSK, blankImage, embed, extract, partition } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import {
  HAVE_FSCK_FAT, clustersOf, contentOf, drive, fsckFat, mkfat, mt, partitionProblems, scanImage, scanSource,
  tskClusters, tskContent, tskFiles, tskFree, tskLayout, type FatSpec, type Scanned,
} from './fatTools.js';

const READY = HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_TSK && HAVE_FSCK_FAT;
const MiB = 1024 * 1024;

/** Deterministic bytes. */
function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * A tree with short and long names, nested directories, an empty file, a
 * renamed file, deleted files and a file fragmented around a hole.
 */
function populate(img: string, offset: number, dir: string, cs: number): void {
  const d = drive(img, offset);
  const local = (name: string, n: number, seed: number) => {
    const p = path.join(dir, name);
    writeFileSync(p, bytes(n, seed));
    return p;
  };
  mt.mmd(d, 'DOCS', 'Docs/Deep Nested Directory With A Long Name', 'EMPTYDIR', 'Docs/Deep Nested Directory With A Long Name/level3');
  mt.mcopy(d, local('README.TXT', 100, 1), 'README.TXT');
  mt.mcopy(d, local('notes.txt', 3 * cs + 17, 2), 'notes.txt');
  mt.mcopy(d, local('empty', 0, 3), 'empty.txt');
  mt.mcopy(d, local('long', 5 * cs - 1, 4), 'Docs/A file with a rather long name.dat');
  mt.mcopy(d, local('hole', 2 * cs, 5), 'hole.bin');
  mt.mcopy(d, local('after', cs, 6), 'after.bin');
  mt.mdel(d, 'hole.bin');
  forgetNextFree(img, offset);
  // Fills the hole hole.bin left and goes on past after.bin: a fragmented chain.
  mt.mcopy(d, local('frag', 4 * cs + 3, 7), 'Docs/Deep Nested Directory With A Long Name/fragmented.bin');
  mt.mcopy(d, local('deep', 10, 8), 'Docs/Deep Nested Directory With A Long Name/level3/deep.txt');
  mt.mcopy(d, local('gone', 700, 9), 'Docs/gone.txt');
  mt.mdel(d, 'Docs/gone.txt');
  mt.mren(d, 'notes.txt', 'Docs/renamed notes.txt');
  mt.mcopy(d, local('mixed', 1, 10), 'MiXeD.Case');
}

/**
 * mtools allocates from FAT32's FSInfo next-free hint and would never reuse
 * the hole; with the hint unknown (0xFFFFFFFF) it searches from the start.
 */
function forgetNextFree(img: string, offset: number): void {
  const fd = openSync(img, 'r+');
  try {
    const boot = Buffer.alloc(512);
    readSync(fd, boot, 0, 512, offset);
    if (boot.readUInt16LE(22) !== 0) return; // not FAT32
    const fsInfo = boot.readUInt16LE(48);
    writeSync(fd, Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, offset + fsInfo * boot.readUInt16LE(11) + 492);
  } finally {
    closeSync(fd);
  }
}

async function checkAgainstOracles(img: string, s: Scanned, spec: FatSpec | null): Promise<void> {
  const { vol, scan, files } = s;
  const g = vol.geometry;
  // Layout, as fsstat reads it.
  const layout = tskLayout(img);
  expect(layout.type.toLowerCase()).toBe(vol.kind);
  if (spec) expect(vol.kind).toBe(`fat${spec.fat}`);
  expect(g.dataStart).toBe(layout.clusterAreaStartSector * layout.sectorSize);
  expect(g.bytesPerSector).toBe(layout.sectorSize);
  expect(g.clusterCount).toBe(layout.lastCluster - 1);
  // The file list: Sleuth Kit and mtools.
  const tsk = tskFiles(img);
  expect(files.map((f) => f.path).sort()).toEqual([...tsk.keys()].sort());
  expect(files.map((f) => (f.directory ? `${f.path}/` : f.path)).sort()).toEqual(mt.list(img).sort());
  // Each file's size, clusters and content.
  for (const f of files) {
    const t = tsk.get(f.path)!;
    expect(f.directory, f.path).toBe(t.directory);
    expect(f.size, f.path).toBe(t.size);
    expect(f.id).toBe(`path:${f.path.toLowerCase()}`);
    expect(clustersOf(f.data, vol), f.path).toEqual(tskClusters(img, t.inode, layout));
    expect(f.meta.isEmpty, f.path).toBe(false);
    if (!f.directory) {
      const mine = await contentOf(vol, f);
      expect(Buffer.from(mine).equals(Buffer.from(tskContent(img, t.inode))), `${f.path} (icat)`).toBe(true);
      expect(Buffer.from(mine).equals(Buffer.from(mt.cat(img, f.path))), `${f.path} (mcopy)`).toBe(true);
    }
  }
  // Free space: blkls's unallocated sectors inside the cluster area.
  expect(scan.free.toArray()).toEqual(tskFree(img, 0, layout.sectorSize).clip(vol.clusterArea.start, vol.clusterArea.end).toArray());
  // fsck.fat: clean, and the same count of clusters in use.
  const fsck = fsckFat(img);
  expect(fsck.status, fsck.output).toBe(0);
  expect(fsck.totalClusters).toBe(g.clusterCount);
  expect(fsck.usedClusters).toBe(g.clusterCount - scan.free.bytes / g.clusterSize);
  expect(scan.state).toEqual({ state: 'clean', reasons: [] });
  expect(scan.anomalies).toEqual([]);
  expect(partitionProblems(scan, vol.size)).toEqual([]);
  expect(scan.files).toBe(files.filter((f) => !f.directory).length);
  expect(scan.directories).toBe(files.filter((f) => f.directory).length);
  // File data is exactly the files' clusters.
  const fileClusters = files.filter((f) => !f.directory).reduce((n, f) => n + f.data.bytes, 0);
  expect(scan.fileData.bytes).toBe(fileClusters);
}

describe.skipIf(!READY)('FAT reader against mkfs.fat + mtools images and Sleuth Kit, mtools, fsck.fat', () => {
  const cases: FatSpec[] = [
    { fat: 12, bytes: 1 * MiB, sectorsPerCluster: 1 },
    { fat: 12, bytes: 4 * MiB, sectorsPerCluster: 4 },
    { fat: 12, bytes: 16 * MiB, sectorsPerCluster: 16 },
    { fat: 12, bytes: 16 * MiB, sectorsPerCluster: 128, label: 'BIGCLUSTER' },
    { fat: 16, bytes: 24 * MiB, sectorsPerCluster: 1 },
    { fat: 16, bytes: 16 * MiB, sectorsPerCluster: 4, label: 'SIXTEEN' },
    { fat: 16, bytes: 64 * MiB, sectorsPerCluster: 8 },
    { fat: 32, bytes: 40 * MiB, sectorsPerCluster: 1, label: 'THIRTYTWO' },
    { fat: 32, bytes: 300 * MiB, sectorsPerCluster: 8 },
    { fat: 16, bytes: 64 * MiB, sectorsPerCluster: 1, bytesPerSector: 4096, label: 'FOURK' },
  ];
  for (const spec of cases) {
    const bps = spec.bytesPerSector ?? 512;
    const cs = spec.sectorsPerCluster * bps;
    it(`FAT${spec.fat}, ${spec.bytes / MiB} MiB, ${bps} B sectors, ${cs} B clusters: files, clusters, free space, content and state agree`, async () => {
      const dir = tempDir();
      const img = mkfat(path.join(dir, 'v.img'), spec);
      populate(img, 0, dir, cs);
      const s = await scanImage(img);
      await checkAgainstOracles(img, s, spec);
      expect(s.vol.label).toBe(spec.label ?? null);
      // Fragmentation made it in: one file has more than one run of clusters.
      expect(s.files.some((f) => f.data.count > 1)).toBe(true);
    });
  }

  it('an empty FAT32 volume: only the root directory cluster is in use', async () => {
    const dir = tempDir();
    const img = mkfat(path.join(dir, 'v.img'), { fat: 32, bytes: 40 * MiB, sectorsPerCluster: 1 });
    const s = await scanImage(img);
    await checkAgainstOracles(img, s, null);
    expect(s.files).toEqual([]);
    const g = s.vol.geometry;
    const rootAt = g.dataStart + (g.rootCluster - 2) * g.clusterSize;
    expect(s.scan.metadata.covers(rootAt, rootAt + g.clusterSize)).toBe(true);
  });

  it.skipIf(!HAVE_SFDISK)('a FAT16 partition at sector 63 of an MBR disk, read through a slice of the disk', async () => {
    const dir = tempDir();
    const disk = blankImage(path.join(dir, 'disk.img'), 40 * MiB);
    const sectors = 60000;
    partition(disk, `label: dos\nstart=63, size=${sectors}, type=6\n`);
    const part = mkfat(path.join(dir, 'part.img'), { fat: 16, bytes: sectors * 512, sectorsPerCluster: 4 });
    embed(disk, part, 63 * 512);
    populate(disk, 63 * 512, dir, 2048);
    const file = await nodeFileSystem.openRead(disk);
    try {
      const s = await scanSource(sliceSource(fileSource(file, 40 * MiB), 63 * 512, sectors * 512));
      const tsk = tskFiles(disk, 63);
      expect(s.files.map((f) => f.path).sort()).toEqual([...tsk.keys()].sort());
      const layout = tskLayout(disk, 63);
      for (const f of s.files) expect(clustersOf(f.data, s.vol), f.path).toEqual(tskClusters(disk, tsk.get(f.path)!.inode, layout, 63));
      expect(s.scan.free.toArray()).toEqual(tskFree(disk, 63).clip(s.vol.clusterArea.start, s.vol.clusterArea.end).toArray());
      expect(s.scan.anomalies).toEqual([]);
      const fsck = fsckFat(extract(disk, 63 * 512, sectors * 512, path.join(dir, 'p.img')));
      expect(fsck.status, fsck.output).toBe(0);
      expect(fsck.usedClusters).toBe(s.vol.geometry.clusterCount - s.scan.free.bytes / 2048);
    } finally {
      await file.close();
    }
  });
});
