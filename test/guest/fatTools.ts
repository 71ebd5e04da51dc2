/**
 * FAT images made by mkfs.fat and mtools, read by vhdtool's FAT reader and
 * by the independent oracles: Sleuth Kit (fls, istat, blkls, icat, fsstat),
 * mtools (mdir, mcopy) and fsck.fat.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { afterAll } from 'vitest';
import { nodeFileSystem, type RandomAccessFile } from '../../src/io/fsys.js';
import { fileSource } from '../../src/io/rawSource.js';
import { RangeSet, RangeSetBuilder } from '../../src/guest/ranges.js';
import type { ByteSource } from '../../src/guest/source.js';
import type { GuestFile, VolumeScan } from '../../src/guest/volume.js';
import { FatVolume, fatReader } from '../../src/guest/fat/volume.js';
import { blankImage, run } from '../helpers/guest.js';

// mtools refuses geometries whose size is not a multiple of its track size unless told not to check.
process.env.MTOOLS_SKIP_CHECK = '1';

const has = (cmd: string, arg = '--version') => spawnSync(cmd, [arg], { stdio: 'ignore' }).error === undefined;
export const HAVE_FSCK_FAT = has('fsck.fat', '--help');
export const HAVE_MDIR = has('mdir');

export interface FatSpec {
  fat: 12 | 16 | 32;
  bytes: number;
  sectorsPerCluster: number;
  /** 512 unless given (4096 for a 4Kn disk). */
  bytesPerSector?: number;
  label?: string;
}

/** A new image of `spec.bytes` bytes holding a fresh file system made by mkfs.fat. */
export function mkfat(file: string, spec: FatSpec): string {
  blankImage(file, spec.bytes);
  const args = ['-F', String(spec.fat), '-S', String(spec.bytesPerSector ?? 512), '-s', String(spec.sectorsPerCluster), '-i', '12345678'];
  if (spec.label) args.push('-n', spec.label);
  run('mkfs.fat', [...args, file]);
  return file;
}

/** An mtools drive argument: the image, or a partition of it at a byte offset. */
export const drive = (img: string, offset = 0) => (offset ? `${img}@@${offset}` : img);

export const mt = {
  mmd: (d: string, ...dirs: string[]) => run('mmd', ['-i', d, ...dirs.map((x) => `::/${x}`)]),
  mcopy: (d: string, local: string, dest: string) => run('mcopy', ['-i', d, local, `::/${dest}`]),
  mdel: (d: string, ...files: string[]) => run('mdel', ['-i', d, ...files.map((x) => `::/${x}`)]),
  mren: (d: string, from: string, to: string) => run('mren', ['-i', d, `::/${from}`, `::/${to}`]),
  mrd: (d: string, dir: string) => run('mdeltree', ['-i', d, `::/${dir}`]),
  /** Every path mtools lists (directories end in '/'), without the leading '::/'. */
  list: (d: string) => {
    const r = spawnSync('mdir', ['-/', '-b', '-a', '-i', d, '::'], { encoding: 'utf8' });
    if (r.status !== 0 && !/not found/.test(r.stderr)) throw new Error(`mdir: ${r.stderr}`);
    return r.stdout.split('\n').filter((l) => l.startsWith('::/')).map((l) => l.slice(3));
  },
  /** A file's content as mtools copies it out (mcopy to standard output). */
  cat: (d: string, file: string) => {
    const r = spawnSync('mcopy', ['-n', '-i', d, `::/${file}`, '-'], { maxBuffer: 256 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`mcopy ${file} -: ${r.stderr}`);
    return new Uint8Array(r.stdout);
  },
};

export interface Scanned {
  vol: FatVolume;
  scan: VolumeScan;
  files: GuestFile[];
}

export async function scanSource(src: ByteSource): Promise<Scanned> {
  const vol = (await fatReader.open(src)) as FatVolume;
  const files: GuestFile[] = [];
  const scan = await vol.scan({ onFile: (f) => files.push(f) });
  return { vol, scan, files };
}

/** Scans an image file, read through a file source (not loaded whole). */
export async function scanImage(img: string): Promise<Scanned> {
  const file = await nodeFileSystem.openRead(img);
  const s = await scanSource(fileSource(file, statSync(img).size));
  opened.push(file);
  return s;
}

const opened: RandomAccessFile[] = [];
afterAll(async () => {
  for (const f of opened.splice(0)) await f.close();
});

export async function contentOf(vol: FatVolume, f: GuestFile): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of vol.readContent(f)) parts.push(p);
  return new Uint8Array(Buffer.concat(parts));
}

// ---- Sleuth Kit ---------------------------------------------------------------------------------

export interface TskEntry {
  inode: string;
  directory: boolean;
  size: number;
}

const tskArgs = (sectorOffset: number) => (sectorOffset ? ['-o', String(sectorOffset)] : []);

