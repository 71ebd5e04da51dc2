/**
 * `npm start`: the main job on the sample chain in fixtures/sample/.
 * Shows info and check, then compacts and merges into a temporary folder
 * (the bundled files are never modified) and verifies with compare.
 */
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const sample = path.join(root, 'fixtures', 'sample');
const work = mkdtempSync(path.join(tmpdir(), 'vhdtool-demo-'));
copyFileSync(path.join(sample, 'base.vhd'), path.join(work, 'base.vhd'));
copyFileSync(path.join(sample, 'child.vhd'), path.join(work, 'child.vhd'));
const child = path.join(work, 'child.vhd');
const base = path.join(work, 'base.vhd');

async function run(...args: string[]): Promise<number> {
  console.log(`\n$ vhdtool ${args.map((a) => (a.includes(' ') ? JSON.stringify(a) : a)).join(' ')}`);
  const code = await main(['node', 'vhdtool', ...args]);
  if (code !== 0) console.log(`(exit ${code})`);
  return code;
}

console.log(`Sample chain copied to ${work}`);
let failed = 0;
const expect0 = async (...a: string[]) => { if ((await run(...a)) !== 0) failed++; };
await expect0('info', child);
await expect0('check', child);
await expect0('compact', child, '--dry-run');
await expect0('merge', child, base, path.join(work, 'merged.vhd'));
await expect0('compact', child);
await expect0('compare', child, path.join(work, 'merged.vhd'));
await expect0('check', child, path.join(work, 'merged.vhd'));
console.log(failed ? `\n${failed} step(s) failed` : `\nAll steps succeeded. Results are in ${work}`);
process.exitCode = failed ? 1 : 0;
