/**
 * Disk full and permission denied, for real where the system allows it:
 *
 * - ENOSPC: the chain lives on a small tmpfs (mounted for the test; root
 *   only) filled up to leave less room than the output needs. compact (in
 *   place and --output) and merge stop with exit 7 and one line naming the
 *   file; the original is byte-identical and no temporary, lock or partial
 *   output is left. A full disk that cannot even take the lock: the same.
 * - EACCES: the CLI runs as `nobody` against a directory it may read but not
 *   write: exit 7, nothing changed.
 * - Mid-write EACCES and ENOSPC (short write, then failure for good): injected
 *   with the FaultyFileSystem, since permissions are checked at open time.
 *
 * Where mounting or switching user is not possible, the real cases are
 * skipped with a warning; the injected ones (here and in
 * properties/faults.prop.ts) always run.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { VhdToolError } from '../../src/errors.js';
import { FaultyFileSystem } from '../../src/io/faulty.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { compact } from '../../src/ops/compact.js';
import { merge } from '../../src/ops/merge.js';
import { tempDir } from '../helpers/tmp.js';
import { hasBuild, lines, runCli, stackLines, type CliRun } from './helpers/cli.js';
import { diffSnapshots, snapshot } from './helpers/snapshot.js';
import { patternBytes as data } from '../../src/synth/random.js';

const M = 1024 * 1024;

/** 8 MiB disks: a base with 3 MiB of data, a child rewriting 1 MiB with the base's bytes and adding 2 MiB. */
const parent = data(3 * M, 1);
const LAYERS: SynthLayer[] = [
  { type: 'dynamic', virtualSize: 8 * M, blockSize: 512 * 1024, writes: [{ sector: 0, data: parent }] },
  { type: 'differencing', virtualSize: 8 * M, blockSize: 512 * 1024, writes: [{ sector: 0, data: parent.subarray(0, M) }, { sector: 8192, data: data(2 * M, 2) }] },
];

function expectCleanFailure(r: CliRun, file: string, text: RegExp): void {
  const where = JSON.stringify({ args: r.args, code: r.code, stderr: r.stderr, stdout: r.stdout });
  expect(r.code, where).toBe(7);
  expect(stackLines(r.stdout + r.stderr), where).toEqual([]);
  const err = lines(r.stderr);
  expect(err.length, where).toBe(1);
  expect(err[0], where).toContain(file);
  expect(err[0], where).toMatch(text);
}

const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts.splice(0)) {
    spawnSync('umount', [m]);
    rmSync(m, { recursive: true, force: true });
  }
});

