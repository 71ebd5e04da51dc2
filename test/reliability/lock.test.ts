/**
 * The per-disk lock under the states concurrent and killed runs leave:
 * held by a live process (refused), left by a dead one (broken and taken),
 * created but not yet written by its owner (refused while fresh: breaking it
 * would let two writers in), empty and old (stale: broken), and a lock that
 * cannot be written at all (disk full: WRITE_FAILED, nothing left behind).
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { VhdToolError } from '../../src/errors.js';
import { FaultyFileSystem } from '../../src/io/faulty.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { lockDisk, lockPathFor } from '../../src/io/lock.js';
import { tempDir } from '../helpers/tmp.js';

async function refused(disk: string): Promise<VhdToolError> {
  const e = await lockDisk(nodeFileSystem, disk).then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(VhdToolError);
  return e as VhdToolError;
}

describe('the disk lock', () => {
  it('held by a live process: refused (exit 6) naming it; the lock is left alone', async () => {
    const disk = path.join(tempDir('vhdtool-lock-'), 'd.vhd');
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)']);
    try {
      writeFileSync(lockPathFor(disk), `${sleeper.pid} ${hostname()}\n`);
      const e = await refused(disk);
      expect(e.code).toBe('LOCKED');
      expect(e.exitCode).toBe(6);
      expect(e.message).toContain(String(sleeper.pid));
      expect(readFileSync(lockPathFor(disk), 'utf8')).toContain(String(sleeper.pid));
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('left by a dead process: broken and taken; released, nothing remains', async () => {
    const dir = tempDir('vhdtool-lock-');
    const disk = path.join(dir, 'd.vhd');
    const pid = Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
    writeFileSync(lockPathFor(disk), `${pid} ${hostname()}\n`);
    const lock = await lockDisk(nodeFileSystem, disk);
    expect(readFileSync(lockPathFor(disk), 'utf8')).toContain(String(process.pid));
    await lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('created but not yet written by its owner: refused while fresh, broken once old', async () => {
    const dir = tempDir('vhdtool-lock-');
    const disk = path.join(dir, 'd.vhd');
    writeFileSync(lockPathFor(disk), '');
    const e = await refused(disk);
    expect(e.code).toBe('LOCKED');
    expect(e.message).toMatch(/being locked/);
    expect(existsSync(lockPathFor(disk))).toBe(true);
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPathFor(disk), old, old);
    const lock = await lockDisk(nodeFileSystem, disk);
    await lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('that cannot be written (disk full at its first write): WRITE_FAILED, no half-made lock left', async () => {
    const dir = tempDir('vhdtool-lock-');
    const disk = path.join(dir, 'd.vhd');
    const fs = new FaultyFileSystem(nodeFileSystem, { kind: 'write', at: 1, errno: 'ENOSPC' });
    const e = await lockDisk(fs, disk).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(VhdToolError);
    expect((e as VhdToolError).code).toBe('WRITE_FAILED');
    expect((e as VhdToolError).exitCode).toBe(7);
    expect(readdirSync(dir)).toEqual([]);
  });
});
