/**
 * The incremental NTFS scan against its oracle, the full scan of the same
 * view: the files it reports, plus the earlier view's files it says are
 * unreported (the same), must be exactly the full scan's files, field by
 * field; its metadata and file data must be the full scan's within the
 * changed bytes.
 */
import { linkSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { NtfsVolume } from '../../src/guest/ntfs/volume.js';
import { mkntfs, withMounted } from './ntfsImages.js';
import { RangeSet, RangeSetBuilder } from '../../src/guest/ranges.js';
import { bufferSource } from '../../src/guest/source.js';
import type { GuestFile, ScanOptions, VolumeScan } from '../../src/guest/volume.js';

/** Sectors (512 bytes) where two images differ; the longer one's tail counts as differing. */
export function differingSectors(a: Uint8Array, b: Uint8Array): RangeSet {
  const out = new RangeSetBuilder();
  const n = Math.min(a.length, b.length);
  for (let s = 0; s < n; s += 512) {
    const e = Math.min(s + 512, n);
    if (Buffer.compare(a.subarray(s, e), b.subarray(s, e)) !== 0) out.add(s, e);
  }
  if (a.length !== b.length) out.add(n, Math.max(a.length, b.length));
  return out.build();
}

/** A GuestFile as plain comparable text. */
export function fileKey(f: GuestFile): string {
  return JSON.stringify([f.ref, f.id, f.path, f.size, f.directory, f.system, f.data.toArray(), f.meta.toArray()]);
}

export interface DeltaCheck {
  /** Differences found (empty: the incremental scan agrees with the full scan). */
  problems: string[];
  /** Whether the incremental scan was made (false: the reader fell back to a full scan). */
  incremental: boolean;
  /** Files the incremental scan reported, and files of B in all. */
  reported: number;
  total: number;
}

async function scanAll(img: Uint8Array, extra: Pick<ScanOptions, 'resumable' | 'since' | 'within'> = {}, report = true) {
  const vol = await NtfsVolume.open(bufferSource(img));
  const files: GuestFile[] = [];
  const scan = await vol.scan({ ...(report ? { onFile: (f: GuestFile) => files.push(f) } : {}), ...extra });
  return { scan, files, vol };
}

/** Scans A (resumable), then B in full and incrementally from A, and compares. */
export async function checkDelta(a: Uint8Array, b: Uint8Array, changed = differingSectors(a, b)): Promise<DeltaCheck> {
  const A = await scanAll(a, { resumable: true });
  if (!A.scan.resume) throw new Error('the scan of A kept no resume state');
  const full = await scanAll(b);
  const inc = await scanAll(b, { since: { from: A.scan.resume, changed } });
  const problems: string[] = [];
  // Again from a scan of A that reported nothing, with the earlier files handed over (diff's way).
  const quiet = await scanAll(a, { resumable: true, within: changed }, false);
  // That scan's metadata and file data are the full scan's within the changed bytes, the rest alike.
  sameScan('A within the changed bytes', A.scan, quiet.scan, (x) => x.intersect(changed), problems);
  const earlier: GuestFile[] = [];
  const inc2 = await scanAll(b, { since: { from: quiet.scan.resume!, changed, onEarlier: (f) => earlier.push(f) } });
  const promised = (await NtfsVolume.open(bufferSource(b))).continuesFrom(quiet.vol, changed);
  if (promised !== (inc2.scan.unreported !== undefined)) problems.push(`continuesFrom said ${promised}, the scan was ${inc2.scan.unreported ? 'incremental' : 'full'}`);
  if (inc2.scan.unreported) {
    if (JSON.stringify(inc2.files.map(fileKey)) !== JSON.stringify(inc.files.map(fileKey))) problems.push('the second incremental scan reported other files');
    // The earlier files handed over are A's own, and with the unreported ones they are all of A's, once each.
    const aKeys = new Map(A.files.map((f) => [f.ref, fileKey(f)]));
    const seen = new Set<number>();
    for (const f of earlier) {
      if (seen.has(f.ref)) problems.push(`handed over twice: ${f.path}`);
      seen.add(f.ref);
      if (aKeys.get(f.ref) !== fileKey(f)) problems.push(`handed over differs: A ${aKeys.get(f.ref)} handed ${fileKey(f)}`);
      if (inc2.scan.unreported(f.ref)) problems.push(`handed over and unreported: ${f.path}`);
    }
    for (const f of A.files) if (!seen.has(f.ref) && !inc2.scan.unreported(f.ref)) problems.push(`neither handed over nor unreported: ${f.path}`);
    for (const f of inc2.files) if (aKeys.has(f.ref) && !seen.has(f.ref)) problems.push(`reported without its earlier version: ${f.path}`);
  }
  const unreported = inc.scan.unreported;
  const expected = new Map(full.files.map((f) => [f.ref, fileKey(f)]));
  const got = new Map<number, string>();
  for (const f of inc.files) {
    if (got.has(f.ref)) problems.push(`reported twice: ${f.path}`);
    got.set(f.ref, fileKey(f));
  }
  if (unreported) {
    for (const f of A.files) {
      if (!unreported(f.ref)) continue;
      if (got.has(f.ref)) problems.push(`both reported and unreported: ${f.path}`);
      if (f.data.intersectBytes(changed) > 0 || f.meta.intersectBytes(changed) > 0) problems.push(`unreported yet touched by the changed bytes: ${f.path}`);
      got.set(f.ref, fileKey(f));
    }
  }
  for (const [ref, k] of expected) {
    const g = got.get(ref);
    if (g === undefined) problems.push(`missing: ${k}`);
    else if (g !== k) problems.push(`differs: full ${k} incremental ${g}`);
  }
  for (const [ref, k] of got) if (!expected.has(ref)) problems.push(`extra: ${k}`);
  sameScan('B incremental', full.scan, inc.scan, unreported ? (x) => x.intersect(changed) : (x) => x, problems);
  return { problems, incremental: unreported !== undefined, reported: inc.files.length, total: full.files.length };
}

/** A hard link's name long enough that a few of them fill a base record (the rest go to extension records). */
export const longName = (i: number) => `a-rather-long-hard-link-name-to-fill-the-base-record-number-${String(i).padStart(3, '0')}.txt`;

/**
 * A 24 MiB NTFS volume written by ntfs-3g: directories alpha, alpha/inner,
 * beta, gamma; resident and non-resident files; a file with a resident and
 * a non-resident named stream; gamma/many.txt (non-resident) with 8 long-named hard links
 * in beta, beta/streams.txt with 24 resident named streams (both
 * spill into extension records); gamma/victim.txt and gamma/f0..f29.txt.
 */
export async function makeDeltaBase(file: string): Promise<string> {
  mkntfs(file, 24 * 1024 * 1024);
  await withMounted(file, (m) => {
    for (const d of ['alpha', 'alpha/inner', 'beta', 'gamma']) mkdirSync(path.join(m, d));
    writeFileSync(path.join(m, 'alpha/one.txt'), 'one\n');
    writeFileSync(path.join(m, 'alpha/inner/two.bin'), Buffer.alloc(100_000, 2));
    writeFileSync(path.join(m, 'beta/three.txt'), 'three\n');
    writeFileSync(path.join(m, 'beta/three.txt:small'), 'a resident stream');
    writeFileSync(path.join(m, 'beta/three.txt:large'), Buffer.alloc(50_000, 3));
    writeFileSync(path.join(m, 'gamma/many.txt'), Buffer.alloc(60_000, 5));
    for (let i = 0; i < 8; i++) linkSync(path.join(m, 'gamma/many.txt'), path.join(m, 'beta', longName(i)));
    writeFileSync(path.join(m, 'beta/streams.txt'), 'many streams\n');
    for (let i = 0; i < 24; i++) writeFileSync(path.join(m, `beta/streams.txt:stream-with-a-longish-name-${i}`), Buffer.alloc(150, i));
    writeFileSync(path.join(m, 'gamma/victim.txt'), 'to be deleted\n');
    for (let i = 0; i < 30; i++) writeFileSync(path.join(m, `gamma/f${i}.txt`), `file ${i}\n`);
  });
  return file;
}

/** A scan against the full one: metadata and file data (as `clip` says), free space, state and counts. */
function sameScan(what: string, full: VolumeScan, other: VolumeScan, clip: (x: RangeSet) => RangeSet, problems: string[]): void {
  const same = (name: string, x: RangeSet, y: RangeSet) => {
    if (JSON.stringify(x.toArray()) !== JSON.stringify(y.toArray())) problems.push(`${what}: ${name}: full ${JSON.stringify(x.toArray())}, this ${JSON.stringify(y.toArray())}`);
  };
  same('metadata', clip(full.metadata), other.metadata);
  same('fileData', clip(full.fileData), other.fileData);
  same('free', full.free, other.free);
  if (JSON.stringify(full.state) !== JSON.stringify(other.state)) problems.push(`${what}: state: ${JSON.stringify(full.state)} vs ${JSON.stringify(other.state)}`);
  if (full.files !== other.files || full.directories !== other.directories) {
    problems.push(`${what}: counts: full ${full.files}/${full.directories}, this ${other.files}/${other.directories}`);
  }
}
