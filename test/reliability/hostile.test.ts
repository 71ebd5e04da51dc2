/**
 * The hostile-input matrix: every file of fixtures/hostile/ through every
 * command, run as a user runs it (the built CLI in a child process).
 *
 * For each (file, command): the documented exit code; one error line on
 * stderr naming the file (check: its findings on stdout, each naming the
 * file); no stack trace; a few seconds at most; peak memory under 512 MiB;
 * every input byte-identical and no file left behind (output, temporary or
 * lock). And: compact and merge refuse every file that check rejects.
 */
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { hostileCorpus, type Expected, type HostileEntry } from '../../scripts/make-hostile.js';
import { tempDir } from '../helpers/tmp.js';
import { ROOT, hasBuild, lines, pool, runCli, stackLines, type CliRun } from './helpers/cli.js';
import { copyDir, diffSnapshots, snapshot } from './helpers/snapshot.js';

const CORPUS = path.join(ROOT, 'fixtures', 'hostile');
const MAX_MS = 5000;
const MAX_RSS = 512 * 1024 * 1024;

interface Invocation {
  label: string;
  args: (f: string) => string[];
  expect: keyof Expected;
}

const INVOCATIONS: Invocation[] = [
  { label: 'info F', args: (f) => ['info', f], expect: 'info' },
  { label: 'check F', args: (f) => ['check', f, '--threads', '1'], expect: 'check' },
  { label: 'compact F', args: (f) => ['compact', f, '--no-progress'], expect: 'compact' },
  { label: 'compact F --output', args: (f) => ['compact', f, '--output', 'out.vhd', '--no-progress'], expect: 'compact' },
  { label: 'merge F good-parent OUT', args: (f) => ['merge', f, 'good-parent.vhd', 'out.vhd', '--no-progress'], expect: 'merge' },
  { label: 'merge good-child F OUT', args: (f) => ['merge', 'good-child.vhd', f, 'out.vhd', '--no-progress'], expect: 'asParent' },
  { label: 'compare F good-child', args: (f) => ['compare', f, 'good-child.vhd', '--no-progress'], expect: 'compare' },
  { label: 'compare good-child F', args: (f) => ['compare', 'good-child.vhd', f, '--no-progress'], expect: 'compare' },
  { label: 'maintain F', args: (f) => ['maintain', f, '--min-reclaim', '0', '--no-progress'], expect: 'maintain' },
];

/** Everything the matrix observed, for the cross-command assertions and the summary. */
const observed = new Map<string, Map<string, CliRun>>();
let spawned = 0;
let slowest = 0;
let peakRss = 0;

function checkRun(e: HostileEntry, inv: Invocation, r: CliRun, before: Map<string, string>, after: Map<string, string>): void {
  const want = e.expected[inv.expect];
  const where = `${e.name} / ${inv.label}: ${JSON.stringify({ code: r.code, stderr: r.stderr, stdout: r.stdout.slice(0, 400) })}`;
  expect(r.signal, where).toBeNull();
  expect(r.code, where).toBe(want);
  expect(stackLines(r.stdout + r.stderr), where).toEqual([]);
  expect(r.ms, where).toBeLessThan(MAX_MS);
  if (r.maxRss !== null) expect(r.maxRss, where).toBeLessThan(MAX_RSS);
  // Nothing written, nothing created, nothing left behind.
  expect(diffSnapshots(before, after), where).toEqual([]);
  const err = lines(r.stderr);
  if (inv.expect === 'maintain' && want !== 3) {
    // maintain reports per chain on standard output; a failure names the file.
    expect(err, where).toEqual([]);
    if (want === 1) {
      expect(lines(r.stdout).some((l) => /UNREADABLE|FAILED/.test(l)), where).toBe(true);
      expect(lines(r.stdout).some((l) => l.includes(e.name)), where).toBe(true);
    }
    else expect(lines(r.stdout).some((l) => /UNREADABLE|FAILED/.test(l)), where).toBe(false);
    return;
  }
  if (want >= 2) {
    expect(err.length, where).toBe(1);
    expect(err[0], where).toMatch(/^vhdtool: /);
    expect(err[0], where).toContain(e.name);
    if (inv.expect !== 'maintain') expect(r.stdout, where).toBe('');
  } else if (want === 1 && inv.expect === 'check') {
    expect(err, where).toEqual([]);
    const out = lines(r.stdout);
    expect(out.length, where).toBeGreaterThan(0);
    for (const l of out) expect(l.startsWith(`${e.name}: `), where).toBe(true);
    expect(out.some((l) => l.startsWith(`${e.name}: error: `)), where).toBe(true);
  } else {
    expect(err, where).toEqual([]);
  }
}

const entries = (await hostileCorpus()).filter((e) => e.kind !== 'helper');

describe.skipIf(!hasBuild() || !existsSync(CORPUS))('hostile inputs x commands (built CLI in a child process)', () => {

  it('the corpus has every kind of hostile input the issue lists', () => {
    const names = entries.map((e) => e.name);
    for (const n of ['footer-checksum.vhd', 'header-checksum.vhd', 'footer-copy.vhd', 'truncated.vhd', 'bat-into-header.vhd',
      'bat-past-eof.vhd', 'bat-duplicate.vhd', 'block-size.vhd', 'bat-too-small.vhd', 'unset-data.vhd', 'locator-utf16.vhd',
      'locator-length.vhd', 'wrong-parent-uuid.vhd', 'self-parent.vhd', 'loop-a.vhd', 'loop-b.vhd', 'huge-table.vhd',
      'huge-block.vhd', 'empty.vhd', 'text.vhd', 'directory.vhd', 'missing.vhd']) {
      expect(names).toContain(n);
    }
  });

  for (const e of entries) {
    it(`${e.name}: ${e.rule.slice(0, 80)}`, async () => {
      const results = await pool(INVOCATIONS, 2, async (inv) => {
        const dir = tempDir('vhdtool-hostile-');
        copyDir(CORPUS, dir);
        const before = snapshot(dir);
        const r = await runCli(inv.args(e.name), { cwd: dir, timeoutMs: 30_000 });
        const after = snapshot(dir);
        return { inv, r, before, after };
      });
      const byLabel = new Map<string, CliRun>();
      for (const { inv, r, before, after } of results) {
        spawned++;
        slowest = Math.max(slowest, r.ms);
        peakRss = Math.max(peakRss, r.maxRss ?? 0);
        byLabel.set(inv.label, r);
        checkRun(e, inv, r, before, after);
      }
      observed.set(e.name, byLabel);
    });
  }

  it('compact and merge refuse every input that check rejects', () => {
    expect(observed.size).toBe(entries.length);
    let rejected = 0;
    for (const [name, runs] of observed) {
      if (runs.get('check F')!.code === 0) continue;
      rejected++;
      for (const label of ['compact F', 'compact F --output', 'merge F good-parent OUT']) {
        expect(runs.get(label)!.code, `${name}: ${label}`).not.toBe(0);
      }
    }
    expect(rejected).toBeGreaterThanOrEqual(20);
    // eslint-disable-next-line no-console
    console.log(`hostile matrix: ${entries.length} inputs x ${INVOCATIONS.length} invocations = ${spawned} runs; slowest ${slowest.toFixed(0)} ms; peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
  });
});
