/**
 * The data set of `npm run bench`'s diff case (issue 15): a 16 GiB NTFS
 * volume with 200,000 files, and a child disk in which 1,000 of them changed.
 * Built once into .bench-cache/diff-<GEN_VERSION>/ (meta.json written last:
 * a directory without it is incomplete, wiped and rebuilt):
 *
 *  1. a.raw: mkntfs (4 KiB clusters) on a sparse 16 GiB file, filled through
 *     ntfs-3g (FUSE) with 400 folders of 500 files, sizes from a seeded PRNG
 *     (most a few hundred bytes, resident in the MFT; some KiBs; a few
 *     hundred KiB);
 *  2. b.raw: a copy, then through ntfs-3g 600 files rewritten in place, 150
 *     deleted, 150 added, 100 renamed (the same seed picks them);
 *  3. base.vhd: a.raw as a dynamic VHD (qemu-img convert -O vpc, the size
 *     kept exactly); user.vhd: b.raw imported as a child of base.vhd by
 *     `vhdtool rebase --output` (it holds exactly the sectors that differ);
 *  4. the byte ranges of both $MFTs (Sleuth Kit's istat of record 0) and of
 *     the sectors user.vhd holds: what the baseline reads.
 *
 * The PRNG fixes what is written where; ntfs-3g places it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, writeSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { mulberry32 } from '../src/synth/random.js';
import { withNtfs } from './bench-ntfs.js';

export const DIFF_GEN_VERSION = 'g1';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export interface DiffSpec {
  volumeBytes: number;
  folders: number;
  filesPerFolder: number;
  changes: { modified: number; deleted: number; added: number; renamed: number };
  seed: number;
}

export const DIFF_SPEC: DiffSpec = {
  volumeBytes: 16 * GiB,
  folders: 400,
  filesPerFolder: 500,
  changes: { modified: 600, deleted: 150, added: 150, renamed: 100 },
  seed: 0xd1ff_0001,
};

/** A small version for harness smoke tests (`--small`). */
export const SMALL_DIFF_SPEC: DiffSpec = {
  volumeBytes: 2 * GiB,
  folders: 40,
  filesPerFolder: 250,
  changes: { modified: 60, deleted: 15, added: 15, renamed: 10 },
  seed: 0xd1ff_0002,
};

export interface DiffMeta {
  generator: string;
  spec: DiffSpec;
  base: string;
  user: string;
  files: number;
  /** Bytes of the two $MFTs and of the sectors user.vhd holds ([start, end) on the disk). */
  mftA: Array<[number, number]>;
  mftB: Array<[number, number]>;
  held: Array<[number, number]>;
  /** What diff must report. */
  expect: { added: number; deleted: number; modified: number; renamed: number };
  dataBytes: number;
  generatedAt: string;
  generateSeconds: number;
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 512 * MiB });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** File sizes: 60% 200-900 bytes (resident), 38% 1-16 KiB, 2% 64-512 KiB. */
function sizeOf(rnd: () => number): number {
  const x = rnd();
  if (x < 0.6) return 200 + Math.floor(rnd() * 700);
  if (x < 0.98) return KiB + Math.floor(rnd() * 15 * KiB);
  return 64 * KiB + Math.floor(rnd() * 448 * KiB);
}

/** Cheap deterministic content (its bytes do not matter to diff's cost, only where it lies). */
function contentOf(size: number, seed: number, buf: Buffer): Buffer {
  const b = buf.subarray(0, size);
  const word = (seed * 2654435761) >>> 0;
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE((word + i) >>> 0, i);
  for (let i = size & ~3; i < size; i++) b[i] = seed & 0xff;
  return b;
}

const nameOf = (folder: number, file: number) => `d${String(folder).padStart(3, '0')}/f${String(file).padStart(4, '0')}.dat`;

function populate(mnt: string, spec: DiffSpec, rnd: () => number, buf: Buffer): number {
  let bytes = 0;
  for (let d = 0; d < spec.folders; d++) {
    mkdirSync(path.join(mnt, `d${String(d).padStart(3, '0')}`));
    for (let f = 0; f < spec.filesPerFolder; f++) {
      const size = sizeOf(rnd);
      writeFileSync(path.join(mnt, nameOf(d, f)), contentOf(size, d * 100000 + f, buf));
      bytes += size;
    }
  }
  return bytes;
}

