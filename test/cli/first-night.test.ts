/**
 * Issue 17: what a new admin hit in a first night. One test per defect of
 * the command line (items 4, 5, 6, 7, 10, 11, 12, 13, 14); each failed on the
 * code before the fix. The maintain items are in test/maintain/unattended.test.ts,
 * the terminal and signal ones in test/cli/unattended.test.ts, ownership and
 * extended attributes in test/io/attributes.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compact } from '../../src/ops/compact.js';
import { merge } from '../../src/ops/merge.js';
import type { ProgressSink } from '../../src/progress.js';
import { hasBuild, ROOT, runCli as runBin, stackLines } from '../reliability/helpers/cli.js';
import { HAVE_SCRIPT, runInPty } from '../helpers/pty.js';
import { hasStackTrace, runCli } from '../helpers/cliRun.js';
import { tempDir } from '../helpers/tmp.js';

const SAMPLE = path.join(ROOT, 'fixtures', 'sample');
const IS_ROOT = process.getuid?.() === 0;

function sample(): { dir: string; base: string; child: string } {
  const dir = tempDir();
  for (const f of ['base.vhd', 'child.vhd']) copyFileSync(path.join(SAMPLE, f), path.join(dir, f));
  return { dir, base: path.join(dir, 'base.vhd'), child: path.join(dir, 'child.vhd') };
}

/** Exactly one line on stderr, `vhdtool: PATH: ...`, no stack trace, nothing on stdout. */
function oneLine(r: { code: number; out: string[]; err: string[] }, code: number, line: string): void {
  const err = r.err.filter((l) => l !== '');
  expect(hasStackTrace([...r.out, ...r.err])).toBe(false);
  expect(err).toEqual([line]);
  expect(r.out.filter((l) => l !== '')).toEqual([]);
  expect(r.code).toBe(code);
}