/** Allocated files and directories by path, as `fls -r -p -u -l` lists them (label and virtual files left out). */
export function tskFiles(img: string, sectorOffset = 0): Map<string, TskEntry> {
  const out = new Map<string, TskEntry>();
  for (const line of run('fls', [...tskArgs(sectorOffset), '-r', '-p', '-u', '-l', img]).split('\n')) {
    const m = /^([a-z-])\/([a-z-]) (\d+):\t([^\t]*)\t(.*)$/i.exec(line);
    if (!m || m[1] === 'v' || m[1] === 'V' || m[4].endsWith('(Volume Label Entry)')) continue;
    const fields = m[5].split('\t');
    out.set(m[4], { inode: m[3], directory: m[1] === 'd', size: Number(fields[4]) });
  }
  return out;
}

export interface TskLayout {
  type: string;
  sectorSize: number;
  clusterAreaStartSector: number;
  sectorsPerCluster: number;
  lastCluster: number;
}

export function tskLayout(img: string, sectorOffset = 0): TskLayout {
  const s = run('fsstat', [...tskArgs(sectorOffset), img]);
  const num = (re: RegExp) => Number(re.exec(s)![1]);
  return {
    type: /File System Type: (\S+)/.exec(s)![1],
    sectorSize: num(/Sector Size: (\d+)/),
    clusterAreaStartSector: num(/Cluster Area: (\d+)/),
    sectorsPerCluster: num(/Cluster Size: (\d+)/) / num(/Sector Size: (\d+)/),
    lastCluster: num(/Total Cluster Range: \d+ - (\d+)/),
  };
}

/** The clusters istat lists for an inode (Sleuth Kit lists the sectors its size needs). */
export function tskClusters(img: string, inode: string, layout: TskLayout, sectorOffset = 0): number[] {
  const s = run('istat', [...tskArgs(sectorOffset), img, inode]);
  const at = s.indexOf('Sectors:');
  if (at < 0) return [];
  const set = new Set<number>();
  for (const tok of s.slice(at + 8).split(/\s+/)) {
    if (!/^\d+$/.test(tok)) continue;
    const sector = Number(tok);
    if (sector < layout.clusterAreaStartSector) continue; // the 0 padding istat prints, and a FAT12/16 root
    set.add(2 + Math.floor((sector - layout.clusterAreaStartSector) / layout.sectorsPerCluster));
  }
  return [...set].sort((a, b) => a - b);
}

/** Unallocated sectors (blkls -l) as volume bytes. */
export function tskFree(img: string, sectorOffset = 0, sectorSize = 512): RangeSet {
  const b = new RangeSetBuilder();
  for (const line of run('blkls', [...tskArgs(sectorOffset), '-l', img]).split('\n')) {
    const m = /^(\d+)\|f$/.exec(line);
    if (m) b.add(Number(m[1]) * sectorSize, (Number(m[1]) + 1) * sectorSize);
  }
  return b.build();
}

/** A file's content as icat reads it. */
export function tskContent(img: string, inode: string, sectorOffset = 0): Uint8Array {
  const r = spawnSync('icat', [...tskArgs(sectorOffset), img, inode], { maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`icat ${inode}: ${r.stderr}`);
  return new Uint8Array(r.stdout);
}

// ---- fsck.fat -----------------------------------------------------------------------------------

export interface FsckReport {
  status: number;
  output: string;
  usedClusters: number;
  totalClusters: number;
}

/** `fsck.fat -n` (check only, change nothing). */
export function fsckFat(img: string): FsckReport {
  const r = spawnSync('fsck.fat', ['-n', img], { encoding: 'utf8' });
  const output = `${r.stdout}${r.stderr}`;
  const m = /(\d+)\/(\d+) clusters/.exec(output);
  return { status: r.status ?? -1, output, usedClusters: m ? Number(m[1]) : NaN, totalClusters: m ? Number(m[2]) : NaN };
}

// ---- our side, in the oracles' terms ------------------------------------------------------------

/** The clusters of a byte RangeSet of the volume. */
export function clustersOf(set: RangeSet, vol: FatVolume): number[] {
  const g = vol.geometry;
  const out: number[] = [];
  for (const [s, e] of set) for (let o = s; o < e; o += g.clusterSize) out.push(2 + (o - g.dataStart) / g.clusterSize);
  return out;
}

/** Asserts nothing; returns the problems with the three sets partitioning the volume (empty when they do). */
export function partitionProblems(scan: VolumeScan, size: number): string[] {
  const p: string[] = [];
  const { free, metadata, fileData } = scan;
  if (free.intersectBytes(metadata)) p.push('free overlaps metadata');
  if (free.intersectBytes(fileData)) p.push('free overlaps file data');
  if (metadata.intersectBytes(fileData)) p.push('metadata overlaps file data');
  const all = free.union(metadata).union(fileData);
  if (!all.equals(RangeSet.of(0, size))) p.push(`the three sets cover ${JSON.stringify(all.toArray().slice(0, 4))}, not [0, ${size})`);
  return p;
}
