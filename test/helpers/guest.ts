/**
 * Real file systems in disk images, made by their own tools without mounting
 * (sfdisk, mkntfs/ntfscp, mkfs.fat/mcopy, mkfs.ext4 -d/debugfs), and turned
 * into VHD chains whose child owns exactly the sectors that changed. Tests
 * skip when a tool is missing; `.ci/run` installs them all.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, writeSync, ftruncateSync, fstatSync } from 'node:fs';
import * as path from 'node:path';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain, type SynthLayer, type SynthWrite } from '../../src/synth/build.js';
import type { BuiltLayer } from '../../src/synth/build.js';
import { RangeSetBuilder, type RangeSet } from '../../src/guest/ranges.js';

const has = (cmd: string, arg = '--version') => spawnSync(cmd, [arg], { stdio: 'ignore' }).error === undefined;
export const HAVE_SFDISK = has('sfdisk');
export const HAVE_MKNTFS = has('mkntfs');
export const HAVE_NTFSCP = has('ntfscp');
export const HAVE_MKFS_FAT = has('mkfs.fat');
export const HAVE_MTOOLS = has('mcopy');
export const HAVE_MKFS_EXT4 = has('mkfs.ext4', '-V');
export const HAVE_DEBUGFS = has('debugfs', '-V');
/** Sleuth Kit, the independent reader of guest file systems. */
export const HAVE_TSK = has('fls', '-V');

/** Runs a tool; returns its standard output. Throws with its standard error on failure. */
export function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** A new sparse file of `bytes` zeros. */
export function blankImage(file: string, bytes: number): string {
  const fd = openSync(file, 'wx');
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  return file;
}

/** Writes a partition table with sfdisk (`script` in sfdisk's input format, e.g. "label: dos\nstart=63, size=..., type=7\n"). */
export function partition(file: string, script: string): void {
  run('sfdisk', ['--no-reread', '--no-tell-kernel', '-q', file], script);
}

/** Copies the whole of `part` into `disk` at byte `offset`. */
export function embed(disk: string, part: string, offset: number): void {
  const src = openSync(part, 'r');
  const dst = openSync(disk, 'r+');
  try {
    const size = fstatSync(src).size;
    const buf = Buffer.alloc(4 * 1024 * 1024);
    for (let at = 0; at < size;) {
      const n = readSync(src, buf, 0, Math.min(buf.length, size - at), at);
      if (n <= 0) break;
      if (!buf.subarray(0, n).every((b) => b === 0)) writeSync(dst, buf, 0, n, offset + at);
      at += n;
    }
  } finally {
    closeSync(src);
    closeSync(dst);
  }
}

/** Reads `length` bytes of a file at `offset` (a partition out of a disk image, for the oracles). */
export function extract(disk: string, offset: number, length: number, out: string): string {
  execFileSync('dd', [`if=${disk}`, `of=${out}`, 'bs=512', `skip=${offset / 512}`, `count=${Math.ceil(length / 512)}`, 'status=none']);
  return out;
}

/** Runs of sectors of `bytes` that are not all zero (a base layer holds only those). */
function nonZeroWrites(bytes: Uint8Array): SynthWrite[] {
  return runsWhere(bytes.length / 512, (s) => {
    for (let i = s * 512; i < s * 512 + 512; i++) if (bytes[i] !== 0) return true;
    return false;
  }, bytes);
}

/** Runs of sectors where `after` differs from `before`. */
function changedWrites(before: Uint8Array, after: Uint8Array): SynthWrite[] {
  return runsWhere(after.length / 512, (s) => {
    for (let i = s * 512; i < s * 512 + 512; i++) if (before[i] !== after[i]) return true;
    return false;
  }, after);
}

function runsWhere(sectors: number, pick: (s: number) => boolean, from: Uint8Array): SynthWrite[] {
  const out: SynthWrite[] = [];
  for (let s = 0; s < sectors;) {
    if (!pick(s)) { s++; continue; }
    let e = s + 1;
    while (e < sectors && pick(e)) e++;
    out.push({ sector: s, data: from.subarray(s * 512, e * 512) });
    s = e;
  }
  return out;
}

/**
 * A chain from raw images of the same size: `base.vhd` (dynamic) holding
 * `images[0]`, then one differencing layer per later image, each holding
 * exactly the sectors that differ from the image before it.
 */
export async function chainFromImages(dir: string, images: string[], names?: string[]): Promise<BuiltLayer[]> {
  const raws = images.map((f) => new Uint8Array(readFileSync(f)));
  const size = raws[0].length;
  if (size % 512 !== 0 || raws.some((r) => r.length !== size)) throw new Error('images must have one size, a multiple of 512');
  const layers: SynthLayer[] = raws.map((r, i) => ({
    type: i === 0 ? 'dynamic' : 'differencing',
    virtualSize: size,
    writes: i === 0 ? nonZeroWrites(r) : changedWrites(raws[i - 1], r),
  }));
  return writeSynthChain(nodeFileSystem, dir, layers, names ?? images.map((f, i) => (i === 0 ? 'base.vhd' : `${path.basename(f).replace(/\.[^.]*$/, '')}.vhd`)));
}

/** Bytes of the sectors where two images of one size differ: what a child of the first holds when it was written into the second. */
export function changedSectors(a: string, b: string): RangeSet {
  const x = readFileSync(a);
  const y = readFileSync(b);
  const out = new RangeSetBuilder();
  for (let s = 0; s < x.length; s += 512) if (!x.subarray(s, s + 512).equals(y.subarray(s, s + 512))) out.add(s, s + 512);
  return out.build();
}