describe('cat -o: one line and a documented exit code, never a stack trace (item 4)', () => {
  it('an existing file, a folder, a missing folder: exit 6, 6, 7; nothing written', async () => {
    const s = sample();
    const existing = path.join(s.dir, 'exists.raw');
    writeFileSync(existing, 'keep me');
    oneLine(await runCli(['cat', s.child, '-o', existing]), 6, `vhdtool: ${existing}: output already exists (use --force to replace it)`);
    expect(readFileSync(existing, 'utf8')).toBe('keep me');
    oneLine(await runCli(['cat', s.child, '-o', s.dir]), 6, `vhdtool: ${s.dir}: output is a directory`);
    const nowhere = path.join(s.dir, 'no', 'x.raw');
    oneLine(await runCli(['cat', s.child, '-o', nowhere]), 7, `vhdtool: ${nowhere}: output directory ${path.dirname(nowhere)} does not exist`);
    oneLine(await runCli(['cat', s.child, '-o', s.child]), 6, `vhdtool: ${s.child}: output is an input (${s.child}); refusing to write over it`);
    expect(readdirSync(s.dir).sort()).toEqual(['base.vhd', 'child.vhd', 'exists.raw']);
  });

  it.skipIf(!IS_ROOT || !hasBuild())('a read-only folder (as another user): exit 7, permission denied, nothing left', async () => {
    const s = sample();
    const ro = path.join(s.dir, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    chmodSync(s.dir, 0o755);
    const out = path.join(ro, 'x.raw');
    const r = await runBin(['cat', s.child, '-o', out], { uid: 1235, gid: 1235, measure: false, timeoutMs: 30_000 });
    expect(r.code).toBe(7);
    expect(r.stderr).toBe(`vhdtool: ${out}: permission denied\n`);
    expect(stackLines(r.stderr)).toEqual([]);
    expect(readdirSync(ro)).toEqual([]);
  });

  it('a complete -o file equals what cat writes to a pipe, and is sparse where the disk reads zero', async () => {
    const s = sample();
    const out = path.join(s.dir, 'disk.raw');
    expect((await runCli(['cat', s.child, '-o', out])).code).toBe(0);
    const piped = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vhdtool.js'), 'cat', s.child], { maxBuffer: 64 << 20 });
    expect(piped.status).toBe(0);
    expect(readFileSync(out).equals(piped.stdout)).toBe(true);
    const blocks = Number(spawnSync('stat', ['-c', '%b', out], { encoding: 'utf8' }).stdout) * 512;
    // Only the 4 MiB stretches holding data are written (2 of 8): the rest are holes.
    expect(blocks).toBeLessThanOrEqual(8 * 1024 * 1024);
  });
});

describe.skipIf(!HAVE_SCRIPT || !hasBuild())('cat to a terminal (item 13)', () => {
  it('is refused: exit 2, "use -o FILE or a pipe", no disk bytes on the terminal', async () => {
    const s = sample();
    const r = await runInPty(s.dir, ['cat', s.child], { limitMs: 20_000 });
    expect(r.code).toBe(2);
    expect(r.log).toContain('vhdtool: refusing to write disk content to a terminal; use -o FILE or a pipe');
    expect(r.logBytes).toBeLessThan(2048);
  });
});

describe('npm run sample -- DIR (item 5)', () => {
  const script = path.join(ROOT, 'dist', 'scripts', 'make-sample.js');
  it.skipIf(!hasBuild())('refuses a folder holding anything else, deleting nothing; writes a new one; replaces only its own sample', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'precious.vhd'), 'a VM');
    const r = spawnSync(process.execPath, [script, dir], { encoding: 'utf8' });
    expect(r.status).toBe(6);
    expect(r.stderr).toContain('is not empty (it holds precious.vhd)');
    expect(readdirSync(dir)).toEqual(['precious.vhd']);
    expect(readFileSync(path.join(dir, 'precious.vhd'), 'utf8')).toBe('a VM');

    const fresh = path.join(tempDir(), 'new');
    expect(spawnSync(process.execPath, [script, fresh]).status).toBe(0);
    for (const f of ['base.vhd', 'child.vhd']) expect(readFileSync(path.join(fresh, f)).equals(readFileSync(path.join(SAMPLE, f)))).toBe(true);
    // Its own sample is replaced (same bytes); a foreign child.vhd is not.
    expect(spawnSync(process.execPath, [script, fresh]).status).toBe(0);
    expect(readdirSync(fresh).sort()).toEqual(['base.vhd', 'child.vhd', 'guest']);
    copyFileSync(path.join(SAMPLE, 'base.vhd'), path.join(fresh, 'child.vhd'));
    expect(spawnSync(process.execPath, [script, fresh]).status).toBe(6);
    expect(readFileSync(path.join(fresh, 'child.vhd')).equals(readFileSync(path.join(SAMPLE, 'base.vhd')))).toBe(true);
  });
});

/** A progress sink that records each phase's total and what was reported done. */
function recorder(): { sink: ProgressSink; phases: Array<{ label: string; total: number; done: number }> } {
  const phases: Array<{ label: string; total: number; done: number }> = [];
  return {
    phases,
    sink: {
      start: (label, total) => { phases.push({ label, total, done: 0 }); },
      advance: (n) => { phases[phases.length - 1].done += n; },
      done: () => undefined,
    },
  };
}

describe('progress measures the work, not the virtual size (item 6)', () => {
  it('compact and merge: each phase ends at 100% of its total, and the total is the allocated blocks (3.5 of 32 MiB)', async () => {
    const s = sample();
    const a = recorder();
    await compact(s.child, { dryRun: true, threads: 0, progress: a.sink });
    const b = recorder();
    await merge(s.child, s.base, path.join(s.dir, 'out.vhd'), { threads: 0, progress: b.sink });
    for (const p of [...a.phases, ...b.phases].filter((x) => x.total > 0)) {
      expect(p.done, p.label).toBe(p.total);
      expect(p.total, p.label).toBeLessThan(8 * 1024 * 1024);
    }
    expect(a.phases.map((p) => [p.label, p.total])).toEqual([['comparing', 7 * 512 * 1024]]);
    // merge: the blocks either layer holds (the base's 0-5, the child's 0, 1, 3, 4, 19, 20, 29).
    expect(b.phases.find((p) => p.label === 'writing')?.total).toBe(9 * 512 * 1024);
  });
});

