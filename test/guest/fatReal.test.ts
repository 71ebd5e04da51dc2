/**
 * Real FAT volumes made by Windows, read through the chain reader: the
 * FAT12 pair (fat-parent.vhd, a fixed disk, and fat-differential.vhd, a
 * differencing child Windows wrote) with the guest view composed from both
 * layers, and the FAT12, FAT16 and FAT32 volumes of node-vhd's fixtures
 * (MBR and GPT disks). Partitions are found from the MBR or GPT read here
 * by hand; each volume is checked against Sleuth Kit and fsck.fat on the
 * same composed bytes.
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { chainSource } from '../../src/chain/guestSource.js';
import { openChain } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';
import { RangeSetBuilder } from '../../src/guest/ranges.js';
import { sliceSource, type ByteSource } from '../../src/guest/source.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { fatReader } from '../../src/guest/fat/volume.js';
import { HAVE_TSK } from '../helpers/guest.js';
import { HAVE_REAL, realPath } from '../helpers/real.js';
import { tempDir } from '../helpers/tmp.js';
import { HAVE_FSCK_FAT, clustersOf, contentOf, fsckFat, partitionProblems, scanSource, tskClusters, tskContent, tskFiles, tskFree, tskLayout, type Scanned } from './fatTools.js';

/** The first MBR partition entry: type, start and size in sectors. */
function firstPartition(mbr: Uint8Array): { type: number; start: number; sectors: number } {
  const dv = new DataView(mbr.buffer, mbr.byteOffset, 512);
  expect(dv.getUint16(510, true)).toBe(0xaa55);
  return { type: mbr[0x1be + 4], start: dv.getUint32(0x1be + 8, true), sectors: dv.getUint32(0x1be + 12, true) };
}

/** Partitions of a disk, [start, sectors], from its MBR or (protective MBR) its GPT. */
async function partitionsOf(disk: ByteSource): Promise<Array<[number, number]>> {
  const mbr = await disk.read(0, 512);
  const dv = new DataView(mbr.buffer, mbr.byteOffset, 512);
  const out: Array<[number, number]> = [];
  if (mbr[0x1be + 4] !== 0xee) {
    for (let i = 0; i < 4; i++) if (mbr[0x1be + 16 * i + 4]) out.push([dv.getUint32(0x1be + 16 * i + 8, true), dv.getUint32(0x1be + 16 * i + 12, true)]);
    return out;
  }
  const h = await disk.read(512, 512);
  const hv = new DataView(h.buffer, h.byteOffset, 512);
  expect(Buffer.from(h.subarray(0, 8)).toString('latin1')).toBe('EFI PART');
  const at = Number(hv.getBigUint64(72, true));
  const n = hv.getUint32(80, true);
  const size = hv.getUint32(84, true);
  const entries = await disk.read(at * 512, n * size);
  for (let i = 0; i < n; i++) {
    const e = new DataView(entries.buffer, entries.byteOffset + i * size, size);
    const first = Number(e.getBigUint64(32, true));
    if (first) out.push([first, Number(e.getBigUint64(40, true)) - first + 1]);
  }
  return out;
}

async function openFixture(name: string) {
  const chain = await openChain(nodeFileSystem, realPath(name));
  const reader = new ChainReader(chain);
  return { chain, reader, disk: chainSource(reader) };
}

/** A fixture whose first MBR partition holds the volume. */
async function openMbrFixture(name: string) {
  const f = await openFixture(name);
  const p = firstPartition(await f.disk.read(0, 512));
  return { ...f, p, part: sliceSource(f.disk, p.start * 512, p.sectors * 512) };
}

const PIECE = 8 * 1024 * 1024;
const ZEROS = Buffer.alloc(PIECE);

/** The composed partition written out for the oracles, in 8 MiB pieces, all-zero pieces left as holes. */
async function dump(src: ByteSource, file: string): Promise<string> {
  const fd = openSync(file, 'w');
  try {
    ftruncateSync(fd, src.size);
    for (let at = 0; at < src.size; at += PIECE) {
      const piece = Buffer.from(await src.read(at, Math.min(PIECE, src.size - at)));
      if (!piece.equals(ZEROS.subarray(0, piece.length))) writeSync(fd, piece, 0, piece.length, at);
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

async function checkWithOracles(img: string, s: Scanned): Promise<void> {
  const tsk = tskFiles(img);
  const layout = tskLayout(img);
  expect(layout.type.toLowerCase()).toBe(s.vol.kind);
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
  expect(remarks.join('\n')).toBe(`There is no label in boot sector, but there is volume label '${s.vol.label}' stored in root directory\n  Auto-copying volume label from root directory to boot sector.`);
}

describe.skipIf(!HAVE_REAL || !HAVE_TSK || !HAVE_FSCK_FAT)('the real Windows FAT12 pair through the chain reader', () => {
  it('fat-parent.vhd: a FAT12 volume at sector 128, clean, as Sleuth Kit and fsck.fat read it', async () => {
    const f = await openMbrFixture('fat-parent.vhd');
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
    const f = await openMbrFixture('fat-differential.vhd');
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

  const windows: Array<[string, Array<[number, string, string]>]> = [
    ['node-vhd-fixed.vhd', [[128, 'fat12', 'NEW VOLUME']]],
    ['node-vhd-dynamic.vhd.gz', [[65664, 'fat32', 'EFI SYSTEM'], [657536, 'fat32', 'FAT VOLUME']]],
    ['node-vhd-dynamic-dc5d815f.vhd.gz', [[65664, 'fat32', '32BIT FAT'], [884864, 'fat16', '16BIT FAT']]],
  ];
  for (const [name, vols] of windows) {
    it(`${name}: its FAT volumes (${vols.map((v) => v[1]).join(', ')}) as Sleuth Kit and fsck.fat read them`, async () => {
      const f = await openFixture(name);
      try {
        const fats: Array<[number, string, string]> = [];
        for (const [start, sectors] of await partitionsOf(f.disk)) {
          const part = sliceSource(f.disk, start * 512, sectors * 512);
          if (!fatReader.probe(await part.read(0, 512), part.size)) continue;
          const s = await scanSource(part);
          fats.push([start, s.vol.kind, s.vol.label ?? '']);
          expect(s.scan.state).toEqual({ state: 'clean', reasons: [] });
          expect(s.scan.anomalies).toEqual([]);
          expect(partitionProblems(s.scan, s.vol.size)).toEqual([]);
          await checkWithOracles(await dump(part, path.join(tempDir(), `p${start}.img`)), s);
        }
        expect(fats).toEqual(vols);
      } finally {
        await f.chain.close();
      }
    });
  }
});
