/**
 * The baseline of the diff benchmark (scripts/bench-diff-gen.ts): what diff
 * cannot avoid reading, read through vhdtool's own chain reader and nothing
 * else: both volumes' $MFT (each through its own chain) and the sectors the
 * child holds, on both sides. Usage: node dist/scripts/bench-read-ranges.js META.json
 * Prints {"bytes": N}.
 */
import { readFileSync } from 'node:fs';
import { openChain } from '../src/chain/openChain.js';
import { ChainReader } from '../src/chain/reader.js';
import { nodeFileSystem } from '../src/io/fsys.js';
import type { DiffMeta } from './bench-diff-gen.js';

const CHUNK = 4 * 1024 * 1024;

async function readAll(disk: string, lists: Array<Array<[number, number]>>): Promise<number> {
  const chain = await openChain(nodeFileSystem, disk, { mode: 'strict' });
  const reader = new ChainReader(chain);
  const buf = new Uint8Array(CHUNK);
  let n = 0;
  try {
    for (const ranges of lists) {
      for (const [s, e] of ranges) {
        for (let at = s; at < e; at += CHUNK) {
          const len = Math.min(CHUNK, e - at);
          await reader.read(at, len, buf.subarray(0, len));
          n += len;
        }
      }
    }
  } finally {
    await chain.close();
  }
  return n;
}

const meta = JSON.parse(readFileSync(process.argv[2], 'utf8')) as DiffMeta;
const bytes = (await readAll(meta.base, [meta.mftA, meta.held])) + (await readAll(meta.user, [meta.mftB, meta.held]));
process.stdout.write(JSON.stringify({ bytes }) + '\n');
