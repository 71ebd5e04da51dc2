/**
 * The real Windows FAT12 pair (fat-parent.vhd, a fixed disk, and
 * fat-differential.vhd, a differencing child written by Windows), read
 * through the chain reader: the guest view composed from both layers, the
 * partition found from the MBR read here by hand, the volume checked
 * against Sleuth Kit and fsck.fat on the same composed bytes.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chainSource } from '../../src/chain/guestSource.js';
import { openChain } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';
import { RangeSetBuilder } from '../../src/guest/ranges.js';
import { sliceSource, type ByteSource } from '../../src/guest/source.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { HAVE_TSK } from '../helpers/guest.js';
import { HAVE_REAL, REAL_DIR } from '../helpers/real.js';
import { tempDir } from '../helpers/tmp.js';
import { HAVE_FSCK_FAT, clustersOf, contentOf, fsckFat, partitionProblems, scanSource, tskClusters, tskContent, tskFiles, tskFree, tskLayout, type Scanned } from './fatTools.js';

/** The first MBR partition entry: type, start and size in sectors. */
function firstPartition(mbr: Uint8Array): { type: number; start: number; sectors: number } {
  const dv = new DataView(mbr.buffer, mbr.byteOffset, 512);
  expect(dv.getUint16(510, true)).toBe(0xaa55);
  return { type: mbr[0x1be + 4], start: dv.getUint32(0x1be + 8, true), sectors: dv.getUint32(0x1be + 12, true) };
}

async function openFixture(name: string) {
  const chain = await openChain(nodeFileSystem, path.join(REAL_DIR, name));
  const reader = new ChainReader(chain);
  const disk = chainSource(reader);
  const p = firstPartition(await disk.read(0, 512));
  const part = sliceSource(disk, p.start * 512, p.sectors * 512);
  return { chain, reader, disk, p, part };
}

/** The composed partition written out, for the oracles. */
async function dump(src: ByteSource, file: string): Promise<string> {
  writeFileSync(file, await src.read(0, src.size));
  return file;
}

async function checkWithOracles(img: string, s: Scanned): Promise<void> {
  const tsk = tskFiles(img);
  const layout = tskLayout(img);
  expect(layout.type).toBe('FAT12');
  expect(s.files.map((f) => f.path).sort()).toEqual([...tsk.keys()].sort());
  for (const f of s.files) {
    const t = tsk.get(f.path)!;
    expect(f.size, f.path).toBe(t.size);
    expect(clustersOf(f.data, s.vol), f.path).toEqual(tskClusters(img, t.inode, layout));
    if (!f.directory) expect(Buffer.from(await contentOf(s.vol, f)).equals(Buffer.from(tskContent(img, t.inode))), f.path).toBe(true);
  }
  expect(s.scan.free.toArray()).toEqual(tskFree(img).clip(s.vol.clusterArea.start, s.vol.clusterArea.end).toArray());
  const fsck = fsckFat(img);
  expect(fsck.usedClusters).toBe(s.vol.geometry.clusterCount - s.scan.free.bytes / s.vol.clusterSize);
  // fsck.fat's only remark: Windows left "NO NAME" in the boot sector and put the label in the root directory.
  const remarks = fsck.output.split('\n').filter((l) => l.trim() && !/^fsck\.fat|Leaving filesystem unchanged|files, \d+\/\d+ clusters/.test(l));
  expect(remarks.join('\n')).toMatch(/^There is no label in boot sector, but there is volume label 'TESTVOLUME' stored in root directory\n\s+Auto-copying/);
  expect(remarks.length).toBe(2);
}

describe.skipIf(!HAVE_REAL || !HAVE_TSK || !HAVE_FSCK_FAT)('the real Windows FAT12 pair through the chain reader', () => {
  it('fat-parent.vhd: a FAT12 volume at sector 128, clean, as Sleuth Kit and fsck.fat read it', async () => {
    const f = await openFixture('fat-parent.vhd');
    try {
      expect(f.p).toEqual({ type: 0x0e, start: 128, sectors: 6016 });
      const s = await scanSource(f.part);
      expect(s.vol.kind).toBe('fat12');
      expect(s.vol.clusterSize).toBe(1024);
      expect(s.vol.label).toBe('TESTVOLUME');
      expect(s.vol.geometry.bpbLabel).toBeNull();
      expect(s.scan.state).toEqual({ state: 'clean', reasons: [] });
      expect(s.scan.anomalies).toEqual([]);
      expect(s.files.map((x) => x.path).sort()).toEqual(['System Volume Information', 'System Volume Information/WPSettings.dat']);
      expect(partitionProblems(s.scan, s.vol.size)).toEqual([]);
      await checkWithOracles(await dump(f.part, path.join(tempDir(), 'parent.img')), s);
    } finally {
      await f.chain.close();
    }
  });

  it('fat-differential.vhd over its parent: the composed volume, and which files the child\'s own sectors hold', async () => {
    const f = await openFixture('fat-differential.vhd');
    try {
      const s = await scanSource(f.part);
      expect(s.vol.kind).toBe('fat12');
      expect(s.scan.state).toEqual({ state: 'clean', reasons: [] });
      expect(s.scan.anomalies).toEqual([]);
      expect(partitionProblems(s.scan, s.vol.size)).toEqual([]);
      await checkWithOracles(await dump(f.part, path.join(tempDir(), 'child.img')), s);
      // The sectors the child holds itself, as partition bytes.
      const own = new RangeSetBuilder();
      for (const piece of f.reader.resolver.resolveRange(0, f.p.start, f.p.sectors)) {
        if (piece.layer === 0) own.add((piece.sector - f.p.start) * 512, (piece.sector - f.p.start + piece.count) * 512);
      }
      const leaf = own.build();
      expect(leaf.isEmpty).toBe(false);
      // Every byte of it is metadata, file data or free space, exactly once.
      expect(leaf.intersectBytes(s.scan.metadata) + leaf.intersectBytes(s.scan.fileData) + leaf.intersectBytes(s.scan.free)).toBe(leaf.bytes);
      // The files whose clusters the child wrote are the ones Windows added in it.
      const written = s.files.filter((x) => !x.directory && x.data.intersectBytes(leaf) > 0).map((x) => x.path).sort();
      expect(written).toEqual(['System Volume Information/IndexerVolumeGuid', 'a_directory/a_file', 'a_directory/another_file', 'passwords.txt']);
      // And the FAT and root directory changed too: metadata in the child.
      expect(leaf.intersectBytes(s.scan.metadata)).toBeGreaterThan(0);
    } finally {
      await f.chain.close();
    }
  });
});
