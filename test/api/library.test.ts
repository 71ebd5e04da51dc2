/**
 * vhdtool is a library as well as a command: package.json's entry point must
 * exist once built, and what it exports must work on a real disk, the same
 * way the command line uses it.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain } from '../../src/synth/build.js';
import { tempDir } from '../helpers/tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { main: string; types: string };

describe('the library entry point', () => {
  it('package.json names a main module and type declarations that the build produces', () => {
    expect(existsSync(path.join(root, pkg.main)), pkg.main).toBe(true);
    expect(existsSync(path.join(root, pkg.types)), pkg.types).toBe(true);
  });

  it('its operations and codecs work on a real chain: info, compare, compact (dry run), reading content', async () => {
    const lib = (await import(pathToFileURL(path.join(root, pkg.main)).href)) as typeof import('../../src/index.js');
    const dir = tempDir();
    const data = new Uint8Array(8192).fill(0x5a);
    const [base, child] = await writeSynthChain(nodeFileSystem, dir, [
      { type: 'dynamic', virtualSize: 8 << 20, blockSize: 1 << 20, writes: [{ sector: 0, data }] },
      { type: 'differencing', virtualSize: 8 << 20, blockSize: 1 << 20, writes: [{ sector: 0, data }, { sector: 64, data: new Uint8Array(512).fill(1) }] },
    ]);
    const i = await lib.info(child.path);
    expect(i.chain.map((c) => c.type)).toEqual(['differencing', 'dynamic']);
    const same = await lib.compare(child.path, child.path, { threads: 0 });
    expect(same.identical).toBe(true);
    const diff = await lib.compare(child.path, base.path, { threads: 0 });
    expect(diff.firstDifference).toBe(64 * 512);
    const plan = await lib.compact(child.path, { dryRun: true, threads: 0 });
    expect(plan.sectors.kept).toBe(1);
    const chain = await lib.openChain(lib.nodeFileSystem, child.path);
    try {
      const reader = new lib.ChainReader(chain);
      expect([...await reader.read(8191, 2)]).toEqual([0x5a, 0]);
      expect([...await reader.read(64 * 512 - 1, 2)]).toEqual([0, 1]);
    } finally {
      await chain.close();
    }
    expect(lib.format.bitmapBytes(2 << 20)).toBe(512);
    expect(new lib.VhdToolError('NOT_FOUND', 'x').exitCode).toBe(lib.ErrorCodes.NOT_FOUND);
  });
});
