#!/usr/bin/env node
'use strict';
/**
 * The installed command. It runs the bundle `npm run build` makes of the
 * command line (dist/cli/vhdtool.cjs: one file, so no module graph to
 * resolve), compiled with the V8 code cache the build made beside it, so
 * that most of vhdtool's code needs no parsing or compiling at start-up.
 * A cache from another build or another Node is not used (the bundle's build
 * id names the cache file; V8 rejects one from another version), and then
 * the bundle is compiled as usual. Nothing is written at run time.
 *
 * (CommonJS, see bin/package.json: an ES module entry would cost the ES
 * module loader's start-up for one file.)
 */
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const { createRequire, wrap } = require('node:module');

const BUNDLE = path.join(__dirname, '..', 'dist', 'cli', 'vhdtool.cjs');
const BUILD_MARK = '//# vhdtool-build ';

/** The code cache's file for a bundle's source: named by the build id the build appends to the bundle. */
function cacheFileFor(bundle, source) {
  const at = source.lastIndexOf(BUILD_MARK);
  if (at < 0) return null;
  return path.join(path.dirname(bundle), `vhdtool-${source.slice(at + BUILD_MARK.length).trim()}.v8cache`);
}

/**
 * Compiles and evaluates the bundle as a CommonJS module. `cache`: true to
 * use the code cache if there is one, false to compile from source (the
 * build, which then makes the cache from the returned script).
 */
function load(bundle = BUNDLE, cache = true) {
  // The build makes the bundle ASCII only: read as Latin-1, it needs no UTF-8 decoding.
  const source = fs.readFileSync(bundle).latin1Slice();
  const cacheFile = cache ? cacheFileFor(bundle, source) : null;
  let cachedData;
  if (cacheFile) {
    try {
      cachedData = fs.readFileSync(cacheFile);
    } catch {
      /* no cache: compile from source */
    }
  }
  const script = new vm.Script(wrap(source), { filename: bundle, cachedData });
  const mod = { exports: {}, filename: bundle, id: bundle, loaded: false };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, path.dirname(bundle));
  mod.loaded = true;
  return { script, exports: mod.exports, cacheFile: cacheFileFor(bundle, source), cacheUsed: cachedData !== undefined && !script.cachedDataRejected };
}

if (require.main === module) {
  if (!fs.existsSync(BUNDLE)) {
    process.stderr.write(`vhdtool: ${BUNDLE} is missing: run \`npm run build\` (exit 70)\n`);
    process.exitCode = 70;
  } else {
    load().exports.run(process.argv).then((code) => {
      process.exitCode = code;
    });
  }
}

module.exports = { load, cacheFileFor };
