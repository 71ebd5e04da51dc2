/**
 * Measures the FAT reader on a large synthetic FAT32 volume (not a test:
 * figures for the notes). Writes a sparse image holding a valid FAT32 file
 * system: boot sector, FSInfo, two FAT copies, a root directory of D
 * subdirectories with long names, 80 files in each, every other file in two
 * fragments, about half the clusters in use. Then scans it once through a
 * file source and prints time, peak RSS and the scan's figures.
 *
 *   node dist/scripts/fat-large.js FILE [--bytes N] [--dirs D] [--spc S] [--keep] [--scan-only]
 *
 * Defaults: 2 TiB - 1 MiB (2^32 - 2048 sectors), 2500 directories (200,000
 * files), 16 sectors (8 KiB) per cluster: 268 million clusters, a 1 GiB FAT.
 * The image takes 2 GiB of real disk (the FATs); it is removed unless --keep.
 * --scan-only scans an image a run with --keep left (same options).
 */
import { closeSync, openSync, rmSync, ftruncateSync, writeSync } from 'node:fs';
import { nodeFileSystem } from '../src/io/fsys.js';
import { fileSource } from '../src/io/rawSource.js';
import { fatReader } from '../src/guest/fat/volume.js';
import { shortNameChecksum } from '../src/guest/fat/dirs.js';

const args = process.argv.slice(2);
const FLAGS = new Set(['--keep', '--scan-only']);
const file = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--') && !FLAGS.has(args[i - 1])));
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
if (!file) {
  console.error('usage: fat-large FILE [--bytes N] [--dirs D] [--spc S] [--keep]');
  process.exit(2);
}
const BYTES = opt('bytes', 2 ** 41 - 2 ** 20);
const DIRS = opt('dirs', 2500);
const SPC = opt('spc', 16);
const PER_DIR = 80;
const BPS = 512;
const CS = BPS * SPC;
const RESERVED = 32;
const total = Math.floor(BYTES / BPS);
if (CS < 64 + PER_DIR * 64) throw new Error(`a subdirectory of ${PER_DIR} files needs ${64 + PER_DIR * 64}-byte clusters: use --spc 16 or more`);

// FAT size: the smallest that holds an entry for every cluster it leaves room for.
let fatSectors = 1;
let count = 0;
for (;;) {
  count = Math.floor((total - RESERVED - 2 * fatSectors) / SPC);
  const need = Math.ceil(((count + 2) * 4) / BPS);
  if (need <= fatSectors) break;
  fatSectors = need;
}
const files = DIRS * PER_DIR;
const rootClusters = Math.ceil((DIRS * 64) / CS);
const dirBase = 2 + rootClusters;
const fileBase = dirBase + DIRS;
const L = Math.floor(count / 2 / files);
if (L < 2 || fileBase + files * L > count + 2) throw new Error('volume too small for that many files');
const dataStart = (RESERVED + 2 * fatSectors) * BPS;
const clusterAt = (c: number) => dataStart + (c - 2) * CS;

/** The FAT entry of cluster c in this layout. */
function entry(c: number): number {
  if (c === 0) return 0x0ffffff8;
  if (c === 1) return 0x0fffffff;
  if (c < dirBase) return c === dirBase - 1 ? 0x0fffffff : c + 1;
  if (c < fileBase) return 0x0fffffff;
  const k = Math.floor((c - fileBase) / L);
  if (k >= files) return 0;
  const s = fileBase + k * L;
  const j = c - s;
  if (k % 2 === 0) {
    // Two fragments: the chain starts at the second half, then jumps back to the first.
    const h = L >> 1;
    if (j === L - 1) return s;
    if (j === h - 1) return 0x0fffffff;
    return c + 1;
  }
  return j === L - 1 ? 0x0fffffff : c + 1;
}
const fileStart = (k: number) => fileBase + k * L + (k % 2 === 0 ? L >> 1 : 0);
const fileSize = (k: number) => L * CS - (k % (CS - 1)) - 1;

function put16(b: Uint8Array, o: number, v: number) {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}
function put32(b: Uint8Array, o: number, v: number) {
  put16(b, o, v & 0xffff);
  put16(b, o + 2, v >>> 16);
}

