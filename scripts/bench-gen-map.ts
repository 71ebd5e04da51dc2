/**
 * The data set of `map`'s benchmark (issue 13): a chain whose leaf holds
 * about 1 GiB over a 16 GiB NTFS volume with 200,000 files.
 *
 *   base.img   mkntfs on a sparse 16 GiB file, then 200 folders of 1000 files
 *              (0-6 KB each) written through ntfs-3g (FUSE);
 *   leaf.img   a copy of it where 1 GiB more was written: one 768 MiB file and
 *              1024 files of 256 KiB in a new folder;
 *   base.vhd   base.img as a dynamic VHD (qemu-img convert, force_size: the
 *              exact 16 GiB);
 *   child.vhd  `vhdtool rebase leaf.img --onto base.vhd --output child.vhd`:
 *              a child holding only the sectors that changed.
 *
 * leaf.img stays (sparse, about 1.3 GB on disk): the baseline reads the
 * $MFT's runs from it, as `ntfsinfo -v -i 0` lists them. The layout (names,
 * sizes, order of writes) is fixed; data is random, as in the other sets.
 * Needs root, /dev/fuse, ntfs-3g, mkntfs, ntfsinfo and qemu-img; without
 * them the case is skipped with a message.
 */
import { randomFillSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { mulberry32 } from '../src/synth/random.js';
import { withNtfs } from './bench-ntfs.js';

export const MAP_GEN_VERSION = 'g1';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface MapMeta {
  generator: string;
  base: string;
  child: string;
  /** The raw image of the leaf's state (the baseline reads the $MFT's runs from it). */
  leafImage: string;
  virtualSize: number;
  files: number;
  /** The $MFT's runs in the volume, bytes: [offset, length] (ntfsinfo -v -i 0). */
  mftRuns: Array<[number, number]>;
  mftBytes: number;
  clusterSize: number;
  childFileBytes: number;
  baseFileBytes: number;
  /** Sectors the child holds, in bytes (its bitmaps). */
  childHeldBytes: number;
  generatedAt: string;
  generateSeconds: number;
}

/** Why the case cannot run here, or null. */
export function mapUnavailable(): string | null {
  const has = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).error === undefined;
  if (process.getuid?.() !== 0) return 'not root (ntfs-3g needs to mount through FUSE)';
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing';
  for (const t of ['ntfs-3g', 'mkntfs', 'ntfsinfo', 'qemu-img']) if (!has(t, '--version')) return `${t} not found (apt-get install ntfs-3g qemu-utils)`;
  return null;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`bench-gen-map: ${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout || String(r.error)).trim().split('\n').slice(-2).join(' | ')}`);
  return r.stdout;
}

/** The $MFT's runs (LCN, clusters) as ntfs-3g decodes them. */
function mftRuns(img: string): { runs: Array<[number, number]>; clusterSize: number } {
  const text = run('ntfsinfo', ['-v', '-i', '0', img]);
  const cs = /Cluster Size:\s+(\d+)/.exec(run('ntfsinfo', ['-m', img]))?.[1];
  const clusterSize = Number(cs);
  if (!(clusterSize > 0)) throw new Error('bench-gen-map: no cluster size from ntfsinfo -m');
  // The runlist of the $DATA attribute (0x80): lines "\t\t\t0xVCN\t\t0xLCN\t\t0xLENGTH".
  const data = text.slice(text.indexOf('Dumping attribute $DATA'));
  const end = data.indexOf('Dumping attribute', 10);
  const runs: Array<[number, number]> = [];
  for (const m of (end > 0 ? data.slice(0, end) : data).matchAll(/^\t\t\t0x[0-9a-f]+\t\t0x([0-9a-f]+)\t\t0x([0-9a-f]+)/gm)) {
    runs.push([parseInt(m[1], 16) * clusterSize, parseInt(m[2], 16) * clusterSize]);
  }
  if (runs.length === 0) throw new Error('bench-gen-map: no $MFT runs in ntfsinfo -v -i 0');
  return { runs, clusterSize };
}

export async function ensureMapChain(cacheRoot: string, vhdtool: string, log: (s: string) => void): Promise<MapMeta> {
  const dir = path.resolve(cacheRoot, `map-${MAP_GEN_VERSION}`);
  const metaFile = path.join(dir, 'meta.json');
  if (existsSync(metaFile)) return JSON.parse(readFileSync(metaFile, 'utf8')) as MapMeta;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  const virtualSize = 16 * GiB;
  const baseImg = path.join(dir, 'base.img');
  const leafImg = path.join(dir, 'leaf.img');
  const rnd = mulberry32(0x7e57_a7f5);

  log('  generating the NTFS volume: mkntfs, 200,000 files through ntfs-3g (a few minutes)');
  closeSync(openSync(baseImg, 'w'));
  spawnSync('truncate', ['-s', String(virtualSize), baseImg]);
  run('mkntfs', ['-F', '-Q', '-q', baseImg]);
  const blob = Buffer.alloc(6000);
  for (let i = 0; i < blob.length; i++) blob[i] = Math.floor(rnd() * 256);
  let files = 0;
  await withNtfs(baseImg, (m) => {
    for (let d = 0; d < 200; d++) {
      mkdirSync(path.join(m, `d${d}`));
      for (let i = 0; i < 1000; i++) {
        writeFileSync(path.join(m, `d${d}`, `file${i}.dat`), blob.subarray(0, (i * 37 + d) % 6000));
        files++;
      }
      if ((d + 1) % 50 === 0) log(`  generating the NTFS volume: ${files} files`);
    }
  });

  log('  generating the leaf state: 1 GiB written');
  run('cp', ['--sparse=always', baseImg, leafImg]);
  const buf = Buffer.alloc(4 * MiB);
  await withNtfs(leafImg, (m) => {
    const fd = openSync(path.join(m, 'large.bin'), 'w');
    for (let i = 0; i < 768 / 4; i++) writeSync(fd, randomFillSync(buf));
    closeSync(fd);
    mkdirSync(path.join(m, 'new'));
    for (let i = 0; i < 1024; i++) writeFileSync(path.join(m, 'new', `part${i}.bin`), randomFillSync(buf.subarray(0, 256 * 1024)));
    files += 1025;
  });

  log('  converting: base.vhd (qemu-img), child.vhd (vhdtool rebase)');
  const base = path.join(dir, 'base.vhd');
  const child = path.join(dir, 'child.vhd');
  run('qemu-img', ['convert', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=dynamic,force_size=on', baseImg, base]);
  rmSync(baseImg);
  run(process.execPath, [vhdtool, 'rebase', leafImg, '--onto', base, '--output', child, '--no-progress', '--json']);
  const info = JSON.parse(run(process.execPath, [vhdtool, 'info', child, '--json'])) as { virtualSize: number; sectorsSet: number };
  if (info.virtualSize !== virtualSize) throw new Error(`bench-gen-map: child is ${info.virtualSize} bytes, expected ${virtualSize}`);
  const { runs, clusterSize } = mftRuns(leafImg);
  const meta: MapMeta = {
    generator: MAP_GEN_VERSION, base, child, leafImage: leafImg, virtualSize, files,
    mftRuns: runs, mftBytes: runs.reduce((n, [, l]) => n + l, 0), clusterSize,
    childFileBytes: statSync(child).size, baseFileBytes: statSync(base).size, childHeldBytes: info.sectorsSet * 512,
    generatedAt: new Date().toISOString(), generateSeconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(metaFile, JSON.stringify(meta, null, 2) + '\n');
  return meta;
}
