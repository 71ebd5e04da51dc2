/**
 * The installed command (bin/vhdtool.js) runs the bundle the build makes
 * (dist/cli/vhdtool.cjs) from its V8 code cache, and loads only what the
 * command line needs.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain } from '../../src/synth/build.js';
import { patternBytes } from '../../src/synth/random.js';
import { VERSION } from '../../src/cli/main.js';
import { tempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin', 'vhdtool.js');
const bundle = path.join(root, 'dist', 'cli', 'vhdtool.cjs');
const launcher = createRequire(import.meta.url)(bin) as {
  cacheFileFor(bundle: string, source: string): string | null;
};

/** Runs bin/vhdtool.js ARGS in a fresh Node that reports, at exit, what it loaded and whether the code cache was used. */
function probe(args: string[]): { status: number | null; stdout: string; loaded: { builtins: string[]; packages: string[]; cacheUsed: boolean } } {
  const script = `
    const l = require(${JSON.stringify(bin)});
    const before = new Set(process.moduleLoadList);
    const r = l.load();
    process.on('exit', () => {
      const builtins = process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13));
      const packages = Object.keys(require.cache).filter((f) => f.includes('node_modules'));
      require('node:fs').writeSync(2, '\\nPROBE ' + JSON.stringify({ builtins, packages, cacheUsed: r.cacheUsed }) + '\\n');
    });
    r.exports.run(['node', 'vhdtool', ...${JSON.stringify(args)}]).then((c) => { process.exitCode = c; });`;
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env });
  const line = r.stderr.split('\n').find((l) => l.startsWith('PROBE '));
  if (!line) throw new Error(`no probe output: ${r.stderr}`);
  return { status: r.status, stdout: r.stdout, loaded: JSON.parse(line.slice(6)) as { builtins: string[]; packages: string[]; cacheUsed: boolean } };
}

async function smallChain(): Promise<string> {
  const dir = tempDir();
  const [, child] = await writeSynthChain(nodeFileSystem, dir, [
    { type: 'dynamic', virtualSize: 64 << 20, writes: [{ sector: 0, data: patternBytes(1 << 20, 3) }] },
    { type: 'differencing', virtualSize: 64 << 20, writes: [{ sector: 4096, data: patternBytes(1 << 20, 4) }] },
  ]);
  return child.path;
}

describe('the installed command', () => {
  it('prints the package version for --version, as the library says it', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    expect(VERSION).toBe(pkg.version);
    expect(pkg.bin.vhdtool).toBe('bin/vhdtool.js');
    const r = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${pkg.version}\n`);
  });

  it('--version does not set up the command line', () => {
    const r = probe(['--version']);
    expect(r.status).toBe(0);
    expect(r.loaded.cacheUsed).toBe(true);
    // commander (bundled) requires node:process when it loads; `--help` does, `--version` must not.
    expect(r.loaded.builtins).not.toContain('process');
    expect(probe(['--help']).loaded.builtins).toContain('process');
  });

  it('info starts from the code cache, without piscina, ora, child_process or crypto', async () => {
    const child = await smallChain();
    const r = probe(['info', child, '--json']);
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { chain: unknown[] }).chain).toHaveLength(2);
    expect(r.loaded.cacheUsed).toBe(true);
    // commander and ora are inside the bundle; piscina is the only package loaded from node_modules, and only for threads.
    expect(r.loaded.packages).toEqual([]);
    for (const m of ['child_process', 'crypto', 'worker_threads']) expect(r.loaded.builtins, m).not.toContain(m);
    // Its lines go to standard output (a pipe here) without Node's stream objects, and its files are
    // read without node:fs/promises: each of those would load a dozen modules (cli/stdio.ts, io/fsys.ts).
    for (const m of ['stream', 'net', 'tty', 'fs/promises']) expect(r.loaded.builtins, m).not.toContain(m);
  });

  it('an error from info reaches standard error without loading Node\'s streams', () => {
    const r = probe(['info', path.join(tempDir(), 'missing.vhd')]);
    expect(r.status).toBe(3);
    for (const m of ['stream', 'net', 'tty']) expect(r.loaded.builtins, m).not.toContain(m);
  });

  it('compare with threads loads piscina and runs the bundled worker', async () => {
    const child = await smallChain();
    const r = probe(['compare', child, child, '--threads', '2', '--json']);
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { identical: boolean }).identical).toBe(true);
    expect(r.loaded.packages.some((f) => f.includes(`${path.sep}piscina${path.sep}`))).toBe(true);
  });

  it('a bundle from another build does not use this build\'s cache', () => {
    const source = readFileSync(bundle, 'utf8');
    const own = launcher.cacheFileFor(bundle, source);
    expect(own).toMatch(/vhdtool-[0-9a-f]{16}\.v8cache$/);
    // Same file name, other content: another build id, so another cache file (absent).
    const other = source.replace(/\/\/# vhdtool-build [0-9a-f]+\n$/, '//# vhdtool-build 0123456789abcdef\n');
    expect(launcher.cacheFileFor(bundle, other)).not.toBe(own);
    // And a copy of the bundle without a build id has no cache at all.
    const copy = path.join(tempDir(), 'vhdtool.cjs');
    copyFileSync(bundle, copy);
    expect(launcher.cacheFileFor(copy, source.replace(/\/\/# vhdtool-build [0-9a-f]+\n$/, ''))).toBeNull();
  });
});
