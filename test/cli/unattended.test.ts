/**
 * Issue 17, item 1: a terminal that reports 0 columns (script with no
 * terminal on its input, some CI runners, docker -t) made the spinner loop for
 * ever, deaf to SIGINT and SIGTERM. Progress is now drawn only on a terminal
 * with a real size, and a signal stops any command within INTERRUPT_GRACE_MS
 * (1.5 s) with exit 130, leaving no temporary and no lock.
 */
import { copyFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { hasBuild, ROOT } from '../reliability/helpers/cli.js';
import { HAVE_SCRIPT, runInPty } from '../helpers/pty.js';
import { writeHoleDisk } from '../helpers/holes.js';
import { tempDir } from '../helpers/tmp.js';

const GIB = 1024 ** 3;
/** Big enough that the command is still at work when the signal comes (1 GiB of holes compacts in about 0.8 s). */
const BIG = 8 * GIB;
/** Left-overs a stopped run must not leave: temporaries and locks. */
const leftovers = (dir: string) => readdirSync(dir).filter((n) => /\.vhdtool-\d+-[0-9a-z]+\.tmp$|\.vhdtool\.lock/.test(n));

function sampleDir(): string {
  const dir = tempDir();
  for (const f of ['base.vhd', 'child.vhd']) copyFileSync(path.join(ROOT, 'fixtures', 'sample', f), path.join(dir, f));
  return dir;
}

describe.skipIf(!HAVE_SCRIPT || !hasBuild())('unattended runs in a 0-column terminal', () => {
  it('compact --dry-run finishes and draws no spinner (a few hundred bytes on the terminal, not megabytes)', async () => {
    const dir = sampleDir();
    const r = await runInPty(dir, ['compact', path.join(dir, 'child.vhd'), '--dry-run'], { limitMs: 20_000 });
    expect(r.killed).toBe(false);
    expect(r.code).toBe(0);
    expect(r.logBytes).toBeLessThan(4096);
    expect(r.log).toContain('would reclaim 2113536 bytes');
  });

  it('SIGTERM stops an in-place compact within 1.5 s: exit 130, the disk untouched, no temporary, no lock', async () => {
    const dir = tempDir();
    const disk = path.join(dir, 'big.vhd');
    await writeHoleDisk(disk, BIG);
    const before = statSync(disk);
    const r = await runInPty(dir, ['compact', disk, '--threads', '1'], { signal: 'SIGTERM', afterMs: 700, limitMs: 10_000 });
    expect(r.killed).toBe(false);
    expect(r.code).toBe(130);
    expect(r.msAfterSignal).toBeLessThan(2000);
    expect(r.logBytes).toBeLessThan(4096);
    const after = statSync(disk);
    expect([after.ino, after.size, after.mtimeMs]).toEqual([before.ino, before.size, before.mtimeMs]);
    expect(leftovers(dir)).toEqual([]);
  });

  it('SIGINT stops maintain within 1.5 s: exit 130, its locks released, no temporary', async () => {
    const dir = tempDir();
    await writeHoleDisk(path.join(dir, 'a.vhd'), BIG);
    const r = await runInPty(dir, ['maintain', dir, '--min-reclaim', '0', '--threads', '1'], { signal: 'SIGINT', afterMs: 900, limitMs: 10_000 });
    expect(r.killed).toBe(false);
    expect(r.code).toBe(130);
    expect(r.msAfterSignal).toBeLessThan(2000);
    expect(leftovers(dir)).toEqual([]);
  });
});
