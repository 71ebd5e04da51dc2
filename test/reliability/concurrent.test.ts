/**
 * Concurrent runs lose nothing: several vhdtool processes started at once on
 * the same disks.
 *
 * - Three `compact` in place of the same child, with a `merge` reading it:
 *   the per-disk lock and the open-elsewhere check let at most one compact
 *   work at a time (the others exit 6: locked, or open in another process);
 *   the child ends as the original or the complete compacted file, never a
 *   mix; the merge either writes an OUT with the child's exact content or,
 *   when the child was replaced under it, refuses to publish (exit 8);
 *   nothing is left behind; run alone afterwards, compact finishes the job.
 * - Two `merge` to the same OUT: one publishes, the other is refused (exit 6)
 *   without clobbering it; no temporary remains.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, linkSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { contentHash } from '../helpers/hash.js';
import { writeBigChain } from './helpers/bigchain.js';
import { hasBuild, runCli, stackLines } from './helpers/cli.js';
import { ScratchDirs } from './helpers/scratch.js';

const scratch = new ScratchDirs();
const scratchDir = (prefix: string) => scratch.make(prefix);

let pristine = '';
let childContent = '';
let compacted = Buffer.alloc(0);
let original = Buffer.alloc(0);

function trial(): string {
  const dir = scratchDir('vhdtool-conc-');
  linkSync(path.join(pristine, 'base.vhd'), path.join(dir, 'base.vhd'));
  copyFileSync(path.join(pristine, 'child.vhd'), path.join(dir, 'child.vhd'));
  return dir;
}

describe.skipIf(!hasBuild())('concurrent runs on the same disks', () => {
  beforeAll(async () => {
    pristine = scratchDir('vhdtool-conc-pristine-');
    await writeBigChain(pristine, 32 * 1024 * 1024);
    childContent = await contentHash(path.join(pristine, 'child.vhd'));
    const ref = trial();
    const r = await runCli(['compact', 'child.vhd', '--no-progress'], { cwd: ref, measure: false });
    expect(r.code, r.stderr).toBe(0);
    compacted = readFileSync(path.join(ref, 'child.vhd'));
    original = readFileSync(path.join(pristine, 'child.vhd'));
  }, 120_000);
  afterAll(() => {
    scratch.removeAll();
  });

  it('three compacts of one child and a merge reading it, all at once: one compacts, nothing is lost', async () => {
    let compactsThatWorked = 0;
    let locked = 0;
    for (let round = 0; round < 3; round++) {
      const dir = trial();
      const runs = await Promise.all([
        runCli(['compact', 'child.vhd', '--no-progress'], { cwd: dir, measure: false }),
        runCli(['compact', 'child.vhd', '--no-progress'], { cwd: dir, measure: false }),
        runCli(['compact', 'child.vhd', '--no-progress'], { cwd: dir, measure: false }),
        runCli(['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--no-progress'], { cwd: dir, measure: false }),
      ]);
      for (const [i, r] of runs.entries()) {
        const where = JSON.stringify({ round, args: r.args, code: r.code, stderr: r.stderr });
        expect(r.signal, where).toBeNull();
        expect(stackLines(r.stdout + r.stderr), where).toEqual([]);
        if (i < 3) {
          // A compact works, or is refused: the disk is locked by another one, or open in another process.
          expect([0, 6], where).toContain(r.code);
          if (r.code === 6) expect(r.stderr, where).toMatch(/locked|open in another process/);
        } else {
          // The merge reads a disk that may be replaced under it: it finishes, or refuses to publish (exit 8).
          expect([0, 8], where).toContain(r.code);
          if (r.code === 8) expect(r.stderr, where).toMatch(/child\.vhd: input changed while vhdtool ran/);
        }
      }
      compactsThatWorked += runs.slice(0, 3).filter((r) => r.code === 0).length;
      locked += runs.slice(0, 3).filter((r) => r.code === 6).length;
      // The child: the original or the complete compacted file (whoever did it), never a mix.
      const now = readFileSync(path.join(dir, 'child.vhd'));
      const state = now.equals(original) ? 'original' : now.equals(compacted) ? 'compacted' : 'OTHER';
      expect(state, `round ${round}: child`).not.toBe('OTHER');
      expect(state === 'compacted', `round ${round}: a compact said it worked`).toBe(runs.slice(0, 3).some((r) => r.code === 0 && /reclaimed/.test(r.stdout)));
      expect(await contentHash(path.join(dir, 'child.vhd'))).toBe(childContent);
      // The merge either wrote a complete OUT or refused cleanly (the child changed under it).
      if (runs[3].code === 0) expect(await contentHash(path.join(dir, 'out.vhd'))).toBe(childContent);
      else expect(existsSync(path.join(dir, 'out.vhd'))).toBe(false);
      const left = readdirSync(dir).filter((n) => !['base.vhd', 'child.vhd', 'out.vhd'].includes(n));
      expect(left, `round ${round}`).toEqual([]);
      // Alone again, a compact finishes the job.
      const again = await runCli(['compact', 'child.vhd', '--no-progress'], { cwd: dir, measure: false });
      expect(again.code, again.stderr).toBe(0);
      expect(readFileSync(path.join(dir, 'child.vhd')).equals(compacted), `round ${round}: after`).toBe(true);
    }
    // eslint-disable-next-line no-console
    console.log(`concurrent compacts: ${compactsThatWorked} succeeded, ${locked} refused (locked or open elsewhere), over 3 rounds of 3`);
  }, 120_000);

  it('two merges to the same OUT at once: one publishes, the other refuses without clobbering', async () => {
    for (let round = 0; round < 3; round++) {
      const dir = trial();
      const runs = await Promise.all([
        runCli(['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--no-progress'], { cwd: dir, measure: false }),
        runCli(['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--no-progress'], { cwd: dir, measure: false }),
      ]);
      const codes = runs.map((r) => r.code).sort();
      expect(codes, JSON.stringify(runs.map((r) => r.stderr))).toEqual([0, 6]);
      const refused = runs.find((r) => r.code === 6)!;
      expect(refused.stderr).toMatch(/out\.vhd: output already exists/);
      expect(await contentHash(path.join(dir, 'out.vhd'))).toBe(childContent);
      expect(readdirSync(dir).sort()).toEqual(['base.vhd', 'child.vhd', 'out.vhd']);
    }
  }, 120_000);
});