describe('check with several paths (item 7)', () => {
  it('reports every path, the missing one as an error; exit 3; JSON has one entry per path', async () => {
    const s = sample();
    const missing = path.join(s.dir, 'missing.vhd');
    const r = await runCli(['check', '--threads', '0', s.base, missing, s.child]);
    expect(r.code).toBe(3);
    expect(r.out.filter(Boolean)).toEqual([`${s.base}: ok`, `${s.child}: ok`]);
    expect(r.err.filter(Boolean)).toEqual([`vhdtool: ${missing}: no such file`]);
    const j = await runCli(['check', '--threads', '0', '--json', s.base, missing, s.child]);
    expect(j.code).toBe(3);
    const o = JSON.parse(j.out.join('\n')) as { ok: boolean; disks: Array<{ path: string; ok: boolean; error?: { code: string } }> };
    expect(o.ok).toBe(false);
    expect(o.disks.map((d) => [d.path, d.ok, d.error?.code ?? null])).toEqual([[s.base, true, null], [missing, false, 'NOT_FOUND'], [s.child, true, null]]);
  });
});

describe('merge with a missing PARENT, and hints (item 10)', () => {
  it('a missing PARENT: exit 3, "no such file", no mention of --parent', async () => {
    const s = sample();
    const missing = path.join(s.dir, 'gone.vhd');
    oneLine(await runCli(['merge', '--threads', '0', s.child, missing, path.join(s.dir, 'out.vhd')]), 3, `vhdtool: ${missing}: no such file`);
  });

  it('a wrong PARENT names the PARENT argument, not a --parent flag', async () => {
    const s = sample();
    const other = path.join(s.dir, 'other.vhd');
    copyFileSync(s.child, other);
    const r = await runCli(['merge', '--threads', '0', s.child, other, path.join(s.dir, 'out.vhd')]);
    expect(r.code).toBe(5);
    expect(r.err.join('\n')).toContain('(PARENT argument: UUID');
    expect(r.err.join('\n')).not.toContain('--parent');
  });

  it('a parent not found hints at --parent; a checksum error at --lenient', async () => {
    const s = sample();
    const lone = tempDir();
    copyFileSync(s.child, path.join(lone, 'child.vhd'));
    const r = await runCli(['info', path.join(lone, 'child.vhd')]);
    expect(r.code).toBe(5);
    expect(r.err.filter(Boolean)[0]).toMatch(/not found; tried .* \(hint: use --parent PATH to name the parent\)$/);
    const bad = path.join(s.dir, 'bad.vhd');
    const b = readFileSync(s.base);
    b[b.length - 512 + 64] ^= 0xff; // the end footer's checksum
    writeFileSync(bad, b);
    const c = await runCli(['info', bad]);
    expect(c.code).toBe(4);
    expect(c.err.filter(Boolean)[0]).toMatch(/footer checksum mismatch.*\(hint: --lenient reads past it, for forensics\)$/);
  });
});

