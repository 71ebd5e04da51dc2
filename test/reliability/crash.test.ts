/**
 * Real kill -9. `vhdtool compact` (in place) and `vhdtool merge` run as child
 * processes on a 64 MiB chain and are killed with SIGKILL at several moments:
 * at fractions of a full run's duration, and at events seen in the directory
 * (the temporary appears, is half written, is complete, is published).
 *
 * After compact: the path holds the original, byte-identical, or the complete
 * compacted file (byte-identical to an uninterrupted run). After merge: OUT is
 * absent, or complete (strictly valid, the child's exact content). The parent
 * is never touched. The next run removes whatever the killed one left behind
 * (temporary, lock) and finishes the job; a last test builds each state a
 * kill can leave (some last microseconds, too short to hit by timing) and
 * checks the next run cleans it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, linkSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { isTempName } from '../../src/io/atomic.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openVhd } from '../../src/vhd/image.js';
import { contentHash } from '../helpers/hash.js';
import { writeBigChain } from './helpers/bigchain.js';
import { hasBuild, runCli, startCli, type CliRun } from './helpers/cli.js';
import { ScratchDirs } from './helpers/scratch.js';

const SIZE = 64 * 1024 * 1024;

interface Trial {
  /** "t=40%" or "event:temp-half". */
  point: string;
  killed: boolean;
  state: string;
  leftovers: string[];
}

type Trigger = { at: number } | { event: 'temp-created' | 'temp-half' | 'temp-full' | 'published' };

let pristine = '';
const scratch = new ScratchDirs();
const scratchDir = (prefix: string) => scratch.make(prefix);
let baseBytes = Buffer.alloc(0);
let childBytes = Buffer.alloc(0);
let childContent = '';

/** Is the file at `p` exactly `bytes`? */
function same(p: string, bytes: Buffer): boolean {
  const st = statSync(p, { throwIfNoEntry: false });
  return st !== undefined && st.size === bytes.length && readFileSync(p).equals(bytes);
}

/** A trial directory: the base hard-linked (never written: its hash is checked), the child copied. */
function trialDir(): { dir: string; base: string; child: string } {
  const dir = scratchDir('vhdtool-kill-');
  linkSync(path.join(pristine, 'base.vhd'), path.join(dir, 'base.vhd'));
  copyFileSync(path.join(pristine, 'child.vhd'), path.join(dir, 'child.vhd'));
  return { dir, base: path.join(dir, 'base.vhd'), child: path.join(dir, 'child.vhd') };
}

/**
 * Runs the CLI and SIGKILLs it at `trigger`: a time after the spawn, or the
 * first moment the directory shows the event. Returns whether it was killed.
 */
async function runAndKill(args: string[], dir: string, trigger: Trigger, target: string, finalSize: number): Promise<{ killed: boolean; run: CliRun }> {
  const { child, done } = startCli(args, { cwd: dir, measure: false, timeoutMs: 120_000 });
  let exited = false;
  let killed = false;
  void done.then(() => { exited = true; });
  const kill = () => {
    if (!exited && !killed) {
      killed = child.kill('SIGKILL');
    }
  };
  if ('at' in trigger) {
    const t = setTimeout(kill, trigger.at);
    const run = await done;
    clearTimeout(t);
    return { killed: killed && run.signal === 'SIGKILL', run };
  }
  const targetIno = statSync(target, { throwIfNoEntry: false })?.ino ?? null;
  let sawTemp = false;
  const poll = setInterval(() => {
    if (exited || killed) return;
    let temps: string[];
    try {
      temps = readdirSync(dir).filter(isTempName);
    } catch {
      return;
    }
    if (temps.length) sawTemp = true;
    const tempSize = temps.length ? (statSync(path.join(dir, temps[0]), { throwIfNoEntry: false })?.size ?? 0) : 0;
    const ino = statSync(target, { throwIfNoEntry: false })?.ino ?? null;
    switch (trigger.event) {
      case 'temp-created': if (temps.length) kill(); break;
      case 'temp-half': if (tempSize >= finalSize / 2) kill(); break;
      case 'temp-full': if (tempSize >= finalSize) kill(); break;
      case 'published': if (sawTemp && ino !== targetIno) kill(); break;
    }
  }, 1);
  const run = await done;
  clearInterval(poll);
  return { killed: killed && run.signal === 'SIGKILL', run };
}

