/**
 * Opening chains: every link is checked by UUID, wrong candidates are passed
 * over, and a missing parent, a mismatch, a cycle (a disk naming itself, two
 * disks naming each other, the same file under another name) or an absurd
 * depth is a typed error naming the leaf and what was tried.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { linkSync, symlinkSync, unlinkSync } from 'node:fs';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openChain, DEFAULT_MAX_DEPTH } from '../../src/chain/openChain.js';
import { writeSynthChain, writeSynthLayer, type SynthLayer, type BuiltLayer } from '../../src/synth/build.js';
import { encodeUtf16Le, newUuid, type Uuid } from '../../src/format/index.js';
import { VhdToolError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { patchFooter, truncateTo } from '../helpers/patch.js';

const MiB = 1024 * 1024;
const small = (type: SynthLayer['type'], over: Partial<SynthLayer> = {}): SynthLayer =>
  ({ type, virtualSize: MiB, blockSize: 64 * 1024, writes: [{ sector: 3, data: new Uint8Array(512).fill(type === 'fixed' ? 1 : 2) }], parentTimestamp: 1, ...over });

/** A differencing disk whose link is given explicitly: parent UUID, W2ru locator text and parent name. */
async function linked(dir: string, name: string, uuid: Uuid, parentUuid: Uuid, locatorTo: string, anyExisting: string): Promise<BuiltLayer> {
  return writeSynthLayer(nodeFileSystem, path.join(dir, name), small('differencing', {
    uniqueId: uuid, locators: [{ platform: 'W2ru', data: encodeUtf16Le('.\\' + locatorTo) }], parentName: locatorTo,
  }), { path: anyExisting, uniqueId: parentUuid });
}

async function chainErr(leaf: string, opts = {}): Promise<VhdToolError> {
  const e = await openChain(nodeFileSystem, leaf, opts).then(async (c) => { await c.close(); return null; }, (x: unknown) => x);
  expect(e).toBeInstanceOf(VhdToolError);
  return e as VhdToolError;
}