describe.skipIf(!hasBuild())("the library: (path, options) everywhere, and import 'vhdtool' inside the package (item 11)", () => {
  it("check(path, options) through the package's own name", () => {
    const code = `import { check, info, compact, VhdToolError } from 'vhdtool';
const r = await check(${JSON.stringify(path.join(SAMPLE, 'child.vhd'))}, { threads: 0 });
const i = await info(${JSON.stringify(path.join(SAMPLE, 'child.vhd'))}, {});
const e = await check('/nonexistent.vhd', { threads: 0 }).catch((x) => x);
console.log(JSON.stringify([r.ok, r.parents.length, i.type, typeof compact, e instanceof VhdToolError, e.code]));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([true, 1, 'differencing', 'function', true, 'NOT_FOUND']);
  });
});

describe('--lenient reads a disk whose last block is cut (item 12)', () => {
  it('the missing bytes read as zeros, with a warning naming the range; strict refuses (exit 4)', async () => {
    const s = sample();
    const whole = path.join(s.dir, 'whole.raw');
    expect((await runCli(['cat', s.base, '-o', whole])).code).toBe(0);
    truncateSync(s.base, 3_000_000); // inside block 5, the last one stored (it ends at 3170304)
    const strict = await runCli(['cat', s.base, '-o', path.join(s.dir, 'x.raw')]);
    expect(strict.code).toBe(4);
    expect(strict.err.filter(Boolean)[0]).toContain('(hint: --lenient reads with the copy, for forensics)');
    const cut = path.join(s.dir, 'cut.raw');
    const r = await runCli(['cat', s.base, '--lenient', '-o', cut]);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`vhdtool: ${s.base}: warning: block 5: bytes 3000000..3170303 (170304) lie past the end of the file (cut); read as zeros`);
    const a = readFileSync(whole);
    const b = readFileSync(cut);
    // Block 5 holds guest bytes [2621440, 3145728); its data starts at file offset 2649600 + 512 (bitmap).
    const lost = 3_000_000 - (3170304 - 524288);
    expect(b.subarray(0, 2621440 + lost).equals(a.subarray(0, 2621440 + lost))).toBe(true);
    expect(b.subarray(2621440 + lost, 3145728).every((x) => x === 0)).toBe(true);
    expect(a.subarray(2621440 + lost, 3145728).some((x) => x !== 0)).toBe(true);
    expect(b.subarray(3145728).equals(a.subarray(3145728))).toBe(true);
  });
});

describe('polish (item 14)', () => {
  it('no arguments: the help on stderr, exit 2', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.out.filter(Boolean)).toEqual([]);
    expect(r.err.join('\n')).toMatch(/^Usage: vhdtool/);
    expect(r.err.join('\n')).toContain('Exit status:');
  });

  it('info: plurals, the cookie as text, locator paths as written, the chain in columns', async () => {
    const s = sample();
    const r = await runCli(['info', s.child]);
    const out = r.out.join('\n');
    expect(out).toContain('  cookie          "conectix"');
    expect(out).toContain('  allocated       7 blocks, 2036 sectors set');
    expect(out).toContain('  locator 0       W2ku C:\\VMs\\sample\\base.vhd at 2048, 44 bytes');
    expect(out).not.toContain('\\\\');
    const chain = r.out.filter((l) => /^ {4}\d:/.test(l));
    expect(chain).toHaveLength(2);
    // Every column starts at the same place on both lines.
    const starts = (l: string) => [...l.matchAll(/ {2}(?=\S)/g)].map((m) => m.index);
    expect(starts(chain[0]).slice(0, 4)).toEqual(starts(chain[1]).slice(0, 4));
    const one = await runCli(['check', '--threads', '0', s.base]);
    expect(one.out).toContain(`${s.base}: ok`);
    const b = readFileSync(s.base);
    b[b.length - 512 + 64] ^= 0xff;
    b[64] ^= 0xff; // the copy at 0 too: one problem, the checksum
    writeFileSync(s.base, b);
    const bad = await runCli(['check', '--threads', '0', s.base]);
    expect(bad.out.filter(Boolean).pop()).toBe(`${s.base}: 1 problem`);
  });

  it('merge --dry-run prints no random UUID (the real run draws its own)', async () => {
    const s = sample();
    const out = path.join(s.dir, 'out.vhd');
    const r = await runCli(['merge', '--threads', '0', '--dry-run', s.child, s.base, out]);
    expect(r.code).toBe(0);
    expect(r.out[0]).toBe(`${out}: would write a dynamic disk (with a new UUID) from 2 layers`);
    const j = await runCli(['merge', '--threads', '0', '--dry-run', '--json', s.child, s.base, out]);
    expect((JSON.parse(j.out.join('\n')) as { uuid: unknown }).uuid).toBeNull();
    expect(existsSync(out)).toBe(false);
  });

  it('an absurd --min-reclaim is refused (exit 2)', async () => {
    const s = sample();
    const r = await runCli(['maintain', s.dir, '--min-reclaim', '5T']);
    expect(r.code).toBe(2);
    expect(r.err.filter(Boolean)).toEqual(["vhdtool: option '--min-reclaim <bytes>' argument '5T' is invalid. must be at most 2040G (no VHD holds more) (see --help)"]);
    expect((await runCli(['maintain', s.dir, '--min-reclaim', '2040G', '--dry-run'])).code).toBe(0);
  });
});
