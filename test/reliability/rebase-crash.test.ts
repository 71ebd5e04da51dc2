/**
 * Real kill -9 (at 6 moments) and SIGTERM during an in-place `vhdtool rebase` (64 MiB chain,
 * 2 MiB blocks): the child is rebased from its base onto an updated template
 * (a child of the same base that rewrote and zeroed some of it).
 *
 * After a kill -9 at any moment the child's path holds the original, byte for
 * byte, or the complete result (strictly valid, the child's exact content,
 * its UUID, linked to the new template, storing what an uninterrupted run
 * stores). Nothing else is ever touched. The next run removes what the killed
 * one left (temporary, lock) and finishes. SIGTERM stops a run within seconds
 * with exit 130 and no temporary, the original intact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, linkSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { isTempName } from '../../src/io/atomic.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openVhd } from '../../src/vhd/image.js';
import { info } from '../../src/ops/info.js';
import { writeSynthLayer } from '../../src/synth/build.js';
import { patternBytes } from '../../src/synth/random.js';
import { contentHash } from '../helpers/hash.js';
import { storedSectors } from '../helpers/rebase.js';
import { writeBigChain } from './helpers/bigchain.js';
import { hasBuild, runCli, startCli } from './helpers/cli.js';
import { ScratchDirs } from './helpers/scratch.js';

const SIZE = 64 * 1024 * 1024;
const MiB = 1024 * 1024;
const ARGS = ['rebase', 'child.vhd', '--onto', 'base-v2.vhd', '--no-progress'];

const scratch = new ScratchDirs();
let pristine = '';
const bytes: Record<string, Buffer> = {};
let childContent = '';
let childUuid = '';
let v2Uuid = '';
let refStored: number[] = [];

const same = (p: string, b: Buffer) => {
  const st = statSync(p, { throwIfNoEntry: false });
  return st !== undefined && st.size === b.length && readFileSync(p).equals(b);
};

/** A trial folder: base and base-v2 hard-linked (never written: their bytes are checked), the child copied. */
function trialDir(): string {
  const dir = scratch.make('vhdtool-rebase-kill-');
  for (const n of ['base.vhd', 'base-v2.vhd']) linkSync(path.join(pristine, n), path.join(dir, n));
  copyFileSync(path.join(pristine, 'child.vhd'), path.join(dir, 'child.vhd'));
  return dir;
}

/** "original", "rebased" (complete and right) or a description of what is wrong. */
async function stateOf(dir: string): Promise<string> {
  const child = path.join(dir, 'child.vhd');
  if (same(child, bytes['child.vhd'])) return 'original';
  try {
    const v = await openVhd(nodeFileSystem, child, { mode: 'strict' });
    await v.close();
  } catch (e) {
    return `broken: ${String(e)}`;
  }
  const i = await info(child);
  if (i.uuid !== childUuid || i.parentUuid !== v2Uuid) return `wrong identity ${i.uuid} -> ${i.parentUuid}`;
  if (await contentHash(child) !== childContent) return 'wrong content';
  if (JSON.stringify(await storedSectors(child)) !== JSON.stringify(refStored)) return 'not the sectors an uninterrupted run stores';
  return 'rebased';
}

function extras(dir: string): string[] {
  return readdirSync(dir).filter((n) => !['base.vhd', 'base-v2.vhd', 'child.vhd'].includes(n)).sort();
}

/**
 * Starts the CLI in `dir`; sends `signal` after `at` ms, when a temporary
 * first appears (`at` = 'temp'), or when the child's path changes inode (the
 * result was renamed into place: 'published').
 */
async function runAndSignal(dir: string, signal: NodeJS.Signals, at: number | 'temp' | 'published'): Promise<{ signalled: boolean; code: number | null; by: NodeJS.Signals | null; exitMs: number }> {
  const { child, done } = startCli(ARGS, { cwd: dir, measure: false, timeoutMs: 120_000 });
  let exited = false;
  let sentAt = -1;
  void done.then(() => { exited = true; });
  const send = () => {
    if (!exited && sentAt < 0 && child.kill(signal)) sentAt = performance.now();
  };
  let poll: NodeJS.Timeout | null = null;
  const ino = statSync(path.join(dir, 'child.vhd')).ino;
  if (at === 'temp') poll = setInterval(() => { if (readdirSync(dir).some(isTempName)) send(); }, 1);
  else if (at === 'published') poll = setInterval(() => { if (statSync(path.join(dir, 'child.vhd'), { throwIfNoEntry: false })?.ino !== ino) send(); }, 1);
  else setTimeout(send, at);
  const run = await done;
  if (poll) clearInterval(poll);
  return { signalled: sentAt >= 0, code: run.code, by: run.signal, exitMs: sentAt >= 0 ? performance.now() - sentAt : 0 };
}

