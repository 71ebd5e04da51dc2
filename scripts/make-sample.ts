/**
 * Generates the sample chain bundled in fixtures/sample/ (used by `npm start`).
 * Deterministic: fixed UUIDs, time stamps and data. Run: `npm run sample`
 * (or `node dist/scripts/make-sample.js DIR` to write elsewhere).
 *
 * base.vhd   dynamic, 32 MiB virtual, 512 KiB blocks, ~3 MiB written.
 * child.vhd  differencing over base.vhd, as a guest leaves it: new data,
 *            sectors rewritten with the parent's own bytes, zeros over zeros,
 *            zeros over data (real data that must stay), and a block that
 *            holds nothing but copies of the parent.
 */
import { rmSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeFileSystem } from '../src/io/fsys.js';
import { writeSynthChain, type SynthLayer } from '../src/synth/build.js';
import { encodeUtf16Le, type Uuid } from '../src/format/index.js';
import { patternBytes as pattern } from '../src/synth/random.js';

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

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
await writeSynthChain(nodeFileSystem, dir, [base, child], ['base.vhd', 'child.vhd']);
console.log(`wrote ${path.join(dir, 'base.vhd')} and ${path.join(dir, 'child.vhd')}`);
