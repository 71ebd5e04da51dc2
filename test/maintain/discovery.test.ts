/**
 * Discovery on real files: metadata only, fast for 1000 disks, --exclude,
 * parents outside the roots, copies of a disk (duplicate UUIDs), parents
 * found by UUID when every locator is stale, links, unreadable folders.
 */
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem, type FileSystem, type RandomAccessFile } from '../../src/io/fsys.js';
import { openVhd } from '../../src/vhd/image.js';
import { SECTOR } from '../../src/format/index.js';
import { discover } from '../../src/maintain/discovery.js';
import { buildForest } from '../../src/maintain/forest.js';
import { maintain } from '../../src/ops/maintain.js';
import { writeSynthLayer, type BuiltLayer, type SynthLayer } from '../../src/synth/build.js';
import { content } from '../helpers/hash.js';
import { tempDir } from '../helpers/tmp.js';
import { buildStorage, modelOf, snapshotFiles } from './fixture.js';

/** A FileSystem that records every read (file, offset, length). */
function recording(): { fs: FileSystem; reads: Array<{ path: string; pos: number; len: number }> } {
  const reads: Array<{ path: string; pos: number; len: number }> = [];
  const wrap = (f: RandomAccessFile): RandomAccessFile => ({
    ...f,
    path: f.path,
    read: (buf, off, len, pos) => {
      reads.push({ path: f.path, pos, len });
      return f.read(buf, off, len, pos);
    },
    write: f.write.bind(f), writev: f.writev.bind(f), size: f.size.bind(f), truncate: f.truncate.bind(f), sync: f.sync.bind(f), close: f.close.bind(f),
  });
  const fs: FileSystem = { ...nodeFileSystem, openRead: async (p) => wrap(await nodeFileSystem.openRead(p)), readFile: async (p) => { reads.push({ path: p, pos: 0, len: Infinity }); return nodeFileSystem.readFile(p); } };
  return { fs, reads };
}