describe.skipIf(!hasBuild())('kill -9 and SIGTERM during an in-place rebase', () => {
  afterAll(() => scratch.removeAll());

  beforeAll(async () => {
    pristine = scratch.make('vhdtool-rebase-pristine-');
    await writeBigChain(pristine, SIZE);
    const base = path.join(pristine, 'base.vhd');
    // The updated template: a child of the same base that rewrote some blocks and zeroed part of another.
    await writeSynthLayer(nodeFileSystem, path.join(pristine, 'base-v2.vhd'), {
      type: 'differencing', virtualSize: SIZE, writes: [
        { sector: 3 * 4096, data: patternBytes(4 * MiB, 21) },
        { sector: 20 * 4096 + 100, data: new Uint8Array(MiB) },
        { sector: 31 * 4096, data: patternBytes(2 * MiB, 22) },
      ],
    }, { path: base, uniqueId: (await info(base)).uuid as never });
    for (const n of ['base.vhd', 'base-v2.vhd', 'child.vhd']) bytes[n] = readFileSync(path.join(pristine, n));
    const child = path.join(pristine, 'child.vhd');
    childContent = await contentHash(child);
    childUuid = (await info(child)).uuid;
    v2Uuid = (await info(path.join(pristine, 'base-v2.vhd'))).uuid;
  }, 120_000);

  it('kill -9 at any moment: the path holds the original or the complete result; the next run cleans up and finishes', async () => {
    const ref = trialDir();
    const full = await runCli(ARGS, { cwd: ref, measure: false });
    expect(full.code, full.stderr).toBe(0);
    refStored = await storedSectors(path.join(ref, 'child.vhd'));
    expect(refStored.length).toBeGreaterThan(0);
    expect(await stateOf(ref)).toBe('rebased');
    const points: Array<number | 'temp' | 'published'> = ['temp', 'published', ...[0.15, 0.4, 0.65, 0.9].map((f) => Math.round(f * full.ms))];
    const seen: string[] = [];
    let killed = 0;
    for (const at of points) {
      const dir = trialDir();
      const r = await runAndSignal(dir, 'SIGKILL', at);
      const wasKilled = r.signalled && r.by === 'SIGKILL';
      if (!wasKilled) expect(r.code, `${at}: exit`).toBe(0);
      const state = await stateOf(dir);
      expect(['original', 'rebased'], `kill at ${at}: ${state}`).toContain(state);
      expect(same(path.join(dir, 'base.vhd'), bytes['base.vhd'])).toBe(true);
      expect(same(path.join(dir, 'base-v2.vhd'), bytes['base-v2.vhd'])).toBe(true);
      const left = extras(dir);
      for (const n of left) expect(isTempName(n) || n === '.child.vhd.vhdtool.lock', `${at}: unexpected ${n}`).toBe(true);
      const next = await runCli(ARGS, { cwd: dir, measure: false });
      expect(next.code, `${at}: next run: ${next.stderr}`).toBe(0);
      expect(extras(dir), `${at}: after the next run`).toEqual([]);
      expect(await stateOf(dir), `${at}: after the next run`).toBe('rebased');
      if (wasKilled) killed++;
      seen.push(`${at}: ${wasKilled ? 'killed' : 'finished'} -> ${state}${left.length ? ` [left ${left.join(', ')}]` : ''}`);
      rmSync(dir, { recursive: true, force: true });
    }
    // eslint-disable-next-line no-console
    console.log(`rebase kill -9 (run ${Math.round(full.ms)} ms): ${seen.join('; ')}`);
    expect(killed).toBeGreaterThanOrEqual(3);
    expect(seen.some((s) => s.includes('killed -> original'))).toBe(true);
  }, 300_000);

  it('SIGTERM stops it within seconds: exit 130, no temporary, the original intact', async () => {
    const full = await runCli(ARGS, { cwd: trialDir(), measure: false });
    let interrupted = 0;
    for (const at of ['temp', Math.round(full.ms * 0.6)] as const) {
      const dir = trialDir();
      const r = await runAndSignal(dir, 'SIGTERM', at);
      if (!r.signalled || r.code === 0) {
        expect(await stateOf(dir)).toBe('rebased');
        continue;
      }
      // (A signal before Node has started vhdtool's code kills it outright; that is not a run to judge.)
      if (r.by === 'SIGTERM') continue;
      interrupted++;
      expect(r.code, `${at}`).toBe(130);
      expect(r.exitMs).toBeLessThan(5000);
      expect(extras(dir)).toEqual([]);
      expect(await stateOf(dir)).toBe('original');
    }
    expect(interrupted).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
