/**
 * Trust boundaries.
 *
 * - A disk in saved state is refused (exit 6) by every command that writes,
 *   and nothing is written.
 * - A parent with an unexpected UUID is refused (exit 5), naming both UUIDs.
 * - An output path that is an input is refused (exit 6): the same path, a
 *   symlink to it, a hard link to it, a path through a symlinked directory,
 *   with and without --force.
 * - Locator paths are untrusted: parent resolution only opens files for
 *   reading, stays within the documented search, and nothing is ever written
 *   through a path found in a file: proven with a logging FileSystem (every
 *   write vhdtool makes goes through one) and with a parent on a read-only
 *   mount; a locator naming a FIFO, a device or a directory neither hangs nor
 *   is opened.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { encodeFooter, encodeUtf16Le, sealFooter, decodeFooter, FOOTER_SIZE } from '../../src/format/index.js';
import { FaultyFileSystem } from '../../src/io/faulty.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthLayer, writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { compact } from '../../src/ops/compact.js';
import { merge, convert } from '../../src/ops/merge.js';
import { compare } from '../../src/ops/compare.js';
import { info } from '../../src/ops/info.js';
import { checkDisk } from '../../src/check/check.js';
import { createRunner } from '../../src/parallel/pool.js';
import { VhdToolError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { hasBuild, lines, pool, runCli, stackLines, type CliRun } from './helpers/cli.js';
import { diffSnapshots, snapshot } from './helpers/snapshot.js';
import { patternBytes as data } from '../../src/synth/random.js';

const M = 1024 * 1024;

const BASE: SynthLayer = { type: 'dynamic', virtualSize: 4 * M, blockSize: 512 * 1024, writes: [{ sector: 0, data: data(256 * 1024, 1) }] };
const CHILD: SynthLayer = {
  type: 'differencing', virtualSize: 4 * M, blockSize: 512 * 1024,
  writes: [{ sector: 0, data: data(64 * 1024, 1) }, { sector: 2048, data: data(128 * 1024, 2) }],
};

async function chain(dir: string): Promise<{ base: string; child: string }> {
  const [b, c] = await writeSynthChain(nodeFileSystem, dir, [BASE, CHILD], ['base.vhd', 'child.vhd']);
  return { base: b.path, child: c.path };
}

function expectRefused(r: CliRun, code: number, ...mustContain: string[]): void {
  const where = JSON.stringify({ args: r.args, code: r.code, stderr: r.stderr });
  expect(r.code, where).toBe(code);
  expect(stackLines(r.stdout + r.stderr), where).toEqual([]);
  const err = lines(r.stderr);
  expect(err.length, where).toBe(1);
  for (const s of mustContain) expect(err[0], where).toContain(s);
}

/** Sets the saved-state byte of a disk's footers (end and copy), resealed. */
function setSavedState(p: string): void {
  const b = readFileSync(p);
  const f = sealFooter({ ...decodeFooter(b.subarray(b.length - FOOTER_SIZE)), savedState: 1 });
  const enc = encodeFooter(f);
  b.set(enc, b.length - FOOTER_SIZE);
  b.set(enc, 0);
  writeFileSync(p, b);
}

