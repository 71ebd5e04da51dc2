/**
 * NTFS images for tests, made by ntfs-3g's own tools (mkntfs, ntfscp, and
 * the ntfs-3g FUSE driver for trees, links, streams and deletions), and the
 * independent oracle: Sleuth Kit's fls (paths), istat (clusters of every
 * attribute) and blkls (unallocated clusters).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { blankImage, HAVE_MKNTFS, HAVE_TSK, run } from './guest.js';
import { fileSource } from '../../src/io/rawSource.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { NtfsVolume } from '../../src/guest/ntfs/volume.js';
import type { GuestFile, VolumeScan } from '../../src/guest/volume.js';
import { bufferSource, type ByteSource } from '../../src/guest/source.js';

/** True when ntfs-3g can really mount through FUSE here (root, /dev/fuse, and a trial mount that works). */
export const HAVE_FUSE = HAVE_MKNTFS && existsSync('/dev/fuse') && process.getuid?.() === 0 && trialMount();

function trialMount(): boolean {
  const d = mkdtempSync(path.join(tmpdir(), 'ntfs-fuse-probe-'));
  const img = path.join(d, 'probe.img');
  const mnt = path.join(d, 'mnt');
  try {
    mkdirSync(mnt);
    blankImage(img, 4 << 20);
    if (spawnSync('mkntfs', ['-F', '-Q', '-q', img], { stdio: 'ignore' }).status !== 0) return false;
    if (spawnSync('ntfs-3g', [img, mnt], { stdio: 'ignore' }).status !== 0) return false;
    return spawnSync('umount', [mnt], { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}
export { HAVE_MKNTFS, HAVE_TSK };

/** A fresh NTFS volume of `bytes` in `file` (mkntfs -F -Q), clusters of `cluster` bytes. */
export function mkntfs(file: string, bytes: number, cluster = 4096, extra: string[] = []): string {
  blankImage(file, bytes);
  run('mkntfs', ['-F', '-Q', '-q', '-c', String(cluster), ...extra, file]);
  return file;
}

/**
 * Mounts `img` with ntfs-3g (windows-style `file:stream` names), runs `fn`
 * on the mount point, unmounts and waits for ntfs-3g to finish writing.
 */
export function withMounted(img: string, fn: (mnt: string) => void | Promise<void>): Promise<void> {
  return withMountedOptions(img, '', fn);
}

/** withMounted with more ntfs-3g options (e.g. "compression"). */
export async function withMountedOptions(img: string, options: string, fn: (mnt: string) => void | Promise<void>): Promise<void> {
  const mnt = mkdtempSync(path.join(tmpdir(), 'ntfs-mnt-'));
  const opts = ['no_detach', 'streams_interface=windows', ...(options ? [options] : [])].join(',');
  const child = spawn('ntfs-3g', ['-o', opts, img, mnt], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    for (let i = 0; ; i++) {
      if (readFileSync('/proc/mounts', 'utf8').includes(` ${mnt} `)) break;
      if (i > 200 || child.exitCode !== null) throw new Error(`ntfs-3g did not mount ${img}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    await fn(mnt);
  } finally {
    spawnSync('umount', [mnt]);
    await exited;
    rmdirSync(mnt);
  }
}

/** Opens a raw image file (or a buffer) as an NTFS volume. */
export async function openImage(img: string | Uint8Array): Promise<{ vol: NtfsVolume; close: () => Promise<void> }> {
  if (typeof img !== 'string') return { vol: await NtfsVolume.open(bufferSource(img)), close: async () => undefined };
  const f = await nodeFileSystem.openRead(img);
  try {
    const src: ByteSource = fileSource(f, (await nodeFileSystem.stat(img)).size);
    return { vol: await NtfsVolume.open(src), close: () => f.close() };
  } catch (e) {
    await f.close();
    throw e;
  }
}

/** Scans an image held in memory (test images are MiBs), so content can be read afterwards. */
export async function scanImage(img: string | Uint8Array): Promise<{ vol: NtfsVolume; scan: VolumeScan; files: GuestFile[] }> {
  const vol = await NtfsVolume.open(bufferSource(typeof img === 'string' ? new Uint8Array(readFileSync(img)) : img));
  const files: GuestFile[] = [];
  const scan = await vol.scan({ onFile: (f) => files.push(f) });
  return { vol, scan, files };
}

/** Reads a GuestFile's whole content. */
export async function contentOf(vol: NtfsVolume, f: GuestFile): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of vol.readContent(f)) parts.push(p);
  return Buffer.concat(parts);
}

// ---- Sleuth Kit ----

export interface TskAttr { type: number; name: string | null; nonResident: boolean; clusters: number[] }

/** fls -r -p -u: allocated names by inode (orphans and virtual entries left out). */
export function tskPaths(img: string): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const line of run('fls', ['-r', '-p', '-u', img]).split('\n')) {
    const m = /^\S\/\S\s+(\d+)(?:-\d+-\d+)?:\t(.*)$/.exec(line);
    if (!m || m[2].startsWith('$OrphanFiles')) continue;
    const inode = Number(m[1]);
    if (!out.has(inode)) out.set(inode, new Set());
    out.get(inode)!.add(m[2]);
  }
  return out;
}

/** istat: every attribute of an inode, with the clusters of the non-resident ones (sparse ones left out). */
export function tskAttrs(img: string, inode: number): TskAttr[] {
  const out: TskAttr[] = [];
  let cur: TskAttr | null = null;
  const text = run('istat', [img, String(inode)]);
  for (const line of text.slice(text.indexOf('Attributes:')).split('\n')) {
    const m = /^Type: \S+ \((\d+)-\d+\)\s+Name: (.*?)\s+(Non-Resident|Resident)/.exec(line);
    if (m) {
      cur = { type: Number(m[1]), name: m[2] === 'N/A' ? null : m[2], nonResident: m[3] === 'Non-Resident', clusters: [] };
      out.push(cur);
    } else if (cur && /^[\d ]+$/.test(line.trim()) && line.trim()) {
      for (const c of line.trim().split(/\s+/)) if (c !== '0' || inode === 7) cur.clusters.push(Number(c));
    }
  }
  return out;
}

/** ntfsinfo -v -i: every non-resident attribute's clusters as ntfs-3g decodes its runlists (sparse runs left out). */
export function ntfsinfoAttrs(img: string, inode: number): TskAttr[] {
  const out: TskAttr[] = [];
  let cur: TskAttr | null = null;
  let inRuns = false;
  for (const line of run('ntfsinfo', ['-v', '-i', String(inode), img]).split('\n')) {
    const head = /^Dumping attribute \S+ \(0x([0-9a-f]+)\)/.exec(line);
    if (head) {
      cur = { type: parseInt(head[1], 16), name: null, nonResident: false, clusters: [] };
      out.push(cur);
      inRuns = false;
      continue;
    }
    if (!cur) continue;
    const name = /^\tAttribute name:\s+'(.*)'$/.exec(line);
    if (name) cur.name = name[1];
    if (/^\tResident:\s+No/.test(line)) cur.nonResident = true;
    if (/^\tRunlist:/.test(line)) { inRuns = true; continue; }
    const r = inRuns ? /^\t\t\t0x([0-9a-f]+)\t\t(0x[0-9a-f]+|\S+)\t\t0x([0-9a-f]+)/.exec(line) : null;
    if (r) {
      if (!r[2].startsWith('0x')) continue;
      const lcn = parseInt(r[2], 16);
      const len = parseInt(r[3], 16);
      for (let c = lcn; c < lcn + len; c++) cur.clusters.push(c);
    } else if (inRuns && !/^\t\t\t/.test(line)) {
      inRuns = false;
    }
  }
  return out;
}

/** blkls -l: unallocated cluster numbers. */
export function tskFree(img: string): number[] {
  const out: number[] = [];
  for (const line of run('blkls', ['-l', img]).split('\n')) {
    const m = /^(\d+)\|f$/.exec(line);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

/** Cluster numbers covered by byte ranges. */
export function clustersOf(ranges: { toArray(): Array<[number, number]> }, cs: number): number[] {
  const out: number[] = [];
  for (const [s, e] of ranges.toArray()) for (let c = s / cs; c < e / cs; c++) out.push(c);
  return out;
}

/** The record number of a GuestFile. */
export const recordOf = (f: GuestFile): number => Math.floor(f.ref / 65536);

/**
 * Differences between the scan and Sleuth Kit on `img` (empty when they
 * agree): the free clusters, and for every file and stream its path and
 * exact cluster set (files: the $DATA of that name; directories: every
 * non-resident attribute), and every allocated name Sleuth Kit lists.
 */
export function diffWithTsk(img: string, scan: VolumeScan, files: GuestFile[], cs: number, only?: (f: GuestFile) => boolean): string[] {
  const diffs: string[] = [];
  const free = new Set(tskFree(img));
  const ours = clustersOf(scan.free, cs);
  if (ours.length !== free.size || ours.some((c) => !free.has(c))) diffs.push(`free clusters: ours ${ours.length}, blkls ${free.size}`);
  const paths = tskPaths(img);
  // fls lists index streams ($Secure:$SDH) and no entry for a file without unnamed $DATA: accept the file's own name too.
  for (const names of paths.values()) for (const n of [...names]) if (n.includes(':')) names.add(n.slice(0, n.lastIndexOf(':')));
  const seen = new Set<number>();
  const attrCache = new Map<number, TskAttr[]>();
  for (const f of files) {
    const r = recordOf(f);
    seen.add(r);
    if (f.path.startsWith('$OrphanFiles') || f.path.startsWith('$Reserved') || f.path === '' || (only && !only(f))) continue;
    const names = paths.get(r);
    if (!names?.has(f.path)) diffs.push(`${f.path}: record ${r} is listed by fls as ${names ? [...names].join(', ') : 'nothing'}`);
    if (!attrCache.has(r)) attrCache.set(r, ntfsinfoAttrs(img, r));
    const stream = f.path.includes(':') ? f.path.slice(f.path.lastIndexOf(':') + 1) : null;
    const pick = (attrs: TskAttr[]) => [...new Set((f.directory
      ? attrs.filter((a) => a.nonResident && a.type !== 128)
      : attrs.filter((a) => a.type === 128 && a.name === stream)).flatMap((a) => a.clusters))].sort((a, b) => a - b);
    const expect = pick(attrCache.get(r)!);
    const got = clustersOf(f.data, cs);
    if (expect.join() !== got.join()) diffs.push(`${f.path}: clusters ${summary(got)}, ntfsinfo ${summary(expect)}`);
    // istat lists a stream's clusters up to its size only: they must be among ours.
    if (!f.directory) {
      const mine = new Set(got);
      const tsk = pick(tskAttrs(img, r));
      if (tsk.some((c) => !mine.has(c))) diffs.push(`${f.path}: istat lists clusters the scan does not give it (${summary(tsk)})`);
    }
  }
  for (const [inode, names] of paths) {
    if (!seen.has(inode) && inode !== 5) diffs.push(`fls lists record ${inode} (${[...names].join(', ')}), the scan does not`);
  }
  return diffs;
}

function summary(c: number[]): string {
  return c.length > 6 ? `${c.length} [${c.slice(0, 3).join(',')}..${c.slice(-2).join(',')}]` : `[${c.join(',')}]`;
}

// ---- Editing a fresh mkntfs image by hand (hostile and synthetic cases); the reader is not used. ----

export const REC = 1024;

/** Byte offset of MFT record n in a fresh mkntfs image (its $MFT is one run). */
export function recOff(b: Buffer, n: number): number {
  const cs = b.readUInt16LE(0x0b) * b[0x0d];
  return Number(b.readBigUInt64LE(0x30)) * cs + n * REC;
}

/** Offset of the first attribute of `type` in record n (walked by hand). */
export function attrOff(b: Buffer, n: number, type: number): number {
  const r = recOff(b, n);
  let p = r + b.readUInt16LE(r + 20);
  while (b.readUInt32LE(p) !== type) {
    if (b.readUInt32LE(p) === 0xffffffff) throw new Error(`record ${n} has no attribute 0x${type.toString(16)}`);
    p += b.readUInt32LE(p + 4);
  }
  return p;
}

/** Edits record n with its fixups undone, then protects it again. */
export function editRecord(b: Buffer, n: number, edit: (rec: Buffer) => void): void {
  const r = recOff(b, n);
  const rec = b.subarray(r, r + REC);
  const usa = rec.readUInt16LE(4);
  for (let i = 1; i <= REC / 512; i++) rec.writeUInt16LE(rec.readUInt16LE(usa + 2 * i), i * 512 - 2);
  edit(rec);
  const usn = rec.readUInt16LE(usa);
  for (let i = 1; i <= REC / 512; i++) {
    rec.writeUInt16LE(rec.readUInt16LE(i * 512 - 2), usa + 2 * i);
    rec.writeUInt16LE(usn, i * 512 - 2);
  }
}

