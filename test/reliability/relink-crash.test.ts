/**
 * Real kill -9 during `vhdtool relink`.
 *
 * In place (header and locator sectors under an undo journal): the process
 * SIGKILLs itself at each step (VHDTOOL_CRASH_AT): half the journal written,
 * the journal complete, after each of the three sector writes, after the
 * fsync, after the journal's removal. After each kill: the disk opens
 * strictly and shows the old link (before the commit) or the new one (after),
 * never a mix; no byte outside the header and locator sectors changed; the
 * parent is untouched; the next command that locks the disk restores the
 * exact original bytes (before the commit), and relink then finishes.
 *
 * Rewriting (locators that do not fit): killed from outside at events seen in
 * the folder (the temporary appears, is half written, complete, published)
 * and at fractions of a run: the path holds the original or the complete
 * rewritten disk; the next relink removes the temporary and finishes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { isTempName } from '../../src/io/atomic.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { lockDisk } from '../../src/io/lock.js';
import { isJournalName, journalPathFor } from '../../src/io/journal.js';
import { openVhd } from '../../src/vhd/image.js';
import { writeSynthLayer, type SynthLayer } from '../../src/synth/build.js';
import { hyperVLocatorsReserved } from '../../src/vhd/build.js';
import { contentHash } from '../helpers/hash.js';
import { readHeader } from '../helpers/patch.js';
import { writeBigChain } from './helpers/bigchain.js';
import { hasBuild, runCli, startCli } from './helpers/cli.js';
import { ScratchDirs } from './helpers/scratch.js';

const MiB = 1024 * 1024;
const scratch = new ScratchDirs();
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

/** The link a reader sees: parent name and every locator's decoded path. */
async function linkOf(p: string): Promise<string> {
  const v = await openVhd(nodeFileSystem, p, { mode: 'strict' });
  try {
    return JSON.stringify([v.meta.header!.parentUnicodeName, v.meta.locators.map((l) => [l.entry.platform, l.value.ok ? l.value.path : null])]);
  } finally {
    await v.close();
  }
}

/** The file's bytes with the header and every (old or new) locator slot blanked: what must never change. */
function outsideLink(p: string, slots: Array<[number, number]>): Buffer {
  const b = Buffer.from(readFileSync(p));
  b.fill(0, 512, 1536);
  for (const [at, n] of slots) b.fill(0, at, at + n);
  return b;
}

