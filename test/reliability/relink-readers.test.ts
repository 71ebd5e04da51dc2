/**
 * Readers during relinks: one process relinks a child back and forth between
 * two copies of its parent as fast as it can, while this process opens the
 * child again and again (no lock, as info, check and discovery do; the
 * writer skips its open-elsewhere check, which would see the reader). Every
 * opening must see one whole link, A or B: the parent name, W2ku and W2ru
 * agreeing, never the header of one and the locators of the other.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openVhd } from '../../src/vhd/image.js';
import { writeSynthLayer } from '../../src/synth/build.js';
import { hyperVLocatorsReserved } from '../../src/vhd/build.js';
import { hasBuild, ROOT } from './helpers/cli.js';
import { ScratchDirs } from './helpers/scratch.js';

const MiB = 1024 * 1024;
const scratch = new ScratchDirs();

describe.skipIf(!hasBuild())('readers during relinks', () => {
  it('every opening sees one whole link, never a mix', async () => {
    const dir = scratch.make('vhdtool-relink-readers-');
    for (const d of ['a', 'b', 'vms']) mkdirSync(path.join(dir, d));
    const base = await writeSynthLayer(nodeFileSystem, path.join(dir, 'a', 'base.vhd'), { type: 'dynamic', virtualSize: 4 * MiB, writes: [] }, null);
    cpSync(base.path, path.join(dir, 'b', 'base.vhd'), { preserveTimestamps: true });
    const child = path.join(dir, 'vms', 'child.vhd');
    await writeSynthLayer(nodeFileSystem, child, { type: 'differencing', virtualSize: 4 * MiB, writes: [], locators: hyperVLocatorsReserved(child, base.path) }, base);
    const links = new Map(['a', 'b'].map((d) => [
      JSON.stringify([`../${d}/base.vhd`, path.join(dir, d, 'base.vhd'), `..\\${d}\\base.vhd`]), d,
    ]));
    // As the synthetic writer made it, before the first relink.
    links.set(JSON.stringify(['base.vhd', base.path, '..\\a\\base.vhd']), 'initial');
    const ROUNDS = 150;
    const script = `
      const { relink } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/ops/relink.js'))});
      for (let i = 0; i < ${ROUNDS}; i++) {
        await relink(${JSON.stringify(child)}, { parent: ${JSON.stringify(dir)} + (i % 2 ? '/a' : '/b') + '/base.vhd', threads: 0, noLock: true });
      }`;
    const writer = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    writer.stderr.on('data', (s: Buffer) => { stderr += s.toString(); });
    let running = true;
    const done = new Promise<number | null>((resolve) => writer.on('close', (code) => { running = false; resolve(code); }));
    const seen = new Map<string, number>();
    let reads = 0;
    while (running) {
      const v = await openVhd(nodeFileSystem, child, { mode: 'strict' });
      const m = v.meta;
      const w2ku = m.locators.find((l) => l.entry.platform === 'W2ku')!;
      const w2ru = m.locators.find((l) => l.entry.platform === 'W2ru')!;
      const key = JSON.stringify([m.header!.parentUnicodeName, w2ku.value.ok && w2ku.value.path, w2ru.value.ok && w2ru.value.path]);
      await v.close();
      reads++;
      expect(links.has(key), `a mixed link: ${key}`).toBe(true);
      seen.set(links.get(key)!, (seen.get(links.get(key)!) ?? 0) + 1);
    }
    expect(await done, stderr).toBe(0);
    // eslint-disable-next-line no-console
    console.log(`readers during relinks: ${ROUNDS} relinks, ${reads} openings: ${[...seen].map(([k, n]) => `${n} x ${k}`).join(', ')}`);
    expect(seen.has('a') && seen.has('b')).toBe(true);
    scratch.removeAll();
  }, 120_000);
});