describe('maintain discovery', () => {
  it('reads metadata only: no read touches a block bitmap or block data', async () => {
    const root = tempDir('vhdtool-disc-');
    const s = await buildStorage(root, { broken: true });
    const { fs, reads } = recording();
    const d = await discover(fs, [root]);
    expect(d.disks.length).toBe(s.disks.size + 3);
    expect(reads.length).toBeGreaterThan(0);
    let checked = 0;
    for (const disk of d.disks) {
      const v = await openVhd(nodeFileSystem, disk.path, { mode: 'collect' });
      const m = v.meta;
      await v.close();
      if (!m.bat) continue;
      const blocks: Array<[number, number]> = [];
      for (const b of m.bat.allocated()) {
        const at = m.bat.get(b)! * SECTOR;
        blocks.push([at, at + m.bitmapSize + m.blockSize!]);
      }
      expect(blocks.length, disk.path).toBeGreaterThan(0);
      for (const r of reads.filter((x) => x.path === disk.path)) {
        for (const [a, b] of blocks) expect(r.pos + r.len <= a || r.pos >= b, `${disk.path}: read ${r.pos}+${r.len} in block [${a}, ${b})`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(d.disks.length * 3);
    expect(reads.some((r) => r.len === Infinity)).toBe(false);
  });

  it('1000 disks (100 families, 40 GiB each) are discovered in seconds', async () => {
    const root = tempDir('vhdtool-disc-1000-');
    const layer = (type: SynthLayer['type']): SynthLayer => ({ type, virtualSize: 40 * 1024 ** 3, blockSize: 2 * 1024 * 1024, writes: [] });
    for (let f = 0; f < 100; f++) {
      const dir = path.join(root, `t${f}`);
      mkdirSync(dir);
      const base = await writeSynthLayer(nodeFileSystem, path.join(dir, 'base.vhd'), layer('dynamic'), null);
      let snap: BuiltLayer = base;
      for (let i = 0; i < 9; i++) {
        const c = await writeSynthLayer(nodeFileSystem, path.join(dir, `d${i}.vhd`), layer('differencing'), i < 5 ? base : snap);
        if (i >= 5) snap = c;
      }
    }
    const t0 = Date.now();
    const d = await discover(nodeFileSystem, [root]);
    const ms = Date.now() - t0;
    const forest = buildForest(d.disks, d.unreadable, d.probes);
    console.log(`discovery of 1000 disks: ${ms} ms`);
    expect(d.disks.length).toBe(1000);
    expect(d.unreadable).toEqual([]);
    expect(forest.trees.length).toBe(100);
    expect(forest.trees.every((t) => t.nodes.length === 10 && t.problem === null)).toBe(true);
    expect(ms).toBeLessThan(15_000);
  });

  it('--exclude: excluded files are never written; an excluded parent is read where the locators point', async () => {
    const root = tempDir('vhdtool-disc-excl-');
    const s = await buildStorage(root, { only: ['golden', 'solo', 'deep'] });
    const golden = path.join(root, 'golden', 'golden.vhd');
    const files = snapshotFiles(root);
    const r = await maintain([root], { minReclaim: 0, threads: 0, exclude: ['golden.vhd', 'deep', '*.avhd'] });
    expect(r.exitCode).toBe(0);
    const after = snapshotFiles(root);
    // golden.vhd had a zero block to reclaim, but it is excluded: read as the children's parent, never written.
    expect(after.get(golden)).toBe(files.get(golden));
    for (const p of s.deep) expect(after.get(p)).toBe(files.get(p));
    const snap = path.join(root, 'golden', 'vm3-snap.avhd');
    expect(after.get(snap)).toBe(files.get(snap));
    const fam = r.chains.find((c) => c.base.path === golden)!;
    expect(fam.base.external).toBe(true);
    expect(fam.disks.find((x) => x.path === golden)!.skip?.reason).toBe('external');
    expect(fam.actions.map((a) => a.disk).sort()).toEqual([path.join(root, 'golden', 'vm1.vhd'), path.join(root, 'golden', 'vm2.vhd')]);
    expect(r.chains.some((c) => c.disks.some((x) => x.path.includes(`${path.sep}deep${path.sep}`) || x.path === snap))).toBe(false);
    for (const m of s.disks.values()) expect(Buffer.from(await content(m.path)).equals(Buffer.from(modelOf(m))), m.path).toBe(true);
  });

  it('a copy of a disk (same UUID) is reported; children keep the parent their locators name', async () => {
    const root = tempDir('vhdtool-disc-dup-');
    const s = await buildStorage(root, { only: ['golden'] });
    const golden = path.join(root, 'golden', 'golden.vhd');
    mkdirSync(path.join(root, 'copy'));
    const copy = path.join(root, 'copy', 'golden.vhd');
    copyFileSync(golden, copy);
    const r = await maintain([root], { minReclaim: 0, threads: 0 });
    expect(r.exitCode).toBe(0);
    expect(r.warnings.join('\n')).toContain(s.disks.get(golden)!.uuid);
    const fam = r.chains.find((c) => c.base.path === golden)!;
    expect(fam.disks.find((d) => d.path.endsWith('vm1.vhd'))!.parent).toBe(golden);
    expect(r.chains.find((c) => c.base.path === copy)!.disks.length).toBe(1);
    for (const m of s.disks.values()) expect(Buffer.from(await content(m.path)).equals(Buffer.from(modelOf(m))), m.path).toBe(true);
  });

  it('a parent whose every locator is stale is found by its UUID, and its family is maintained', async () => {
    const root = tempDir('vhdtool-disc-stale-');
    const s = await buildStorage(root, { only: ['golden'] });
    const golden = path.join(root, 'golden', 'golden.vhd');
    const moved = path.join(root, 'golden', 'golden-renamed.vhd');
    renameSync(golden, moved);
    const uuid = s.disks.get(golden)!.uuid;
    const extra = { extraCandidates: (u: string) => (u === uuid ? [moved] : []) };
    const r = await maintain([root], { minReclaim: 0, threads: 0 });
    expect(r.exitCode, JSON.stringify(r.errors)).toBe(0);
    const fam = r.chains.find((c) => c.base.path === moved)!;
    expect(fam.disks.length).toBe(5);
    expect(fam.actions.filter((a) => a.action === 'compact').length).toBe(4);
    for (const m of s.disks.values()) {
      const p = m.path === golden ? moved : m.path;
      expect(Buffer.from(await content(p, extra)).equals(Buffer.from(modelOf(m))), p).toBe(true);
    }
  });

  it('links to a disk count once; a folder that cannot be listed is reported and the rest goes on', async () => {
    const root = tempDir('vhdtool-disc-links-');
    await buildStorage(root, { only: ['solo', 'fixed'] });
    mkdirSync(path.join(root, 'links'));
    symlinkSync(path.join(root, 'solo', 'data.vhd'), path.join(root, 'links', 'alias.vhd'));
    symlinkSync(path.join(root, 'solo'), path.join(root, 'links', 'solo-dir'));
    const d = await discover(nodeFileSystem, [root, path.join(root, 'solo')]);
    expect(d.disks.map((x) => path.relative(root, x.realPath)).sort()).toEqual(['fixed/base.vhd', 'fixed/child.vhd', 'solo/data.vhd']);
    if (process.getuid?.() === 0) return; // root reads any folder
    const locked = path.join(root, 'fixed');
    chmodSync(locked, 0o000);
    try {
      const r = await maintain([root], { minReclaim: 0, threads: 0 });
      expect(r.exitCode).toBe(1);
      expect(r.unreadable).toMatchObject([{ path: locked, kind: 'directory', code: 'ACCESS' }]);
      expect(r.summary.disksCompacted).toBe(1);
    } finally {
      chmodSync(locked, 0o755);
    }
    void readFileSync;
  });
});