/** A fresh tmpfs of `size` bytes, or null where mounting is not allowed. */
function smallTmpfs(size: number): string | null {
  const dir = mkdtempSync(path.join(tmpdir(), 'vhdtool-tmpfs-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return null;
  }
  mounts.push(dir);
  return dir;
}

/** Fills the file system holding `dir` until `leave` bytes remain free. */
function fillUntil(dir: string, leave: number): void {
  const free = statfsSync(dir).bavail * statfsSync(dir).bsize;
  if (free > leave) writeFileSync(path.join(dir, 'filler'), Buffer.alloc(free - leave));
}

describe.skipIf(!hasBuild())('disk full and permission denied', () => {
  it('ENOSPC on a real (tmpfs) file system: exit 7, one line, the original intact, nothing left behind', async () => {
    const dir = smallTmpfs(24 * M);
    if (!dir) return void console.warn('diskfull: cannot mount a tmpfs (not root?): the real ENOSPC case is skipped; injected ENOSPC still runs');
    await writeSynthChain(nodeFileSystem, dir, LAYERS, ['base.vhd', 'child.vhd']);
    // Room for the lock, not for a compacted child (~2.5 MiB) nor a merged disk (~5 MiB).
    fillUntil(dir, 1 * M);
    const before = snapshot(dir);
    for (const [args, file] of [
      [['compact', 'child.vhd'], 'child.vhd'],
      [['compact', 'child.vhd', '--output', 'out.vhd'], 'out.vhd'],
      [['merge', 'child.vhd', 'base.vhd', 'out.vhd'], 'out.vhd'],
      [['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--flatten', '--type', 'fixed'], 'out.vhd'],
    ] as Array<[string[], string]>) {
      const r = await runCli([...args, '--no-progress'], { cwd: dir });
      expectCleanFailure(r, file, /no space left on device/);
      expect(diffSnapshots(before, snapshot(dir)), args.join(' ')).toEqual([]);
    }
    // Completely full: not even the lock file can be written.
    rmSync(path.join(dir, 'filler'));
    fillUntil(dir, 0);
    const full = snapshot(dir);
    const r = await runCli(['compact', 'child.vhd', '--no-progress'], { cwd: dir });
    expectCleanFailure(r, 'child.vhd', /ENOSPC|no space/);
    expect(diffSnapshots(full, snapshot(dir))).toEqual([]);
    // And with room again, the same commands succeed (the failures left nothing in the way).
    rmSync(path.join(dir, 'filler'));
    expect((await runCli(['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--no-progress'], { cwd: dir })).code).toBe(0);
    expect((await runCli(['compact', 'child.vhd', '--no-progress'], { cwd: dir })).code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['base.vhd', 'child.vhd', 'out.vhd']);
  });

  it('EACCES for real: run as nobody in a directory it can read but not write: exit 7, nothing changed', async () => {
    if (process.getuid?.() !== 0) return void console.warn('diskfull: not root: cannot switch to nobody; the real EACCES case is skipped');
    const dir = mkdtempSync(path.join(tmpdir(), 'vhdtool-ro-'));
    mounts.push(dir); // removed in afterAll (umount fails harmlessly)
    chmodSync(dir, 0o755);
    await writeSynthChain(nodeFileSystem, dir, LAYERS, ['base.vhd', 'child.vhd']);
    // An output directory nobody may write to either, and one it may.
    const outOk = path.join(dir, 'writable');
    mkdirSync(outOk);
    chownSync(outOk, 65534, 65534);
    const before = snapshot(dir);
    const as = { cwd: dir, uid: 65534, gid: 65534 };
    expectCleanFailure(await runCli(['compact', 'child.vhd', '--no-progress'], as), 'child.vhd', /lock file.*EACCES|permission denied/);
    expectCleanFailure(await runCli(['merge', 'child.vhd', 'base.vhd', 'out.vhd', '--no-progress'], as), 'out.vhd', /permission denied/);
    expectCleanFailure(await runCli(['compact', 'child.vhd', '--output', 'out.vhd', '--no-progress'], as), 'out.vhd', /permission denied/);
    expect(diffSnapshots(before, snapshot(dir))).toEqual([]);
    // Reading is all it needs for an output elsewhere.
    const ok = await runCli(['merge', 'child.vhd', 'base.vhd', 'writable/out.vhd', '--no-progress'], as);
    expect(ok.code, ok.stderr).toBe(0);
  });

  describe('mid-write failures (injected: permissions are checked when a file is opened)', () => {
    for (const [errno, sticky, text] of [['EACCES', false, /permission denied/], ['ENOSPC', true, /no space left on device/], ['EIO', false, /I\/O error/]] as const) {
      it(`${errno}${sticky ? ' (for good, after a short write)' : ''} at the 4th write: compact and merge fail cleanly, the original intact`, async () => {
        for (const op of ['compact', 'merge'] as const) {
          const dir = tempDir('vhdtool-midwrite-');
          await writeSynthChain(nodeFileSystem, dir, LAYERS, ['base.vhd', 'child.vhd']);
          const before = snapshot(dir);
          const fs = new FaultyFileSystem(nodeFileSystem, { kind: 'write', at: 4, errno, sticky, partial: sticky });
          const child = path.join(dir, 'child.vhd');
          const run = op === 'compact' ? compact(child, { fs, threads: 0 }) : merge(child, path.join(dir, 'base.vhd'), path.join(dir, 'out.vhd'), { fs, threads: 0 });
          const err = await run.then(() => null, (e: unknown) => e);
          expect(fs.injected.length, op).toBeGreaterThan(0);
          expect(err, op).toBeInstanceOf(VhdToolError);
          expect((err as VhdToolError).code, op).toBe('WRITE_FAILED');
          expect((err as VhdToolError).line, op).toMatch(text);
          expect((err as VhdToolError).line, op).toContain(op === 'compact' ? 'child.vhd' : 'out.vhd');
          expect(diffSnapshots(before, snapshot(dir)), op).toEqual([]);
        }
      });
    }
  });
});