function extras(dir: string, expected: string[]): string[] {
  return readdirSync(dir).filter((n) => !expected.includes(n)).sort();
}

const TRIGGERS = (duration: number): Array<[string, Trigger]> => [
  ...[0.15, 0.35, 0.55, 0.75, 0.9].map((f): [string, Trigger] => [`t=${Math.round(f * 100)}% (${Math.round(f * duration)} ms)`, { at: Math.round(f * duration) }]),
  ['event:temp-created', { event: 'temp-created' }],
  ['event:temp-half', { event: 'temp-half' }],
  ['event:temp-full', { event: 'temp-full' }],
  ['event:published', { event: 'published' }],
];

const summary: string[] = [];
let killPoints = 0;
let bytesLost = 0;

describe.skipIf(!hasBuild())('kill -9 during compact and merge (64 MiB chain, 2 MiB blocks)', () => {
  afterAll(() => {
    scratch.removeAll();
  });

  beforeAll(async () => {
    pristine = scratchDir('vhdtool-kill-pristine-');
    await writeBigChain(pristine, SIZE);
    baseBytes = readFileSync(path.join(pristine, 'base.vhd'));
    childBytes = readFileSync(path.join(pristine, 'child.vhd'));
    childContent = await contentHash(path.join(pristine, 'child.vhd'));
  }, 120_000);

  it('compact in place: the path holds the original or the complete compacted file; the next run cleans up', async () => {
    // An uninterrupted run: its duration places the kill points, its result is "complete".
    const warm = trialDir();
    expect((await runCli(['compact', 'child.vhd', '--no-progress'], { cwd: warm.dir, measure: false })).code).toBe(0);
    const ref = trialDir();
    const full = await runCli(['compact', 'child.vhd', '--no-progress'], { cwd: ref.dir, measure: false });
    expect(full.code, full.stderr).toBe(0);
    const compacted = readFileSync(ref.child);
    const compactedSize = statSync(ref.child).size;
    expect(compactedSize).toBeLessThan(statSync(path.join(pristine, 'child.vhd')).size * 0.6);
    expect(await contentHash(ref.child)).toBe(childContent);
    const trials: Trial[] = [];
    for (const [point, trigger] of TRIGGERS(full.ms)) {
      const t = trialDir();
      const { killed, run } = await runAndKill(['compact', 'child.vhd', '--no-progress'], t.dir, trigger, t.child, compactedSize);
      if (!killed) expect(run.code, `${point}: ${run.stderr}`).toBe(0);
      const state = same(t.child, childBytes) ? 'original' : same(t.child, compacted) ? 'compacted' : 'OTHER';
      if (state === 'OTHER') bytesLost += statSync(t.child).size;
      expect(state, `${point}: the path holds neither the original nor the complete compacted file`).not.toBe('OTHER');
      expect(same(t.base, baseBytes), point).toBe(true);
      const left = extras(t.dir, ['base.vhd', 'child.vhd']);
      for (const n of left) expect(isTempName(n) || n === '.child.vhd.vhdtool.lock', `${point}: unexpected ${n}`).toBe(true);
      // The next run cleans up and finishes the job.
      const next = await runCli(['compact', 'child.vhd', '--no-progress', '--json'], { cwd: t.dir, measure: false });
      expect(next.code, `${point}: next run: ${next.stderr}`).toBe(0);
      expect(extras(t.dir, ['base.vhd', 'child.vhd']), `${point}: after the next run`).toEqual([]);
      expect(same(t.child, compacted), `${point}: after the next run`).toBe(true);
      const removed = (JSON.parse(next.stdout) as { removedTemporaries: string[] }).removedTemporaries.map((p) => path.basename(p));
      for (const n of left.filter(isTempName)) expect(removed, point).toContain(n);
      trials.push({ point, killed, state, leftovers: left });
      if (killed) killPoints++;
      rmSync(t.dir, { recursive: true, force: true });
    }
    summary.push(`compact: run ${Math.round(full.ms)} ms; ${trials.map((t) => `${t.point}: ${t.killed ? 'killed' : 'finished'} -> ${t.state}${t.leftovers.length ? ` [left ${t.leftovers.length}]` : ''}`).join('; ')}`);
    // The kill points really interrupted it, on both sides of the publish.
    expect(trials.filter((t) => t.killed).length).toBeGreaterThanOrEqual(6);
    expect(trials.some((t) => t.killed && t.state === 'original')).toBe(true);
    expect(trials.some((t) => t.killed && t.leftovers.some(isTempName))).toBe(true);
  }, 240_000);

  it('merge: OUT is absent or complete; the inputs are untouched; the next run cleans up', async () => {
    const warm = trialDir();
    expect((await runCli(['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--no-progress'], { cwd: warm.dir, measure: false })).code).toBe(0);
    const ref = trialDir();
    const full = await runCli(['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--no-progress'], { cwd: ref.dir, measure: false });
    expect(full.code, full.stderr).toBe(0);
    const outSize = statSync(path.join(ref.dir, 'out.vhd')).size;
    const trials: Trial[] = [];
    for (const [point, trigger] of TRIGGERS(full.ms)) {
      const t = trialDir();
      const out = path.join(t.dir, 'out.vhd');
      const { killed, run } = await runAndKill(['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--no-progress'], t.dir, trigger, out, outSize);
      if (!killed) expect(run.code, `${point}: ${run.stderr}`).toBe(0);
      expect(same(t.child, childBytes), point).toBe(true);
      expect(same(t.base, baseBytes), point).toBe(true);
      let state = 'absent';
      if (statSync(out, { throwIfNoEntry: false })) {
        // Complete: strictly valid, the planned size, the child's exact content.
        const v = await openVhd(nodeFileSystem, out, { mode: 'strict' });
        await v.close();
        expect(statSync(out).size, point).toBe(outSize);
        const h = await contentHash(out);
        if (h !== childContent) bytesLost += outSize;
        expect(h, `${point}: OUT exists but is not complete`).toBe(childContent);
        state = 'complete';
      }
      const left = extras(t.dir, ['base.vhd', 'child.vhd', 'out.vhd']);
      for (const n of left) expect(isTempName(n), `${point}: unexpected ${n}`).toBe(true);
      // The next run: removes the temporaries; writes OUT if it is absent, refuses to clobber it otherwise.
      const next = await runCli(['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--no-progress'], { cwd: t.dir, measure: false });
      expect(next.code, `${point}: next run: ${next.stderr}`).toBe(state === 'absent' ? 0 : 6);
      expect(extras(t.dir, ['base.vhd', 'child.vhd', 'out.vhd']), `${point}: after the next run`).toEqual([]);
      expect(await contentHash(out), point).toBe(childContent);
      trials.push({ point, killed, state, leftovers: left });
      if (killed) killPoints++;
      rmSync(t.dir, { recursive: true, force: true });
    }
    summary.push(`merge: run ${Math.round(full.ms)} ms; ${trials.map((t) => `${t.point}: ${t.killed ? 'killed' : 'finished'} -> ${t.state}${t.leftovers.length ? ` [left ${t.leftovers.length}]` : ''}`).join('; ')}`);
    expect(trials.filter((t) => t.killed).length).toBeGreaterThanOrEqual(6);
    expect(trials.some((t) => t.killed && t.state === 'absent' && t.leftovers.length > 0)).toBe(true);
    // eslint-disable-next-line no-console
    console.log(`kill -9: ${killPoints} kill points; bytes lost ${bytesLost}\n  ${summary.join('\n  ')}`);
    expect(bytesLost).toBe(0);
  }, 240_000);

  it('the next run removes what a killed run can leave, in every state a kill can leave it', async () => {
    // A pid that is certainly dead: a process that has exited.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const pid = Number(dead.stdout.toString());
    expect(pid).toBeGreaterThan(0);
    const tmp = (target: string, tag: string) => path.join(path.dirname(target), `.${path.basename(target)}.vhdtool-${pid}-${tag}.tmp`);
    const lockOf = (disk: string) => path.join(path.dirname(disk), `.${path.basename(disk)}.vhdtool.lock`);
    const ref = trialDir();
    expect((await runCli(['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--no-progress'], { cwd: ref.dir, measure: false })).code).toBe(0);
    const merged = readFileSync(path.join(ref.dir, 'out.vhd'));
    expect((await runCli(['compact', 'child.vhd', '--no-progress'], { cwd: ref.dir, measure: false })).code).toBe(0);
    const compacted = readFileSync(ref.child);
    const states: Array<[string, (t: ReturnType<typeof trialDir>) => void, string[], number, string[]]> = [
      // [state, make it, the next run, its exit code, the directory after]
      ['merge killed while writing: partial temporary, no OUT', (t) => writeFileSync(tmp(path.join(t.dir, 'out.vhd'), 'a1'), merged.subarray(0, merged.length >> 1)),
        ['merge', 'child.vhd', 'base.vhd', 'out.vhd'], 0, ['base.vhd', 'child.vhd', 'out.vhd']],
      ['merge killed between link and unlink: OUT complete, its temporary a second link', (t) => {
        writeFileSync(path.join(t.dir, 'out.vhd'), merged);
        linkSync(path.join(t.dir, 'out.vhd'), tmp(path.join(t.dir, 'out.vhd'), 'b2'));
      }, ['merge', 'child.vhd', 'base.vhd', 'out.vhd'], 6, ['base.vhd', 'child.vhd', 'out.vhd']],
      ['compact --output killed between link and unlink', (t) => {
        writeFileSync(path.join(t.dir, 'small.vhd'), compacted);
        linkSync(path.join(t.dir, 'small.vhd'), tmp(path.join(t.dir, 'small.vhd'), 'c3'));
      }, ['compact', 'child.vhd', '--output', 'small.vhd'], 6, ['base.vhd', 'child.vhd', 'small.vhd']],
      ['compact killed while writing: partial temporary and its lock', (t) => {
        writeFileSync(tmp(t.child, 'd4'), compacted.subarray(0, 12345));
        writeFileSync(lockOf(t.child), `${pid} ${hostname()}\n`);
      }, ['compact', 'child.vhd'], 0, ['base.vhd', 'child.vhd']],
      ['compact killed after the rename: compacted, lock left', (t) => {
        writeFileSync(t.child, compacted);
        writeFileSync(lockOf(t.child), `${pid} ${hostname()}\n`);
      }, ['compact', 'child.vhd'], 0, ['base.vhd', 'child.vhd']],
    ];
    for (const [state, make, args, code, after] of states) {
      const t = trialDir();
      make(t);
      const r = await runCli([...args, '--no-progress'], { cwd: t.dir, measure: false });
      expect(r.code, `${state}: ${r.stderr}`).toBe(code);
      expect(readdirSync(t.dir).sort(), state).toEqual(after);
      if (args[0] === 'compact' && !args.includes('--output')) expect(same(t.child, compacted), state).toBe(true);
      // A fresh merge has a new UUID: compare its content; a refused one must leave OUT as it was.
      if (args[0] === 'merge' && code === 0) expect(await contentHash(path.join(t.dir, 'out.vhd')), state).toBe(childContent);
      if (args[0] === 'merge' && code !== 0) expect(same(path.join(t.dir, 'out.vhd'), merged), state).toBe(true);
      expect(same(t.base, baseBytes), state).toBe(true);
      rmSync(t.dir, { recursive: true, force: true });
    }
  }, 120_000);
});
