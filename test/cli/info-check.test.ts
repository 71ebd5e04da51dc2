/**
 * `vhdtool info` and `vhdtool check` on generated chains: the human and JSON
 * renderings carry the facts of the description, --parent and --lenient do
 * what they say, and warnings do not fail check.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { encodeUtf16Le, geometryForSize, vhdTimeToIso } from '../../src/format/index.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli, hasStackTrace } from '../helpers/cliRun.js';
import { patchFooter, patchHeader, fileSize } from '../helpers/patch.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const layers = (over: Partial<SynthLayer> = {}): SynthLayer[] => [
  { type: 'dynamic', virtualSize: 3 * MiB, blockSize: 512 * KiB, writes: [{ sector: 0, data: new Uint8Array(512 * 10).fill(1) }], timestamp: 600000000 },
  {
    type: 'differencing', virtualSize: 3 * MiB, blockSize: 512 * KiB, timestamp: 650000000, parentTimestamp: 640000000,
    writes: [{ sector: 5, data: new Uint8Array(512 * 3).fill(2) }, { sector: 2048, data: new Uint8Array(512).fill(3) }],
    ...over,
  },
];

describe('info', () => {
  it('prints the disk, its layout, its parent link and the chain', async () => {
    const dir = tempDir();
    const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    const r = await runCli(['info', child.path]);
    expect(r.code).toBe(0);
    expect(r.err).toEqual([]);
    const g = geometryForSize(3 * MiB);
    expect(r.out).toEqual(expect.arrayContaining([
      child.path,
      '  type            differencing',
      `  virtual size    ${3 * MiB} bytes (3.00 MiB)`,
      `  file size       ${fileSize(child.path)} bytes (${(fileSize(child.path) / MiB).toFixed(2)} MiB)`,
      `  uuid            ${child.uniqueId}`,
      `  created         ${vhdTimeToIso(650000000)} by "vhdt" 1.0 on Wi2k`,
      `  geometry        ${g.cylinders}/${g.heads}/${g.sectorsPerTrack} (C/H/S)`,
      `  block size      ${512 * KiB} bytes (512.0 KiB)`,
      '  BAT             6 entries at offset 1536',
      '  allocated       2 blocks, 4 sectors set (2.0 KiB)',
      `  parent uuid     ${base.uniqueId}`,
      '  parent name     base.vhd',
      `  parent time     ${vhdTimeToIso(640000000)}`,
      '  chain (leaf first):',
    ]));
    // The chain in columns: each cell padded to its column's width.
    const w = Math.max(child.path.length, path.resolve(base.path).length);
    expect(r.out.filter((l) => /^ {4}\d:/.test(l))).toEqual([
      `    0:  ${child.path.padEnd(w)}  differencing  ${child.uniqueId}  3.00 MiB  parent via W2ru locator`,
      `    1:  ${path.resolve(base.path).padEnd(w)}  dynamic       ${base.uniqueId}  3.00 MiB`,
    ]);
    // Locator paths as written: no quotes, one backslash.
    expect(r.out.filter((l) => l.startsWith('  locator '))).toEqual([
      expect.stringMatching(new RegExp(`^  locator 0 +W2ku ${path.resolve(base.path).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} at \\d+, \\d+ bytes, space \\d+ bytes$`)),
      expect.stringMatching(/^ {2}locator 1 +W2ru \.\\base\.vhd at \d+, 20 bytes, space 512 bytes$/),
    ]);
  });

  it('--parent names the parent when the locators lead nowhere; a wrong --parent is exit 5', async () => {
    const dir = tempDir();
    const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers({
      locators: [{ platform: 'W2ru', data: encodeUtf16Le('.\\gone.vhd') }], parentName: 'gone.vhd',
    }), ['golden.vhd', 'child.vhd']);
    expect((await runCli(['info', child.path])).code).toBe(5);
    const r = await runCli(['info', '--json', '--parent', base.path, child.path]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out.join('\n'));
    expect(j.chain.map((c: { uuid: string; parentFoundBy: string | null }) => [c.uuid, c.parentFoundBy])).toEqual([[child.uniqueId, '--parent'], [base.uniqueId, null]]);
    const [other] = await writeSynthChain(nodeFileSystem, tempDir(), [layers()[0]]);
    const bad = await runCli(['info', '--parent', other.path, child.path]);
    expect(bad.code).toBe(5);
    expect(bad.err).toEqual([expect.stringMatching(/^vhdtool: .*child\.vhd: parent UUID mismatch: /)]);
  });

  it('--lenient reads past a bad checksum and reports it as a warning; without it the disk is refused', async () => {
    const dir = tempDir();
    const [, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    patchHeader(child.path, (h) => ({ ...h, checksum: 7 }), { reseal: false });
    const strict = await runCli(['info', child.path]);
    expect(strict.code).toBe(4);
    expect(hasStackTrace(strict.err)).toBe(false);
    const r = await runCli(['info', '--lenient', '--json', child.path]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out.join('\n'));
    expect(j.uuid).toBe(child.uniqueId);
    expect(j.warnings).toEqual([expect.stringMatching(new RegExp(`^${child.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: dynamic header checksum mismatch: stored 0x00000007`))]);
  });

  it('--json on error prints the error object as well as the stderr line', async () => {
    const p = path.join(tempDir(), 'nope.vhd');
    const r = await runCli(['info', '--json', p]);
    expect(r.code).toBe(3);
    expect(r.err).toEqual([`vhdtool: ${p}: no such file`]);
    expect(JSON.parse(r.out.join('\n'))).toEqual({ error: { code: 'NOT_FOUND', exitCode: 3, path: p, message: 'no such file', errno: 'ENOENT' } });
  });
});

describe('check', () => {
  it('warnings alone do not fail: a geometry larger than the size is exit 0 with the warning printed', async () => {
    const dir = tempDir();
    const [base] = await writeSynthChain(nodeFileSystem, dir, [layers()[0]]);
    patchFooter(base.path, (f) => ({ ...f, geometry: { cylinders: 1000, heads: 16, sectorsPerTrack: 63 } }));
    const r = await runCli(['check', '--threads', '0', base.path]);
    expect(r.code).toBe(0);
    expect(r.out).toEqual([
      `${base.path}: warning: CHS geometry 1000/16/63 (516096000 bytes) is larger than the current size ${3 * MiB}`,
      `${base.path}: ok, 1 warning`,
    ]);
  });

  it('--parent lets check follow a moved parent; the JSON report lists it', async () => {
    const dir = tempDir();
    const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers({
      locators: [{ platform: 'W2ru', data: encodeUtf16Le('.\\gone.vhd') }], parentName: 'gone.vhd',
    }));
    const lost = await runCli(['check', '--threads', '0', child.path]);
    expect(lost.code).toBe(1);
    expect(lost.out[0]).toMatch(/: error: parent chain: parent [0-9a-f-]{36} not found; tried /);
    const r = await runCli(['check', '--threads', '0', '--json', '--parent', base.path, child.path]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out.join('\n'));
    expect(j).toMatchObject({ path: child.path, type: 'differencing', ok: true, errors: [], parents: [{ path: path.resolve(base.path), uuid: base.uniqueId }] });
    // Locator and header both say gone.vhd, so there is no name warning either.
    expect(j.warnings).toEqual([]);
  });

  it('a locator that names another file than the header is a warning', async () => {
    const dir = tempDir();
    const [, child] = await writeSynthChain(nodeFileSystem, dir, layers({ parentName: 'other-name.vhd' }));
    const r = await runCli(['check', '--threads', '0', child.path]);
    expect(r.code).toBe(0);
    expect(r.out.filter((l) => l.includes(': warning: locator '))).toHaveLength(2);
    expect(r.out[r.out.length - 1]).toBe(`${child.path}: ok, 2 warnings`);
  });
});