function bootSector(): Uint8Array {
  const b = new Uint8Array(512);
  b.set([0xeb, 0x58, 0x90], 0);
  b.set(Buffer.from('SYNTHFAT'), 3);
  put16(b, 11, BPS);
  b[13] = SPC;
  put16(b, 14, RESERVED);
  b[16] = 2;
  b[21] = 0xf8;
  put32(b, 32, total);
  put32(b, 36, fatSectors);
  put32(b, 44, 2);
  put16(b, 48, 1);
  put16(b, 50, 6);
  b[0x42] = 0x29;
  b.set(Buffer.from('NO NAME    '), 0x47);
  b.set(Buffer.from('FAT32   '), 0x52);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

function fsInfo(): Uint8Array {
  const b = new Uint8Array(512);
  put32(b, 0, 0x41615252);
  put32(b, 484, 0x61417272);
  put32(b, 488, 0xffffffff);
  put32(b, 492, 0xffffffff);
  put32(b, 508, 0xaa550000);
  return b;
}

/** A long-name slot and a short entry for `long` (at most 13 characters). */
function entryPair(out: Uint8Array, at: number, long: string, short11: string, attr: number, cluster: number, size: number) {
  out.set(Buffer.from(short11.padEnd(11, ' '), 'latin1'), at + 32);
  out[at] = 0x41;
  out[at + 11] = 0x0f;
  out[at + 13] = shortNameChecksum(out, at + 32);
  const offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
  for (let i = 0; i < 13; i++) put16(out, at + offsets[i], i < long.length ? long.charCodeAt(i) : i === long.length ? 0 : 0xffff);
  out[at + 32 + 11] = attr;
  put16(out, at + 32 + 20, cluster >>> 16);
  put16(out, at + 32 + 26, cluster & 0xffff);
  put32(out, at + 32 + 28, size);
}

function rootDir(): Uint8Array {
  const b = new Uint8Array(rootClusters * CS);
  for (let d = 0; d < DIRS; d++) entryPair(b, d * 64, `dir ${d}`, `D${String(d).padStart(7, '0')}`, 0x10, dirBase + d, 0);
  return b;
}

function subDir(d: number): Uint8Array {
  const b = new Uint8Array(CS);
  const dot = (at: number, name: string, cluster: number) => {
    b.set(Buffer.from(name.padEnd(11, ' ')), at);
    b[at + 11] = 0x10;
    put16(b, at + 20, cluster >>> 16);
    put16(b, at + 26, cluster & 0xffff);
  };
  dot(0, '.', dirBase + d);
  dot(32, '..', 0);
  for (let i = 0; i < PER_DIR; i++) {
    const k = d * PER_DIR + i;
    entryPair(b, 64 + i * 64, `f${k}.dat`, `F${String(k).padStart(7, '0')}DAT`, 0x20, fileStart(k), fileSize(k));
  }
  return b;
}

function write(): void {
  const fd = openSync(file!, 'w');
  try {
    ftruncateSync(fd, BYTES);
    const w = (buf: Uint8Array, at: number) => writeSync(fd, buf, 0, buf.length, at);
    w(bootSector(), 0);
    w(fsInfo(), BPS);
    w(bootSector(), 6 * BPS);
    const fatBytes = fatSectors * BPS;
    const WIN = 4 * 1024 * 1024;
    const buf = new Uint8Array(WIN);
    const view = new DataView(buf.buffer);
    for (let off = 0; off < fatBytes; off += WIN) {
      const len = Math.min(WIN, fatBytes - off);
      for (let o = 0; o < len; o += 4) {
        const c = (off + o) / 4;
        view.setUint32(o, c <= count + 1 ? entry(c) : 0, true);
      }
      w(buf.subarray(0, len), RESERVED * BPS + off);
      w(buf.subarray(0, len), RESERVED * BPS + fatBytes + off);
    }
    w(rootDir(), clusterAt(2));
    for (let d = 0; d < DIRS; d++) w(subDir(d), clusterAt(dirBase + d));
  } finally {
    closeSync(fd);
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  if (!args.includes('--scan-only')) write();
  const t1 = performance.now();
  const f = await nodeFileSystem.openRead(file!);
  try {
    const rssBefore = process.resourceUsage().maxRSS;
    const t2 = performance.now();
    const cpu0 = process.cpuUsage();
    const vol = await fatReader.open(fileSource(f, BYTES));
    let seen = 0;
    const scan = await vol.scan({ onFile: () => { seen++; } });
    const cpu = process.cpuUsage(cpu0);
    const t3 = performance.now();
    const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;
    console.log(JSON.stringify({
      volumeBytes: BYTES,
      clusters: count,
      clusterSize: CS,
      fatBytes: fatSectors * BPS,
      files,
      directories: DIRS,
      clustersPerFile: L,
      writeSeconds: +((t1 - t0) / 1000).toFixed(1),
      scanSeconds: +((t3 - t2) / 1000).toFixed(2),
      scanCpuSeconds: { user: +(cpu.user / 1e6).toFixed(2), system: +(cpu.system / 1e6).toFixed(2) },
      maxRssBeforeScan: mib(rssBefore),
      maxRss: mib(process.resourceUsage().maxRSS),
      scan: {
        kind: vol.kind,
        state: scan.state.state,
        files: scan.files,
        directories: scan.directories,
        seen,
        freeBytes: scan.free.bytes,
        metadataBytes: scan.metadata.bytes,
        fileDataBytes: scan.fileData.bytes,
        freeRanges: scan.free.count,
        anomalies: scan.anomalies.map((a) => a.kind),
      },
      expected: { fileDataBytes: files * L * CS, freeBytes: (count + 2 - fileBase - files * L) * CS },
    }, null, 1));
  } finally {
    await f.close();
    if (!args.includes('--keep')) rmSync(file!);
  }
}

await main();