describe.skipIf(!hasBuild())('kill -9 during relink', () => {
  afterAll(() => scratch.removeAll());

  describe('in place, under the undo journal', () => {
    let pristine = '';
    let oldLink = '';
    let newLink = '';
    let content = '';
    const base: SynthLayer = { type: 'dynamic', virtualSize: 8 * MiB, writes: [{ sector: 0, data: fill(1 << 20, 0x31) }] };

    beforeAll(async () => {
      pristine = scratch.make('vhdtool-relink-kill-pristine-');
      mkdirSync(path.join(pristine, 'golden'));
      mkdirSync(path.join(pristine, 'vms'));
      const b = await writeSynthLayer(nodeFileSystem, path.join(pristine, 'golden', 'base.vhd'), base, null);
      const child = path.join(pristine, 'vms', 'user1.vhd');
      await writeSynthLayer(nodeFileSystem, child, {
        type: 'differencing', virtualSize: base.virtualSize, writes: [{ sector: 4096, data: fill(1 << 20, 0x32) }],
        locators: hyperVLocatorsReserved(child, b.path),
      }, b);
      content = await contentHash(child);
      oldLink = await linkOf(child);
      // The link a complete run writes, from an uninterrupted run in a copy.
      const ref = trial();
      const r = await runCli(['relink', 'vms/user1.vhd', '--search', '.', '--no-progress'], { cwd: ref.dir, measure: false });
      expect(r.code, r.stderr).toBe(0);
      newLink = (await linkOf(ref.child)).split(ref.dir).join('<root>');
      expect(newLink).not.toBe(oldLink.split(pristine).join('<root>'));
    }, 60_000);

    /** A copy of the pristine tree with the parent's folder moved away (cp -a: file times kept). */
    function trial(): { dir: string; child: string; base: string } {
      const dir = scratch.make('vhdtool-relink-kill-');
      rmSync(dir, { recursive: true });
      cpSync(pristine, dir, { recursive: true, preserveTimestamps: true });
      renameSync(path.join(dir, 'golden'), path.join(dir, 'golden-moved'));
      return { dir, child: path.join(dir, 'vms', 'user1.vhd'), base: path.join(dir, 'golden-moved', 'base.vhd') };
    }

    const POINTS: Array<[string, 'old' | 'new']> = [
      ['journal-partial', 'old'], ['journal-written', 'old'], ['patch-0', 'old'], ['patch-1', 'old'], ['patch-2', 'old'],
      ['patched', 'old'], ['journal-removed', 'new'],
    ];

    for (const [point, expected] of POINTS) {
      it(`killed at ${point}: the disk shows the ${expected} link, nothing else changed; the next locker restores it; relink then finishes`, async () => {
        const t = trial();
        const before = readFileSync(t.child);
        const st = statSync(t.child);
        const baseSha = sha(t.base);
        const h = readHeader(t.child);
        const slots = h.locators.filter((l) => l.platform !== null).map((l): [number, number] => [l.dataOffset, l.dataSpace]);
        const r = await runCli(['relink', 'vms/user1.vhd', '--search', '.', '--no-progress'], { cwd: t.dir, measure: false, env: { VHDTOOL_CRASH_AT: point } });
        expect(r.signal, `${point}: ${r.stderr}`).toBe('SIGKILL');
        const journal = existsSync(journalPathFor(t.child));
        expect(journal, point).toBe(expected === 'old');

        // A reader (no lock): strictly valid, the old or the new link, never a mix.
        // (The old link is the copied bytes: absolute paths into the pristine folder.)
        const seen = await linkOf(t.child);
        if (expected === 'old') expect(seen, point).toBe(oldLink);
        else expect(seen.split(t.dir).join('<root>'), point).toBe(newLink);
        const info = await runCli(['info', 'vms/user1.vhd', '--parent', t.base, '--json'], { cwd: t.dir, measure: false });
        expect(info.code, info.stderr).toBe(0);
        // Nothing but the header and locator sectors differs; the parent is untouched; nothing else is left.
        expect(outsideLink(t.child, slots).equals(outsideLink(path.join(pristine, 'vms', 'user1.vhd'), slots)), point).toBe(true);
        expect(statSync(t.child).ino).toBe(st.ino);
        expect(sha(t.base)).toBe(baseSha);
        for (const n of readdirSync(path.dirname(t.child))) {
          expect(n === 'user1.vhd' || isJournalName(n) || n === '.user1.vhd.vhdtool.lock', `${point}: unexpected ${n}`).toBe(true);
        }

        // The next command that locks the disk rolls an uncommitted write back to the exact original bytes.
        const lock = await lockDisk(nodeFileSystem, t.child);
        await lock.release();
        expect(existsSync(journalPathFor(t.child)), point).toBe(false);
        if (expected === 'old') {
          expect(readFileSync(t.child).equals(before), `${point}: rolled back to the original bytes`).toBe(true);
          expect(Math.abs(statSync(t.child).mtimeMs - st.mtimeMs)).toBeLessThan(0.01);
        }
        // And relink finishes the job.
        const next = await runCli(['relink', 'vms/user1.vhd', '--search', '.', '--no-progress', '--json'], { cwd: t.dir, measure: false });
        expect(next.code, `${point}: ${next.stderr}`).toBe(0);
        expect((JSON.parse(next.stdout) as { method: string }).method).toBe(expected === 'old' ? 'in-place' : 'unchanged');
        expect((await linkOf(t.child)).split(t.dir).join('<root>')).toBe(newLink);
        expect(await contentHash(t.child)).toBe(content);
        expect(readdirSync(path.dirname(t.child))).toEqual(['user1.vhd']);
        expect(sha(t.base)).toBe(baseSha);
      }, 60_000);
    }

    it('a command that locks the disk (compact) rolls back a killed relink first, then does its own work', async () => {
      const t = trial();
      const r = await runCli(['relink', 'vms/user1.vhd', '--search', '.', '--no-progress'], { cwd: t.dir, measure: false, env: { VHDTOOL_CRASH_AT: 'patch-1' } });
      expect(r.signal).toBe('SIGKILL');
      const c = await runCli(['compact', 'vms/user1.vhd', '--parent', t.base, '--no-progress', '--json'], { cwd: t.dir, measure: false });
      expect(c.code, c.stderr).toBe(0);
      expect(existsSync(journalPathFor(t.child))).toBe(false);
      expect(await linkOf(t.child)).toBe(oldLink);
      expect(await contentHash(t.child, { parent: t.base })).toBe(content);
    }, 60_000);
  });

  describe('rewriting the whole file (locators that do not fit)', () => {
    let pristine = '';
    let content = '';
    let origSha = '';
    const far = path.join('a folder with a name long enough '.repeat(4).trim(), 'that the locators no longer fit the file '.repeat(3).trim());

    beforeAll(async () => {
      pristine = scratch.make('vhdtool-relink-rw-pristine-');
      await writeBigChain(pristine, 64 * MiB);
      content = await contentHash(path.join(pristine, 'child.vhd'));
      origSha = sha(path.join(pristine, 'child.vhd'));
    }, 120_000);

    function trial(): { dir: string; child: string; base: string } {
      const dir = scratch.make('vhdtool-relink-rw-');
      cpSync(path.join(pristine, 'child.vhd'), path.join(dir, 'child.vhd'), { preserveTimestamps: true });
      mkdirSync(path.join(dir, far), { recursive: true });
      cpSync(path.join(pristine, 'base.vhd'), path.join(dir, far, 'base.vhd'), { preserveTimestamps: true });
      return { dir, child: path.join(dir, 'child.vhd'), base: path.join(dir, far, 'base.vhd') };
    }

    it('killed at events and at fractions of a run: the original or the complete rewritten disk; the next relink cleans up and finishes', async () => {
      const ref = trial();
      const full = await runCli(['relink', 'child.vhd', '--search', '.', '--no-progress', '--json'], { cwd: ref.dir, measure: false });
      expect(full.code, full.stderr).toBe(0);
      expect((JSON.parse(full.stdout) as { method: string }).method).toBe('rewrite');
      const finalSize = statSync(ref.child).size;
      const triggers: Array<[string, { at: number } | { event: string }]> = [
        ...[0.2, 0.5, 0.8].map((f): [string, { at: number }] => [`t=${Math.round(f * 100)}%`, { at: Math.max(1, Math.round(f * full.ms)) }]),
        ['temp-created', { event: 'temp-created' }], ['temp-half', { event: 'temp-half' }], ['temp-full', { event: 'temp-full' }], ['published', { event: 'published' }],
      ];
      const states: string[] = [];
      for (const [point, trig] of triggers) {
        const t = trial();
        const ino = statSync(t.child).ino;
        const { child, done } = startCli(['relink', 'child.vhd', '--search', '.', '--no-progress'], { cwd: t.dir, measure: false, timeoutMs: 60_000 });
        let exited = false;
        let sawTemp = false;
        void done.then(() => { exited = true; });
        const kill = () => { if (!exited) child.kill('SIGKILL'); };
        let timer: NodeJS.Timeout;
        if ('at' in trig) timer = setTimeout(kill, trig.at);
        else {
          timer = setInterval(() => {
            const temps = readdirSync(t.dir).filter(isTempName);
            if (temps.length) sawTemp = true;
            const size = temps.length ? (statSync(path.join(t.dir, temps[0]), { throwIfNoEntry: false })?.size ?? 0) : 0;
            const now = statSync(t.child, { throwIfNoEntry: false })?.ino;
            if ((trig.event === 'temp-created' && temps.length) || (trig.event === 'temp-half' && size >= finalSize / 2) ||
                (trig.event === 'temp-full' && size >= finalSize) || (trig.event === 'published' && sawTemp && now !== ino)) kill();
          }, 1);
        }
        const run = await done;
        clearTimeout(timer);
        clearInterval(timer);
        if (run.signal !== 'SIGKILL') expect(run.code, `${point}: ${run.stderr}`).toBe(0);
        const isOriginal = sha(t.child) === origSha;
        let state = isOriginal ? 'original' : 'OTHER';
        if (!isOriginal) {
          // Complete: strictly valid, same UUID and content, the new link.
          const v = await openVhd(nodeFileSystem, t.child, { mode: 'strict' });
          await v.close();
          expect(await contentHash(t.child), point).toBe(content);
          expect(statSync(t.child).size, point).toBe(finalSize);
          state = 'rewritten';
        }
        states.push(`${point}: ${run.signal === 'SIGKILL' ? 'killed' : 'finished'} -> ${state}`);
        const top = far.split(path.sep)[0];
        for (const n of readdirSync(t.dir)) expect(['child.vhd', top, '.child.vhd.vhdtool.lock'].includes(n) || isTempName(n), `${point}: unexpected ${n}`).toBe(true);
        const next = await runCli(['relink', 'child.vhd', '--search', '.', '--no-progress'], { cwd: t.dir, measure: false });
        expect(next.code, `${point}: ${next.stderr}`).toBe(0);
        expect(readdirSync(t.dir).sort(), point).toEqual(['child.vhd', top].sort());
        expect(await contentHash(t.child), point).toBe(content);
      }
      // eslint-disable-next-line no-console
      console.log(`relink rewrite, run ${Math.round(full.ms)} ms: ${states.join('; ')}`);
      expect(states.filter((s) => s.includes('killed')).length).toBeGreaterThanOrEqual(4);
      expect(states.some((s) => s.includes('killed -> original'))).toBe(true);
    }, 240_000);
  });
});
