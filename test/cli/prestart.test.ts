/**
 * `vhdtool compare` starts its worker threads before loading the rest of
 * vhdtool (cli/prestart.ts). The operation must take those threads over
 * (not start a second set), every other command line must leave them alone,
 * and a command that fails first must not leave them running.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { prestart } from '../../src/cli/prestart.js';
import { closeEarly, createRunner, defaultThreads, earlyRunnerWaiting } from '../../src/parallel/pool.js';
import { compareRunnerOptions } from '../../src/ops/compareThreads.js';
import { compare } from '../../src/ops/compare.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain } from '../../src/synth/build.js';
import { patternBytes } from '../../src/synth/random.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cliRun.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const multiCore = defaultThreads() >= 2;

afterEach(async () => {
  await closeEarly();
});

describe('threads started ahead for compare', () => {
  it.runIf(multiCore)('compare with the default threads starts them, and the operation takes them over', async () => {
    prestart(['node', 'vhdtool', 'compare', 'a.vhd', 'b.vhd', '--json']);
    expect(earlyRunnerWaiting()).toBe(true);
    // A runner of another shape is a new one; the early one still waits.
    const other = createRunner({ threads: 1, slotBytes: 4096 });
    expect(earlyRunnerWaiting()).toBe(true);
    await other.close();
    const taken = createRunner(compareRunnerOptions(defaultThreads()));
    expect(earlyRunnerWaiting()).toBe(false);
    expect(taken.threads).toBe(defaultThreads() - 1);
    await taken.close();
  });

  it('other command lines start nothing', () => {
    for (const args of [['info', 'a.vhd'], ['compare', 'a', 'b', '--threads', '4'], ['compare', 'a', 'b', '--threads=4'], ['compare', '--help'], ['merge', 'a', 'b', 'c'], []]) {
      prestart(['node', 'vhdtool', ...args]);
      expect(earlyRunnerWaiting(), args.join(' ')).toBe(false);
    }
  });

  it.runIf(multiCore)('a compare that fails before it starts comparing closes the threads started for it', async () => {
    prestart(['node', 'vhdtool', 'compare', '/nonexistent/a.vhd', '/nonexistent/b.vhd']);
    expect(earlyRunnerWaiting()).toBe(true);
    const r = await runCli(['compare', '/nonexistent/a.vhd', '/nonexistent/b.vhd']);
    expect(r.code).toBe(3);
    expect(earlyRunnerWaiting()).toBe(false);
  });

  it('the installed command (bin/vhdtool.js) gives the verdict the main thread alone gives', async () => {
    const dir = tempDir();
    await nodeFileSystem.mkdir(path.join(dir, 'a'));
    await nodeFileSystem.mkdir(path.join(dir, 'b'));
    const data = patternBytes(3 * 1024 * 1024, 5);
    const other = Uint8Array.from(data);
    other[1024 * 1024 + 7] ^= 1;
    const [a] = await writeSynthChain(nodeFileSystem, path.join(dir, 'a'), [{ type: 'dynamic', virtualSize: 256 << 20, writes: [{ sector: 100000, data }] }]);
    const [b] = await writeSynthChain(nodeFileSystem, path.join(dir, 'b'), [{ type: 'dynamic', virtualSize: 256 << 20, writes: [{ sector: 100000, data: other }] }]);
    const want = await compare(a.path, b.path, { threads: 0 });
    expect(want.identical).toBe(false);
    const run = spawnSync(process.execPath, [path.join(root, 'bin', 'vhdtool.js'), 'compare', a.path, b.path, '--json'], { encoding: 'utf8' });
    expect(run.status).toBe(1);
    const got = JSON.parse(run.stdout) as typeof want;
    expect(got.firstDifference).toBe(want.firstDifference);
    expect(got.ranges).toEqual(want.ranges);
  });
});
