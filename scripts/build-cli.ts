/**
 * The second step of `npm run build` (after tsc): the installed command as
 * one file, and the V8 code cache it starts from.
 *
 *   dist/cli/vhdtool.cjs         src/cli/entry.ts and everything it can load (commander and
 *                                ora included; piscina stays a package: its own worker
 *                                script is loaded by path), CommonJS, ending in its build id;
 *   dist/cli/compare.worker.cjs  the worker threads' module (workers/compare.worker.ts);
 *   dist/cli/vhdtool-ID.v8cache  the code V8 compiled while the bundle ran a few typical
 *                                command lines (info and check) here, on a tiny chain;
 *   dist/cli/THIRD-PARTY-LICENSES.txt  the licences of the packages inside the bundle.
 *
 * Why: a fresh Node process spent most of vhdtool's start-up resolving and
 * loading ~30-60 ES modules and parsing and compiling their code. One file
 * has no graph to resolve; the code cache spares most of the compiling.
 * bin/vhdtool.js loads the bundle with the cache (see there).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Script } from 'node:vm';
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { writeSynthChain } from '../src/synth/build.js';
import { nodeFileSystem } from '../src/io/fsys.js';
import { patternBytes } from '../src/synth/random.js';
import type { CliIO } from '../src/cli/context.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
const outDir = path.join(root, 'dist', 'cli');
const BUILD_MARK = '//# vhdtool-build ';

/**
 * Node's built-in modules that cost start-up time to load (child_process
 * brings net, dgram and streams; crypto a dozen modules) but that most
 * command lines never call: commander requires child_process for external
 * subcommands (vhdtool has none), the journal hashes only when it writes or
 * reads one. In the bundle each becomes an object of getters that loads the
 * module on first use.
 */
const LAZY_BUILTINS = ['child_process', 'crypto', 'os', 'zlib'];

function lazyModuleSource(name: string): string {
  const real = createRequire(import.meta.url)(`node:${name}`) as Record<string, unknown>;
  const props = Object.keys(real).map((k) => `  get ${JSON.stringify(k)}() { return load()[${JSON.stringify(k)}]; },`);
  return `let m;\nconst load = () => m ??= require('node:${name}');\nmodule.exports = {\n${props.join('\n')}\n};\n`;
}

const lazyBuiltins: Plugin = {
  name: 'lazy-builtins',
  setup(b) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    b.onResolve({ filter }, (a) => (a.namespace === 'lazy-builtin'
      ? { path: a.path, external: true }
      : { path: a.path.replace(/^node:/, ''), namespace: 'lazy-builtin' }));
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (a) => ({ contents: lazyModuleSource(a.path), loader: 'js' }));
  },
};

/** esbuild options shared by both bundles: CommonJS for Node 20, import.meta.url from the file's own path. */
const common: BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  write: false,
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
  // Whitespace, comments and syntax only: identifiers keep their names, for readable stack traces under
  // VHDTOOL_DEBUG. The bundle went from 1.0 MB to 0.69 MB: less to read and hash at every start.
  minifyWhitespace: true,
  minifySyntax: true,
  // ASCII only, so bin/vhdtool.js can read it as Latin-1 (7 ms against 13 ms for UTF-8 decoding here).
  charset: 'ascii',
  external: ['piscina'],
  plugins: [lazyBuiltins],
  define: { 'import.meta.url': '__vhdtoolImportMetaUrl' },
  banner: { js: "'use strict';\nconst __vhdtoolImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
};

async function bundle(entry: string, outfile: string): Promise<Metafile> {
  const r = await build({ ...common, absWorkingDir: root, entryPoints: [entry], outfile });
  if (!r.outputFiles || !r.metafile) throw new Error(`build-cli: esbuild gave no output for ${entry}`);
  const code = r.outputFiles[0].text;
  const wide = /[^\x00-\x7f]/.exec(code);
  if (wide) throw new Error(`build-cli: ${outfile} has a non-ASCII character at ${wide.index}; bin/vhdtool.js reads it as Latin-1`);
  const id = createHash('sha256').update(code).digest('hex').slice(0, 16);
  writeFileSync(outfile, `${code}${BUILD_MARK}${id}\n`);
  return r.metafile;
}