describe('openChain', () => {
  it('opens leaf to base, recording how each parent was found', async () => {
    const dir = tempDir();
    const b = await writeSynthChain(nodeFileSystem, dir, [small('fixed'), small('differencing'), small('differencing')]);
    const c = await openChain(nodeFileSystem, b[2].path);
    try {
      expect(c.layersLeafFirst.map((l) => [path.basename(l.path), l.meta.footer.uniqueId, l.parentFoundBy])).toEqual([
        ['child2.vhd', b[2].uniqueId, 'W2ru locator'],
        ['child1.vhd', b[1].uniqueId, 'W2ru locator'],
        ['base.vhd', b[0].uniqueId, null],
      ]);
    } finally {
      await c.close();
    }
  });

  it('parent missing: PARENT_NOT_FOUND naming the child, the expected UUID and every path tried', async () => {
    const dir = tempDir();
    const b = await writeSynthChain(nodeFileSystem, dir, [small('dynamic'), small('differencing')]);
    unlinkSync(b[0].path);
    const e = await chainErr(b[1].path);
    expect(e.code).toBe('PARENT_NOT_FOUND');
    expect(e.path).toBe(b[1].path);
    expect(e.message).toBe(`parent ${b[0].uniqueId} not found; tried ${b[0].path} (W2ru locator: not found)`);
    expect(e.data.tried).toHaveLength(1);
  });

  it('no locator and no name: PARENT_NOT_FOUND says there was nothing to follow', async () => {
    const dir = tempDir();
    const base = await writeSynthChain(nodeFileSystem, dir, [small('dynamic')]);
    const c = await writeSynthLayer(nodeFileSystem, path.join(dir, 'c.vhd'), small('differencing', { locators: [], parentName: '' }), base[0]);
    const e = await chainErr(c.path);
    expect(e.message).toMatch(/not found; no locator or parent name to follow$/);
  });

  it('wrong parent: PARENT_MISMATCH naming both UUIDs; a right candidate after a wrong one is still found', async () => {
    const dir = tempDir();
    const b = await writeSynthChain(nodeFileSystem, dir, [small('dynamic'), small('differencing')]);
    const other = newUuid();
    patchFooter(b[0].path, (f) => ({ ...f, uniqueId: other }));
    const e = await chainErr(b[1].path);
    expect(e.code).toBe('PARENT_MISMATCH');
    expect(e.message).toContain(`expects parent ${b[0].uniqueId}`);
    expect(e.message).toContain(`UUID ${other}`);

    // W2ru names a decoy with the wrong UUID; the parent name names the real parent.
    const d2 = tempDir();
    const real = await writeSynthChain(nodeFileSystem, d2, [small('dynamic')], ['real.vhd']);
    await writeSynthChain(nodeFileSystem, d2, [small('dynamic')], ['decoy.vhd']);
    const c = await writeSynthLayer(nodeFileSystem, path.join(d2, 'c.vhd'), small('differencing', {
      locators: [{ platform: 'W2ru', data: encodeUtf16Le('.\\decoy.vhd') }], parentName: 'real.vhd',
    }), real[0]);
    const ch = await openChain(nodeFileSystem, c.path);
    try {
      expect(ch.layersLeafFirst[1].meta.footer.uniqueId).toBe(real[0].uniqueId);
      expect(ch.layersLeafFirst[0].parentFoundBy).toBe('parent name');
    } finally {
      await ch.close();
    }
  });

  it('a parent that is not a valid VHD: its own error is reported when it is the only candidate', async () => {
    const dir = tempDir();
    const b = await writeSynthChain(nodeFileSystem, dir, [small('dynamic'), small('differencing')]);
    truncateTo(b[0].path, 100);
    const e = await chainErr(b[1].path);
    expect(e.code).toBe('TRUNCATED');
    expect(e.path).toBe(b[0].path);
  });

  it('a disk that is its own parent: CHAIN_CYCLE', async () => {
    const dir = tempDir();
    const base = await writeSynthChain(nodeFileSystem, dir, [small('dynamic')]);
    const u = newUuid();
    const self = await linked(dir, 'self.vhd', u, u, 'self.vhd', base[0].path);
    const e = await chainErr(self.path);
    expect(e.code).toBe('CHAIN_CYCLE');
    expect(e.message).toMatch(/^disk names itself as its own parent \(via W2ru locator .*self\.vhd\)$/);
  });

  it('two children pointing at each other: CHAIN_CYCLE naming the loop', async () => {
    const dir = tempDir();
    const base = await writeSynthChain(nodeFileSystem, dir, [small('dynamic')]);
    const ua = newUuid();
    const ub = newUuid();
    const a = await linked(dir, 'a.vhd', ua, ub, 'b.vhd', base[0].path);
    await linked(dir, 'b.vhd', ub, ua, 'a.vhd', base[0].path);
    const e = await chainErr(a.path);
    expect(e.code).toBe('CHAIN_CYCLE');
    expect(e.path).toBe(a.path);
    expect(e.message).toMatch(/^chain loops: the parent of .*b\.vhd is .*a\.vhd again/);
  });

  it('the same file under another name (hard link, symlink) is recognised as a cycle', async () => {
    const dir = tempDir();
    const base = await writeSynthChain(nodeFileSystem, dir, [small('dynamic')]);
    const u = newUuid();
    const c = await linked(dir, 'c.vhd', u, u, 'alias.vhd', base[0].path);
    linkSync(c.path, path.join(dir, 'alias.vhd'));
    expect((await chainErr(c.path)).code).toBe('CHAIN_CYCLE');
    unlinkSync(path.join(dir, 'alias.vhd'));
    symlinkSync(c.path, path.join(dir, 'alias.vhd'));
    expect((await chainErr(c.path)).code).toBe('CHAIN_CYCLE');
  });

  it('a copy of a layer (same UUID, another file) in the chain: CHAIN_CYCLE by UUID', async () => {
    const dir = tempDir();
    const base = await writeSynthChain(nodeFileSystem, dir, [small('dynamic')]);
    const ua = newUuid();
    const ub = newUuid();
    const a = await linked(dir, 'a.vhd', ua, ub, 'b.vhd', base[0].path);
    await linked(dir, 'b.vhd', ub, ua, 'a-copy.vhd', base[0].path);
    await linked(dir, 'a-copy.vhd', ua, ub, 'b.vhd', base[0].path);
    const e = await chainErr(a.path);
    expect(e.code).toBe('CHAIN_CYCLE');
    expect(e.message).toBe(`chain loops: UUID ${ua} appears twice`);
  });

  it('a chain deeper than the limit: CHAIN_TOO_DEEP (explicit limit, and the default of 128)', async () => {
    const dir = tempDir();
    const layers = [small('dynamic'), ...Array.from({ length: 3 }, () => small('differencing'))];
    const b = await writeSynthChain(nodeFileSystem, dir, layers);
    const e = await chainErr(b[3].path, { maxDepth: 3 });
    expect(e.code).toBe('CHAIN_TOO_DEEP');
    expect(e.message).toBe('chain is deeper than 3 layers; refusing to follow it further');
    const ok = await openChain(nodeFileSystem, b[3].path, { maxDepth: 4 });
    expect(ok.layersLeafFirst).toHaveLength(4);
    await ok.close();

    expect(DEFAULT_MAX_DEPTH).toBe(128);
    const deep = tempDir();
    const tiny = (type: SynthLayer['type']): SynthLayer => ({ type, virtualSize: 8192, blockSize: 4096, writes: [], parentTimestamp: 1 });
    const many = await writeSynthChain(nodeFileSystem, deep, [tiny('dynamic'), ...Array.from({ length: 128 }, () => tiny('differencing'))]);
    const e2 = await chainErr(many[128].path);
    expect(e2.code).toBe('CHAIN_TOO_DEEP');
    const fits = await openChain(nodeFileSystem, many[127].path);
    expect(fits.layersLeafFirst).toHaveLength(128);
    await fits.close();
  });

  it('--parent overrides locators for the leaf only; a wrong --parent is a mismatch', async () => {
    const dir = tempDir();
    const b = await writeSynthChain(nodeFileSystem, dir, [small('dynamic'), small('differencing')]);
    const other = await writeSynthChain(nodeFileSystem, tempDir(), [small('dynamic')]);
    const e = await chainErr(b[1].path, { parent: other[0].path });
    expect(e.code).toBe('PARENT_MISMATCH');
    expect(e.message).toContain('--parent');
    const c = await openChain(nodeFileSystem, b[1].path, { parent: b[0].path });
    expect(c.layersLeafFirst[0].parentFoundBy).toBe('--parent');
    await c.close();
  });

  it('extraCandidates supply a parent by UUID when locators fail', async () => {
    const dir = tempDir();
    const b = await writeSynthChain(nodeFileSystem, dir, [small('dynamic'), small('differencing')]);
    const moved = path.join(tempDir(), 'moved.vhd');
    linkSync(b[0].path, moved);
    unlinkSync(b[0].path);
    const c = await openChain(nodeFileSystem, b[1].path, { extraCandidates: (u) => (u === b[0].uniqueId ? [moved] : []) });
    expect(c.layersLeafFirst[1].path).toBe(moved);
    expect(c.layersLeafFirst[0].parentFoundBy).toBe('search roots');
    await c.close();
  });
});
