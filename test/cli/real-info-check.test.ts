/**
 * The CLI on every real fixture: `check` passes every file not marked broken
 * (exit 0) and fails the two hand-broken dfvfs files (exit 1); `info --json`
 * reports type, virtual size, UUIDs, block size, allocation and the chain as
 * MANIFEST.md records them (values from libvhdi and a Python dump).
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { BROKEN, HAVE_REAL, REAL_DIR, realNames, realPath } from '../helpers/real.js';
import { REAL_PARENTS, manifest, type ManifestEntry } from '../helpers/manifest.js';
import { runCli, hasStackTrace } from '../helpers/cliRun.js';

const TYPES: Record<number, string> = { 2: 'fixed', 3: 'dynamic', 4: 'differencing' };
const NULL_UUID = '00000000-0000-0000-0000-000000000000';

describe.skipIf(!HAVE_REAL)('real fixtures through the CLI', () => {
  const man = manifest();
  const names = realNames();
  const good = names.filter((n) => !BROKEN.has(n));

  describe('check', () => {
    it.each(good)('%s passes (exit 0)', async (name) => {
      const file = realPath(name);
      const r = await runCli(['check', '--threads', '0', file]);
      expect(r.code, r.out.join('\n')).toBe(0);
      expect(r.err).toEqual([]);
      expect(r.out.filter((l) => l.includes(': error: '))).toEqual([]);
      expect(r.out[r.out.length - 1]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ok(, \\d+ warnings?)?$`));
    });

    it('image.vhd fails (exit 1): its footer checksum was broken by hand', async () => {
      const file = realPath('image.vhd');
      const r = await runCli(['check', '--threads', '0', file]);
      expect(r.code).toBe(1);
      expect(hasStackTrace([...r.out, ...r.err])).toBe(false);
      expect(r.out.filter((l) => l.startsWith(`${file}: error: `))).toEqual([
        expect.stringMatching(/^.*: error: footer checksum mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/),
      ]);
      expect(r.out[r.out.length - 1]).toBe(`${file}: 1 problem`);
    });

    it('image-differential.vhd fails (exit 1): footer and header checksums broken, its parent broken too', async () => {
      const file = realPath('image-differential.vhd');
      const r = await runCli(['check', '--threads', '0', '--json', file]);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.out.join('\n'));
      expect(j.ok).toBe(false);
      const rules = j.errors.map((e: { rule: string }) => e.rule);
      expect(rules).toEqual(expect.arrayContaining(['footer-checksum', 'header-checksum', 'parent']));
      // The parent is found (by the header's parent name) but refused strictly for its own bad checksum.
      expect(j.errors.find((e: { rule: string }) => e.rule === 'parent').message).toMatch(/image\.vhd: footer checksum mismatch/);
    });
  });

  describe('info --json', () => {
    it.each(names)('%s', async (name) => {
      const m = man.get(name)!;
      const file = realPath(name);
      const args = ['info', '--json', file];
      if (BROKEN.has(name)) {
        // Strictly, a bad checksum is refused with exit 4 and one line on stderr.
        const strict = await runCli(args);
        expect(strict.code).toBe(4);
        expect(strict.err).toHaveLength(1);
        expect(strict.err[0].startsWith(`vhdtool: ${file}: footer checksum mismatch: stored 0x`)).toBe(true);
        args.push('--lenient');
      }
      const r = await runCli(args);
      expect(r.code, r.err.join('\n')).toBe(0);
      const j = JSON.parse(r.out.join('\n'));
      expectInfo(j, m, file);
      const parent = REAL_PARENTS[name];
      if (parent) {
        const pm = man.get(parent)!;
        expect(j.chain).toEqual([
          { path: file, type: TYPES[m.diskType], uuid: m.uuid, virtualSize: m.currentSize, parentFoundBy: name === 'image-differential.vhd' ? 'parent name' : 'W2ru locator' },
          { path: path.join(REAL_DIR, parent), type: TYPES[pm.diskType], uuid: pm.uuid, virtualSize: pm.currentSize, parentFoundBy: null },
        ]);
        expect(j.header.parentUnicodeName).toBe(m.header!.parentUnicodeName);
        expect(j.locators.map((l: { platform: string; path: string }) => [l.platform, l.path])).toEqual(m.locators.map((l) => [l.platform, l.value]));
      } else {
        expect(j.chain).toEqual([{ path: file, type: TYPES[m.diskType], uuid: m.uuid, virtualSize: m.currentSize, parentFoundBy: null }]);
      }
    });
  });
});

function expectInfo(j: Record<string, any>, m: ManifestEntry, file: string): void {
  expect(j.path).toBe(file);
  expect(j.type).toBe(TYPES[m.diskType]);
  expect(j.virtualSize).toBe(m.currentSize);
  expect(j.fileSize).toBe(m.fileSize);
  expect(j.uuid).toBe(m.uuid);
  expect(j.parentUuid).toBe(m.header && m.header.parentUuid !== NULL_UUID ? m.header.parentUuid : null);
  expect(j.blockSize).toBe(m.header ? m.header.blockSize : null);
  expect(j.allocatedBlocks).toBe(m.header ? m.header.allocated : 0);
  expect(j.footer.originalSize).toBe(m.originalSize);
  expect(j.footer.geometry).toMatchObject(m.geometry);
  expect(j.footer.creatorApplication).toBe(m.creatorApp.replace(/\0/g, '\\0'));
  expect(j.footer.creatorHostOs).toBe(m.creatorHost);
  if (m.header) {
    expect(j.header.tableOffset).toBe(m.header.tableOffset);
    expect(j.header.maxTableEntries).toBe(m.header.maxTableEntries);
  } else {
    expect(j.header).toBeNull();
  }
}
