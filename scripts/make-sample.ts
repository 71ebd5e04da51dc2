/**
 * Generates the sample chain bundled in fixtures/sample/ (used by `npm start`).
 * Deterministic: fixed UUIDs, time stamps and data. Run: `npm run sample`
 * (or `npm run sample -- DIR` to write elsewhere).
 *
 * It never deletes what it did not write: DIR must be empty, new, or hold
 * nothing but an earlier sample (base.vhd and child.vhd, and guest/ with
 * golden.vhd and user.vhd, each with the sample's UUIDs), which is replaced
 * file by file, atomically. Anything else in DIR or DIR/guest: refused
 * (exit 6), nothing written.
 *
 * base.vhd   dynamic, 32 MiB virtual, 512 KiB blocks, ~3 MiB written.
 * child.vhd  differencing over base.vhd, as a guest leaves it: new data,
 *            sectors rewritten with the parent's own bytes, zeros over zeros,
 *            zeros over data (real data that must stay), and a block that
 *            holds nothing but copies of the parent. Synthetic bytes, no
 *            file system.
 * guest/golden.vhd, guest/user.vhd
 *            a chain holding a real FAT16 file system: see sample-guest.ts.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeFileSystem } from '../src/io/fsys.js';
import { openVhd } from '../src/vhd/image.js';
import { writeSynthChain, type SynthLayer } from '../src/synth/build.js';
import { encodeUtf16Le, type Uuid } from '../src/format/index.js';
import { patternBytes as pattern } from '../src/synth/random.js';
import { GUEST_DIR, GUEST_NAMES, GUEST_UUIDS, guestLayers } from './sample-guest.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const dir = process.argv[2] ? path.resolve(process.argv[2]) : path.join(root, 'fixtures', 'sample');

const K = 1024;
const M = 1024 * K;
const parentData = pattern(3 * M, 1);
const base: SynthLayer = {
  type: 'dynamic', virtualSize: 32 * M, blockSize: 512 * K, uniqueId: '5a3b1e00-0000-4000-8000-000000000001' as Uuid,
  timestamp: 847000000,
  writes: [{ sector: 0, data: parentData }],
};
const child: SynthLayer = {
  type: 'differencing', virtualSize: 32 * M, blockSize: 512 * K, uniqueId: '5a3b1e00-0000-4000-8000-000000000002' as Uuid,
  timestamp: 847000600,
  parentTimestamp: 847000000,
  // As Hyper-V writes them: an absolute Windows path and a relative one.
  locators: [
    { platform: 'W2ku', data: encodeUtf16Le('C:\\VMs\\sample\\base.vhd') },
    { platform: 'W2ru', data: encodeUtf16Le('.\\base.vhd') },
  ],
  writes: [
    // New data.
    { sector: 100, data: pattern(64 * K, 2) },
    { sector: 20000, data: pattern(256 * K, 3) },
    // The guest rewrote parent data unchanged (a whole block and a few runs).
    { sector: 1024, data: parentData.subarray(1024 * 512, 2048 * 512) },
    { sector: 4000, data: parentData.subarray(4000 * 512, 4100 * 512) },
    // Zeros over zeros (never written in the parent).
    { sector: 30000, data: new Uint8Array(128 * K) },
    // Zeros over the parent's data: real data that must be kept.
    { sector: 300, data: new Uint8Array(8 * K) },
  ],
};

const NAMES = ['base.vhd', 'child.vhd'];

/** The sample's files by folder (relative to DIR), with their UUIDs. */
const SETS = [
  { folder: '.', names: NAMES, uuids: [base.uniqueId, child.uniqueId] },
  { folder: GUEST_DIR, names: GUEST_NAMES, uuids: GUEST_UUIDS },
];

/** The files in `folder` that the sample did not write (by name and UUID). */
async function foreignIn(folder: string, names: string[], uuids: (string | undefined)[], subfolders: string[]): Promise<string[]> {
  if (!existsSync(folder)) return [];
  if (!statSync(folder).isDirectory()) return [path.relative(dir, folder)];
  const foreign: string[] = [];
  for (const name of readdirSync(folder)) {
    const file = path.join(folder, name);
    if (subfolders.includes(name)) continue; // checked as a set of its own
    const i = names.indexOf(name);
    const uuid = i < 0 ? null : await openVhd(nodeFileSystem, file).then(async (v) => { await v.close(); return v.meta.footer.uniqueId; }, () => null);
    if (i < 0 || uuid !== uuids[i]) foreign.push(path.relative(dir, file));
  }
  return foreign;
}

/** Why DIR may not be written, or null: vhdtool replaces only a sample it wrote itself. */
async function refusal(): Promise<string | null> {
  if (!existsSync(dir)) return null;
  if (!statSync(dir).isDirectory()) return 'is not a folder';
  const subfolders = SETS.filter((s) => s.folder !== '.').map((s) => s.folder);
  const foreign: string[] = [];
  for (const set of SETS) {
    foreign.push(...await foreignIn(path.join(dir, set.folder), set.names, set.uuids, set.folder === '.' ? subfolders : []));
  }
  if (!foreign.length) return null;
  const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? `, and ${foreign.length - 3} more` : '');
  return `is not empty (it holds ${shown}); vhdtool never deletes what it did not write: name an empty or new folder`;
}

/** Writes a chain whole beside its final names, then renames it over them: an interrupted run leaves the old files. */
async function writeSet(folder: string, layers: SynthLayer[], names: string[]): Promise<void> {
  mkdirSync(folder, { recursive: true });
  const work = path.join(folder, `.vhdtool-sample-${process.pid}`);
  mkdirSync(work);
  try {
    await writeSynthChain(nodeFileSystem, work, layers, names);
    for (const n of names) renameSync(path.join(work, n), path.join(folder, n));
    rmdirSync(work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const why = await refusal();
if (why) {
  process.stderr.write(`make-sample: ${dir}: ${why}\n`);
  process.exit(6);
}
await writeSet(dir, [base, child], NAMES);
console.log(`wrote ${path.join(dir, 'base.vhd')} and ${path.join(dir, 'child.vhd')}`);
const guest = path.join(dir, GUEST_DIR);
await writeSet(guest, guestLayers(), GUEST_NAMES);
console.log(`wrote ${GUEST_NAMES.map((n) => path.join(guest, n)).join(' and ')}`);
