/**
 * `npm start`: the main jobs on the sample chains in fixtures/sample/, run
 * on copies in a temporary folder (or in DIR: `npm start -- DIR`, a new or
 * empty folder); the bundled files are never modified. Each command is
 * printed before it runs, with paths relative to that folder, where the
 * commands run.
 *
 * Part 1, base.vhd and child.vhd (synthetic bytes): info, check, compact
 * --dry-run, merge, compact, compare, check.
 * Part 2, guest/golden.vhd and guest/user.vhd (a FAT16 file system written
 * by a guest; scripts/sample-guest.ts): map --files --svg, diff, compact
 * --free-space (dry run, then for real), create a second user's disk,
 * convert the user's disk to a standalone one and rebase that back onto the
 * golden image, check.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const sample = path.join(root, 'fixtures', 'sample');
const FILES = ['base.vhd', 'child.vhd', 'guest/golden.vhd', 'guest/user.vhd'];

/** The working folder: DIR when given (new or empty), else a new temporary folder. */
function workFolder(): string {
  const dir = process.argv[2];
  if (!dir) return mkdtempSync(path.join(tmpdir(), 'vhdtool-demo-'));
  const abs = path.resolve(dir);
  if (existsSync(abs) && readdirSync(abs).length) {
    process.stderr.write(`demo: ${abs}: is not empty; name a new or empty folder\n`);
    process.exit(6);
  }
  mkdirSync(abs, { recursive: true });
  return abs;
}

const work = workFolder();
for (const f of FILES) {
  mkdirSync(path.dirname(path.join(work, f)), { recursive: true });
  copyFileSync(path.join(sample, f), path.join(work, f));
}
process.chdir(work);

let failed = 0;

/** Runs one command as typed; a step fails when its exit status is not `expected`. */
async function run(args: string[], expected = 0): Promise<void> {
  console.log(`\n$ vhdtool ${args.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const code = await main(['node', 'vhdtool', ...args]);
  if (code !== 0) console.log(`(exit ${code})`);
  if (code !== expected) failed++;
}

const say = (line: string) => console.log(`\n# ${line}`);

console.log(`Sample chains copied to ${work}; the commands below run there.`);

say('Part 1: base.vhd and child.vhd, a chain of synthetic bytes.');
await run(['info', 'child.vhd']);
await run(['check', 'child.vhd']);
await run(['compact', 'child.vhd', '--dry-run']);
await run(['merge', 'child.vhd', 'base.vhd', 'merged.vhd']);
await run(['compact', 'child.vhd']);
await run(['compare', 'child.vhd', 'merged.vhd']);
await run(['check', 'child.vhd', 'merged.vhd']);

say('Part 2: guest/golden.vhd, a golden image holding a FAT16 file system, and guest/user.vhd, a user\'s disk over it.');
say('Which files fill the user\'s disk (and a picture of it):');
await run(['map', 'guest/user.vhd', '--files', '--svg', 'guest/user-map.svg']);
say('What the user changed, file by file (diff exits 1 when files changed):');
await run(['diff', 'guest/user.vhd'], 1);
say('The user downloaded 2 MiB and deleted it: the clusters are free, the disk still holds them.');
await run(['compact', 'guest/user.vhd', '--free-space', '--dry-run']);
await run(['compact', 'guest/user.vhd', '--free-space']);
say('A second user\'s disk over the same golden image:');
await run(['create', 'guest/bob.vhd', '--parent', 'guest/golden.vhd']);
say('The user\'s disk exported whole, then made a thin child of the golden image again:');
await run(['convert', 'guest/user.vhd', 'guest/user-full.vhd']);
await run(['rebase', 'guest/user-full.vhd', '--onto', 'guest/golden.vhd', '--output', 'guest/user-thin.vhd']);
await run(['check', 'guest/user.vhd', 'guest/bob.vhd', 'guest/user-thin.vhd']);

console.log(failed ? `\n${failed} step(s) failed` : `\nAll steps succeeded. Results are in ${work}`);
process.exitCode = failed ? 1 : 0;
