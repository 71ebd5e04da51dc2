/**
 * Every file of fixtures/hostile/ through `rebase`, as the disk to rebase and
 * as the new parent, run as a user runs it (the built CLI in a child process).
 *
 * As the disk, each is refused with exactly the code `compact` gives it: a
 * broken VHD is reported as broken (exit 4, 5), never taken for a raw image,
 * even with every structure damaged but one cookie. As the new parent, each
 * is refused with the code opening it gives (`info`), and a disk in saved
 * state with 6. Always: one line naming the file, no stack trace, every
 * input byte-identical, nothing left behind.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { hostileCorpus, type HostileEntry } from '../../scripts/make-hostile.js';
import { tempDir } from '../helpers/tmp.js';
import { ROOT, hasBuild, lines, pool, runCli, stackLines } from './helpers/cli.js';
import { copyDir, diffSnapshots, snapshot } from './helpers/snapshot.js';

const CORPUS = path.join(ROOT, 'fixtures', 'hostile');
const entries = (await hostileCorpus()).filter((e) => e.kind !== 'helper');

/** Exit code of `rebase good-child.vhd --onto F`: F's chain must open; a saved state is refused. */
function asNewParent(e: HostileEntry): number {
  if (e.name === 'saved-state.vhd') return 6;
  return e.expected.info;
}

describe.skipIf(!hasBuild() || !existsSync(CORPUS))('hostile inputs x rebase (built CLI in a child process)', () => {
  it('every hostile file, as the disk and as the new parent: the documented code, one line, nothing changed or left', async () => {
    const jobs = entries.flatMap((e) => [
      { e, role: 'disk', args: ['rebase', e.name, '--onto', 'good-parent.vhd', '--output', 'out.vhd', '--no-progress'], want: e.expected.compact },
      { e, role: 'new parent', args: ['rebase', 'good-child.vhd', '--onto', e.name, '--output', 'out.vhd', '--no-progress'], want: asNewParent(e) },
    ]);
    const runs = await pool(jobs, 2, async (j) => {
      const dir = tempDir('vhdtool-rebase-hostile-');
      copyDir(CORPUS, dir);
      const before = snapshot(dir);
      const r = await runCli(j.args, { cwd: dir, timeoutMs: 30_000 });
      return { j, r, dir, before, after: snapshot(dir) };
    });
    let refused = 0;
    for (const { j, r, dir, before, after } of runs) {
      const where = `${j.e.name} as the ${j.role}: ${JSON.stringify({ code: r.code, stderr: r.stderr })}`;
      expect(r.signal, where).toBeNull();
      expect(r.code, where).toBe(j.want);
      expect(stackLines(r.stdout + r.stderr), where).toEqual([]);
      if (j.want === 0) {
        // A valid view (unset-data.vhd's hidden bytes are not part of it): only out.vhd is new.
        expect(diffSnapshots(before, after), where).toEqual(['new out.vhd']);
        expect(existsSync(path.join(dir, 'out.vhd')), where).toBe(true);
        continue;
      }
      refused++;
      expect(diffSnapshots(before, after), where).toEqual([]);
      const err = lines(r.stderr);
      expect(err.length, where).toBe(1);
      expect(err[0], where).toMatch(/^vhdtool: /);
      expect(err[0], where).toContain(j.e.name);
    }
    expect(refused).toBeGreaterThanOrEqual(2 * entries.length - 2);
  }, 300_000);
});