/** The licence texts of the packages bundled in (each is MIT; their notices must travel with the code). */
function licences(metas: Metafile[]): string {
  const pkgs = new Set<string>();
  for (const m of metas) {
    for (const input of Object.keys(m.inputs)) {
      const at = input.lastIndexOf('node_modules/');
      if (at < 0) continue;
      const parts = input.slice(at + 'node_modules/'.length).split('/');
      pkgs.add(parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]);
    }
  }
  const out: string[] = ['Packages bundled into dist/cli (npm run build), with their licences.\n'];
  for (const p of [...pkgs].sort()) {
    const dir = path.join(root, 'node_modules', p);
    const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
    const version = (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    out.push(`==== ${p}@${version} ====\n${file ? readFileSync(path.join(dir, file), 'utf8').trim() : '(no licence file in the package)'}\n`);
  }
  return out.join('\n');
}

interface Launcher {
  load(bundle: string, cache: boolean): { script: Script; exports: { run(argv: string[], io?: Partial<CliIO>): Promise<number> }; cacheFile: string | null };
}

/**
 * Runs typical command lines through the freshly compiled bundle, in this
 * process, then saves what V8 compiled meanwhile as the bundle's code cache.
 */
async function makeCodeCache(bundleFile: string): Promise<string> {
  const launcher = createRequire(import.meta.url)(path.join(root, 'bin', 'vhdtool.js')) as Launcher;
  const { script, exports, cacheFile } = launcher.load(bundleFile, false);
  if (!cacheFile) throw new Error('build-cli: the bundle has no build id');
  const dir = mkdtempSync(path.join(tmpdir(), 'vhdtool-build-'));
  try {
    const data = patternBytes(3 * 1024 * 1024, 7);
    const [, child] = await writeSynthChain(nodeFileSystem, dir, [
      { type: 'dynamic', virtualSize: 64 << 20, writes: [{ sector: 0, data }] },
      { type: 'differencing', virtualSize: 64 << 20, writes: [{ sector: 8192, data: data.subarray(0, 1 << 20) }] },
    ], ['base.vhd', 'child.vhd']);
    const io: Partial<CliIO> = { out: () => undefined, err: () => undefined, tty: false, stdoutTty: false };
    // The metadata commands a script runs over many files, where start-up is most of the time. Each
    // function compiled here is in the cache, and every command pays to load the cache: compiling
    // help and compare too made `info` ~2 ms slower here, for commands whose own work takes far longer.
    const lines = [
      ['info', child.path], ['info', child.path, '--json'],
      ['check', child.path], ['check', child.path, '--json'],
    ];
    for (const args of lines) {
      const code = await exports.run(['node', 'vhdtool', ...args], io);
      if (code > 1) throw new Error(`build-cli: \`vhdtool ${args.join(' ')}\` exited ${code} while making the code cache`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const f of readdirSync(outDir)) if (f.endsWith('.v8cache')) rmSync(path.join(outDir, f));
  writeFileSync(cacheFile, script.createCachedData());
  return cacheFile;
}

async function main(): Promise<void> {
  if (!existsSync(path.join(root, 'dist', 'src', 'cli', 'entry.js'))) throw new Error('build-cli: run tsc first (npm run build)');
  mkdirSync(outDir, { recursive: true });
  const cli = path.join(outDir, 'vhdtool.cjs');
  const metas = [
    await bundle('src/cli/entry.ts', cli),
    await bundle('workers/compare.worker.ts', path.join(outDir, 'compare.worker.cjs')),
  ];
  writeFileSync(path.join(outDir, 'THIRD-PARTY-LICENSES.txt'), licences(metas));
  await makeCodeCache(cli);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