describe.skipIf(!hasBuild())('trust boundaries', () => {
  it('a disk in saved state: compact (in place and --output), merge and convert refuse with exit 6 and write nothing', async () => {
    const dir = tempDir('vhdtool-trust-');
    const { child } = await chain(dir);
    setSavedState(child);
    const before = snapshot(dir);
    for (const args of [
      ['compact', 'child.vhd'],
      ['compact', 'child.vhd', '--output', 'out.vhd'],
      ['merge', 'child.vhd', 'base.vhd', 'out.vhd'],
      ['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--flatten', '--type', 'fixed'],
      ['convert', 'child.vhd', 'out.vhd'],
    ]) {
      const r = await runCli([...args, '--no-progress'], { cwd: dir });
      expectRefused(r, 6, 'child.vhd', 'saved state');
      expect(diffSnapshots(before, snapshot(dir)), args.join(' ')).toEqual([]);
    }
    // Reading is fine, and says so.
    const i = await runCli(['info', 'child.vhd'], { cwd: dir });
    expect(i.code).toBe(0);
    expect(i.stdout).toMatch(/saved state/);
  });

  it('a parent with an unexpected UUID is refused with exit 5, naming both UUIDs', async () => {
    const dir = tempDir('vhdtool-trust-');
    const { child } = await chain(dir);
    // An impostor: a valid disk with the right name but another UUID, in another directory.
    const other = path.join(dir, 'other');
    mkdirSync(other);
    const impostor = (await writeSynthLayer(nodeFileSystem, path.join(other, 'base.vhd'), BASE, null));
    const want = (await info(child, { parent: path.join(dir, 'base.vhd') })).parentUuid!;
    expect(impostor.uniqueId).not.toBe(want);
    const before = snapshot(dir);
    for (const args of [
      ['info', 'child.vhd', '--parent', 'other/base.vhd'],
      ['compact', 'child.vhd', '--parent', 'other/base.vhd'],
      ['merge', 'child.vhd', 'other/base.vhd', 'out.vhd'],
      ['compare', 'child.vhd', 'base.vhd', '--parent-a', 'other/base.vhd'],
      ['convert', 'child.vhd', 'out.vhd', '--parent', 'other/base.vhd'],
    ]) {
      const r = await runCli([...args, ...(args[0] === 'info' ? [] : ['--no-progress'])], { cwd: dir });
      expectRefused(r, 5, 'child.vhd', want, impostor.uniqueId);
      expect(diffSnapshots(before, snapshot(dir)), args.join(' ')).toEqual([]);
    }
    // Found through the locators instead: the same refusal.
    const moved = tempDir('vhdtool-trust-');
    const m = await chain(moved);
    const want2 = (await info(m.child)).parentUuid!;
    writeFileSync(m.base, readFileSync(impostor.path));
    const before2 = snapshot(moved);
    const r = await runCli(['compact', 'child.vhd', '--no-progress'], { cwd: moved });
    expectRefused(r, 5, want2, impostor.uniqueId);
    expect(diffSnapshots(before2, snapshot(moved))).toEqual([]);
  });

  it('an output that is an input is refused with exit 6: same path, symlink, hard link, symlinked directory; with --force too', async () => {
    const dir = tempDir('vhdtool-trust-');
    await chain(dir);
    symlinkSync('child.vhd', path.join(dir, 'child-link.vhd'));
    symlinkSync('base.vhd', path.join(dir, 'base-link.vhd'));
    linkSync(path.join(dir, 'child.vhd'), path.join(dir, 'child-hard.vhd'));
    linkSync(path.join(dir, 'base.vhd'), path.join(dir, 'base-hard.vhd'));
    symlinkSync('.', path.join(dir, 'same-dir'));
    const before = snapshot(dir);
    const outs = ['child.vhd', 'base.vhd', 'child-link.vhd', 'base-link.vhd', 'child-hard.vhd', 'base-hard.vhd', 'same-dir/child.vhd', 'same-dir/base-hard.vhd', `${dir}/./base.vhd`];
    const cases: string[][] = [];
    for (const out of outs) {
      for (const force of [[], ['--force']]) {
        cases.push(['merge', 'child.vhd', 'base.vhd', out, ...force], ['compact', 'child.vhd', '--output', out, ...force]);
      }
    }
    cases.push(['convert', 'child.vhd', 'child-hard.vhd', '--force'], ['convert', 'child.vhd', 'same-dir/base.vhd', '--force'], ['merge', 'child.vhd', 'base.vhd', 'base-link.vhd', '--flatten', '--force']);
    const runs = await pool(cases, 2, (args) => runCli([...args, '--no-progress'], { cwd: dir, measure: false }));
    for (const r of runs) expectRefused(r, 6, 'is an input');
    expect(runs.length).toBe(outs.length * 4 + 3);
    expect(diffSnapshots(before, snapshot(dir))).toEqual([]);
  }, 120_000);

  describe('locator paths are untrusted', () => {
    const mounts: string[] = [];
    afterAll(() => {
      for (const m of mounts.splice(0)) spawnSync('umount', [m]);
    });

    /** A parent in its own directory; a child elsewhere whose only way to it is an absolute W2ku locator. */
    async function splitChain(parentDir: string, childDir: string, parentPathInLocator: string): Promise<{ child: string; base: string }> {
      const base = await writeSynthLayer(nodeFileSystem, path.join(parentDir, 'base.vhd'), BASE, null);
      const child = await writeSynthLayer(nodeFileSystem, path.join(childDir, 'child.vhd'), {
        ...CHILD, parentName: 'not-beside-the-child.vhd', locators: [{ platform: 'W2ku', data: encodeUtf16Le(parentPathInLocator) }],
      }, base);
      return { child: child.path, base: base.path };
    }

    it('every write goes to the child\'s directory or the output; the parent named by an absolute locator is only opened for reading', async () => {
      const root = tempDir('vhdtool-trust-');
      const pdir = path.join(root, 'golden');
      const cdir = path.join(root, 'users');
      const odir = path.join(root, 'out');
      for (const d of [pdir, cdir, odir]) mkdirSync(d);
      const { child, base } = await splitChain(pdir, cdir, path.join(pdir, 'base.vhd'));
      const parentBefore = snapshot(pdir);
      const st0 = statSync(base);
      const runner = createRunner({ threads: 0, slotBytes: 512 });
      const ops: Array<[string, (fs: FaultyFileSystem) => Promise<unknown>]> = [
        ['info', (fs) => info(child, { fs })],
        ['check', (fs) => checkDisk(fs, child, runner)],
        ['compare', (fs) => compare(child, child, { fs, threads: 0 })],
        ['compact --output', (fs) => compact(child, { fs, threads: 0, output: path.join(odir, 'c.vhd') })],
        ['merge', (fs) => merge(child, base, path.join(odir, 'm.vhd'), { fs, threads: 0 })],
        ['convert', (fs) => convert(child, path.join(odir, 'v.vhd'), { fs, threads: 0 })],
        ['compact in place', (fs) => compact(child, { fs, threads: 0 })],
      ];
      for (const [name, op] of ops) {
        const fs = new FaultyFileSystem(nodeFileSystem);
        await op(fs);
        const writes = fs.log.filter((e) => e.op !== 'openRead');
        for (const w of writes) {
          const d = w.op === 'syncDir' ? w.path : path.dirname(w.path);
          expect(d === cdir || d === odir, `${name}: ${w.op} ${w.path}`).toBe(true);
        }
        // The parent was found through the absolute locator (it is opened, for reading: the only kind of open there is),
        // and nothing else outside the child's and the output's directories was opened at all.
        expect(fs.log.some((e) => e.op === 'openRead' && e.path === base), name).toBe(true);
        for (const e of fs.log.filter((x) => x.op === 'openRead')) {
          expect(e.path === base || path.dirname(e.path) === cdir || path.dirname(e.path) === odir, `${name}: opened ${e.path}`).toBe(true);
        }
        expect(writes.some((w) => w.path === base || path.dirname(w.path) === pdir), name).toBe(false);
      }
      await runner.close();
      expect(diffSnapshots(parentBefore, snapshot(pdir))).toEqual([]);
      const st1 = statSync(base);
      expect([st1.mtimeMs, st1.ctimeMs, st1.ino]).toEqual([st0.mtimeMs, st0.ctimeMs, st0.ino]);
    });

    it('with the parent on a read-only mount, every command works through the absolute locator and the mount stays untouched', async () => {
      const root = tempDir('vhdtool-trust-');
      const pdir = path.join(root, 'golden');
      const ro = path.join(root, 'golden-ro');
      const cdir = path.join(root, 'users');
      for (const d of [pdir, ro, cdir]) mkdirSync(d);
      // Bind-mount the parent's directory read-only (root only; skipped where mounting is not allowed).
      const bind = spawnSync('mount', ['--bind', pdir, ro]);
      if (bind.status !== 0) return void console.warn('trust: cannot bind-mount (not root?); read-only mount case skipped');
      mounts.push(ro);
      const remount = spawnSync('mount', ['-o', 'remount,bind,ro', ro]);
      if (remount.status !== 0) return void console.warn('trust: cannot remount read-only; case skipped');
      // Build the parent through the writable path, then point the child at the read-only one.
      await splitChain(pdir, cdir, path.join(ro, 'base.vhd'));
      expect(() => writeFileSync(path.join(ro, 'probe'), 'x')).toThrow();
      const before = snapshot(ro);
      for (const args of [
        ['info', 'child.vhd'],
        ['check', 'child.vhd'],
        ['compare', 'child.vhd', 'child.vhd', '--no-progress'],
        ['compact', 'child.vhd', '--output', 'c.vhd', '--no-progress'],
        ['merge', 'child.vhd', path.join(ro, 'base.vhd'), 'm.vhd', '--no-progress'],
        ['compact', 'child.vhd', '--no-progress'],
      ]) {
        const r = await runCli(args, { cwd: cdir });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
        if (args[0] === 'info') expect(r.stdout).toContain(`${ro}/base.vhd`);
      }
      expect(diffSnapshots(before, snapshot(ro))).toEqual([]);
    });

    it('control characters from a file (escape sequences, CR, line separators in a locator) never reach the terminal raw', async () => {
      const dir = tempDir('vhdtool-trust-');
      const base = await writeSynthLayer(nodeFileSystem, path.join(dir, 'real-base.vhd'), BASE, null);
      const evil = '/tmp/\u001b]0;pwned\u0007\u001b[2J\r\nvhdtool: all good\u2028x.vhd';
      await writeSynthLayer(nodeFileSystem, path.join(dir, 'child.vhd'), {
        ...CHILD, parentName: 'nowhere.vhd', locators: [{ platform: 'W2ku', data: encodeUtf16Le(evil) }],
      }, base);
      for (const args of [['info', 'child.vhd'], ['compact', 'child.vhd', '--no-progress']]) {
        const r = await runCli(args, { cwd: dir });
        expectRefused(r, 5, 'child.vhd', '\\x1b]0;pwned');
        expect(r.stderr.slice(0, -1), args.join(' ')).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
      }
    });

    it('a locator naming a FIFO, a device, a directory or a far-away relative path is never opened as a parent and never hangs', async () => {
      const dir = tempDir('vhdtool-trust-');
      const fifo = path.join(dir, 'fifo.vhd');
      execFileSync('mkfifo', [fifo]);
      mkdirSync(path.join(dir, 'adir.vhd'));
      const base = await writeSynthLayer(nodeFileSystem, path.join(dir, 'real-base.vhd'), BASE, null);
      const targets = [fifo, '/dev/zero', path.join(dir, 'adir.vhd'), '..\\..\\..\\..\\..\\..\\etc\\passwd'];
      for (const [i, t] of targets.entries()) {
        const name = `child${i}.vhd`;
        await writeSynthLayer(nodeFileSystem, path.join(dir, name), {
          ...CHILD, parentName: 'nowhere.vhd', locators: [{ platform: t.includes('\\') ? 'W2ru' : 'W2ku', data: encodeUtf16Le(t) }],
        }, base);
        const before = snapshot(dir);
        for (const args of [['info', name], ['compact', name, '--no-progress'], ['merge', name, fifo, 'out.vhd', '--no-progress']]) {
          const r = await runCli(args, { cwd: dir, timeoutMs: 20_000 });
          expect(r.signal, `${args.join(' ')} hung`).toBeNull();
          // merge names the FIFO itself as PARENT: a path that is not a regular file (exit 3), never opened.
          if (args[0] === 'merge') expectRefused(r, 3, fifo);
          else expectRefused(r, 5, name);
          expect(r.ms).toBeLessThan(5000);
          expect(diffSnapshots(before, snapshot(dir)), args.join(' ')).toEqual([]);
        }
        // In process: the FIFO, the device and the directory are never opened at all.
        const fs = new FaultyFileSystem(nodeFileSystem);
        await expect(info(path.join(dir, name), { fs })).rejects.toBeInstanceOf(VhdToolError);
        for (const e of fs.log) expect([fifo, '/dev/zero', path.join(dir, 'adir.vhd')], `${e.op} ${e.path}`).not.toContain(e.path);
        expect(fs.log.filter((e) => e.op !== 'openRead')).toEqual([]);
      }
    });
  });
});