/** The 1,000 changes; returns what diff must report. */
function change(mnt: string, spec: DiffSpec, rnd: () => number, buf: Buffer): DiffMeta['expect'] {
  const total = spec.folders * spec.filesPerFolder;
  const picked = new Set<number>();
  const pick = () => {
    for (;;) {
      const i = Math.floor(rnd() * total);
      if (!picked.has(i)) { picked.add(i); return i; }
    }
  };
  const where = (i: number) => nameOf(Math.floor(i / spec.filesPerFolder), i % spec.filesPerFolder);
  const c = spec.changes;
  for (let k = 0; k < c.modified; k++) {
    // In place: the same file, the same size, its first bytes rewritten.
    const p = path.join(mnt, where(pick()));
    const fd = openSync(p, 'r+');
    try {
      writeSync(fd, Buffer.from(`changed ${k} `.padEnd(32, '.')), 0, 32, 0);
    } finally {
      closeSync(fd);
    }
  }
  for (let k = 0; k < c.deleted; k++) unlinkSync(path.join(mnt, where(pick())));
  for (let k = 0; k < c.added; k++) {
    const d = Math.floor(rnd() * spec.folders);
    writeFileSync(path.join(mnt, `d${String(d).padStart(3, '0')}`, `new${String(k).padStart(4, '0')}.dat`), contentOf(sizeOf(rnd), 7_000_000 + k, buf));
  }
  for (let k = 0; k < c.renamed; k++) {
    const from = where(pick());
    const d = Math.floor(rnd() * spec.folders);
    renameSync(path.join(mnt, from), path.join(mnt, `d${String(d).padStart(3, '0')}`, `renamed${String(k).padStart(4, '0')}.dat`));
  }
  return { added: c.added, deleted: c.deleted, modified: c.modified, renamed: c.renamed };
}

/** The $MFT's clusters (Sleuth Kit's istat of record 0, $DATA) as byte ranges. */
function mftRanges(raw: string): Array<[number, number]> {
  const out = sh('istat', [raw, '0']);
  const at = out.indexOf('Type: $DATA');
  const cs = Number(/Cluster Size: (\d+)/.exec(sh('fsstat', [raw]))![1]);
  const clusters = out.slice(at).split('\n').slice(1).filter((l) => /^[\d ]+$/.test(l.trim()) && l.trim()).flatMap((l) => l.trim().split(/\s+/).map(Number));
  const ranges: Array<[number, number]> = [];
  for (const c of clusters) {
    const last = ranges[ranges.length - 1];
    if (last && last[1] === c * cs) last[1] += cs;
    else ranges.push([c * cs, (c + 1) * cs]);
  }
  return ranges;
}

/** The sectors a differencing disk holds (its bitmaps), as byte ranges. */
async function heldRanges(user: string): Promise<Array<[number, number]>> {
  const { openChain } = await import('../src/chain/openChain.js');
  const { layerHoldings } = await import('../src/chain/holdings.js');
  const { nodeFileSystem } = await import('../src/io/fsys.js');
  const chain = await openChain(nodeFileSystem, user, { mode: 'strict' });
  try {
    return layerHoldings(chain.layersLeafFirst[0]).sectors.toArray();
  } finally {
    await chain.close();
  }
}

export async function ensureDiffVolumes(cacheRoot: string, spec: DiffSpec, name: string, vhdtool: string, log: (s: string) => void): Promise<DiffMeta> {
  const dir = path.join(cacheRoot, `${name}-${DIFF_GEN_VERSION}`);
  const metaFile = path.join(dir, 'meta.json');
  if (existsSync(metaFile)) return JSON.parse(readFileSync(metaFile, 'utf8')) as DiffMeta;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  const a = path.join(dir, 'a.raw');
  const b = path.join(dir, 'b.raw');
  closeSync(openSync(a, 'w'));
  spawnSync('truncate', ['-s', String(spec.volumeBytes), a]);
  sh('mkntfs', ['-F', '-Q', '-q', '-c', '4096', '-s', '512', '-L', 'BENCH', a]);
  const rnd = mulberry32(spec.seed);
  const buf = Buffer.alloc(512 * KiB);
  let dataBytes = 0;
  log(`  writing ${spec.folders * spec.filesPerFolder} files through ntfs-3g (a few minutes, once)`);
  await withNtfs(a, (mnt) => { dataBytes = populate(mnt, spec, rnd, buf); });
  sh('cp', ['--sparse=always', a, b]);
  log('  changing 1,000 of them');
  let expect: DiffMeta['expect'] = { added: 0, deleted: 0, modified: 0, renamed: 0 };
  await withNtfs(b, (mnt) => { expect = change(mnt, spec, rnd, buf); });
  const base = path.join(dir, 'base.vhd');
  const user = path.join(dir, 'user.vhd');
  log('  base.vhd (qemu-img convert) and user.vhd (vhdtool rebase --output: the import path)');
  sh('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=dynamic,force_size=on', a, base]);
  sh(process.execPath, [vhdtool, 'rebase', b, '--onto', base, '--output', user, '--no-progress', '--json']);
  const meta: DiffMeta = {
    generator: DIFF_GEN_VERSION, spec, base, user, files: spec.folders * spec.filesPerFolder,
    mftA: mftRanges(a), mftB: mftRanges(b), held: await heldRanges(user), expect, dataBytes,
    generatedAt: new Date().toISOString(), generateSeconds: (Date.now() - t0) / 1000,
  };
  // The raw images are not needed any more (the VHDs hold the same views).
  rmSync(a);
  rmSync(b);
  writeFileSync(metaFile, JSON.stringify(meta, null, 2));
  log(`  done in ${meta.generateSeconds.toFixed(0)} s; ${(statSync(base).size / MiB).toFixed(0)} MiB base, ${(statSync(user).size / MiB).toFixed(0)} MiB child`);
  return meta;
}
