/**
 * The stricter check: a dynamic header data offset other than all ones is an
 * error (as vhd-util check); non-zero bytes no structure accounts for are
 * `orphan-data` (a block whose BAT entry was lost leaves exactly that), which
 * compact, merge and maintain refuse to rewrite; Windows' zero-filled gap
 * and Hyper-V's BAT padding stay allowed; no real-world file becomes an error.
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDisk } from '../../src/check/check.js';
import { scanGaps } from '../../src/check/gaps.js';
import { createRunner } from '../../src/parallel/pool.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openVhd } from '../../src/vhd/image.js';
import { encodeHeader, sealHeader, putU32, SECTOR } from '../../src/format/index.js';
import { writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { compact } from '../../src/ops/compact.js';
import { convert } from '../../src/ops/merge.js';
import { maintain } from '../../src/ops/maintain.js';
import { runCli } from '../helpers/cliRun.js';
import { readHeader, readRange, writeRange } from '../helpers/patch.js';
import { BROKEN, HAVE_REAL, realNames, realPath } from '../helpers/real.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const runner = createRunner({ threads: 0, slotBytes: 512 });
afterAll(() => runner.close());
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

async function rules(p: string): Promise<{ errors: string[]; warnings: string[] }> {
  const r = await checkDisk(nodeFileSystem, p, runner);
  return { errors: r.errors.map((e) => e.rule), warnings: r.warnings.map((w) => w.rule) };
}

const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

/** A dynamic disk with data in blocks 0, 1 and 3 (4 KiB-aligned layout, 2 MiB blocks). */
async function dynamicDisk(dir: string): Promise<string> {
  const layer: SynthLayer = {
    type: 'dynamic', virtualSize: 8 * MiB,
    writes: [{ sector: 0, data: fill(4096, 1) }, { sector: 4096, data: fill(8192, 2) }, { sector: 3 * 4096 + 8, data: fill(512, 3) }],
  };
  const [d] = await writeSynthChain(nodeFileSystem, dir, [layer], ['disk.vhd']);
  return d.path;
}

/** Forgets block `b`'s BAT entry: its bitmap and data stay in the file, unaccounted for. */
function loseBatEntry(p: string, b: number): void {
  const h = readHeader(p);
  writeRange(p, h.tableOffset + b * 4, fill(4, 0xff));
}

describe('orphan-data', () => {
  it('a block whose BAT entry was lost: check reports orphan-data (exit 1), naming where', async () => {
    const dir = tempDir();
    const p = await dynamicDisk(dir);
    expect(await rules(p)).toEqual({ errors: [], warnings: [] });
    loseBatEntry(p, 1);
    expect((await rules(p)).errors).toEqual(['orphan-data']);
    const r = await runCli(['check', p]);
    expect(r.code).toBe(1);
    expect(r.out.join('\n')).toMatch(/bytes at 0x[0-9a-f]+ between the block 0 and the block 3 hold data no structure accounts for .*possibly a block whose BAT entry was lost/);
  });

  it('the last block lost: the non-zero tail is an error, not the tail-gap warning', async () => {
    const dir = tempDir();
    const p = await dynamicDisk(dir);
    loseBatEntry(p, 3);
    expect(await rules(p)).toEqual({ errors: ['orphan-data'], warnings: [] });
  });

  it('compact, merge and maintain refuse the disk and leave it byte-identical', async () => {
    const dir = tempDir();
    const p = await dynamicDisk(dir);
    loseBatEntry(p, 1);
    const before = sha(p);
    await expect(compact(p, { threads: 0 })).rejects.toMatchObject({ code: 'BAD_FORMAT', message: expect.stringMatching(/orphan|no structure accounts for/) });
    await expect(compact(p, { threads: 0, dryRun: true })).rejects.toMatchObject({ code: 'BAD_FORMAT' });
    expect((await runCli(['compact', p])).code).toBe(4);
    const child = path.join(dir, 'child.vhd');
    // A child over it, so merge has something to merge.
    expect((await runCli(['create', child, '--parent', p])).code).toBe(4); // create refuses such a parent too
    await expect(convert(p, path.join(dir, 'out.vhd'), { threads: 0 })).rejects.toMatchObject({ code: 'BAD_FORMAT' });
    const rep = await maintain([dir], { minReclaim: 0, threads: 0 });
    const errs = rep.chains.flatMap((c) => c.errors);
    expect(errs.some((e) => e.path === p && e.code === 'BAD_FORMAT' && /no structure accounts for/.test(e.message))).toBe(true);
    expect(sha(p)).toBe(before);
  });

  it('merge refuses a child holding orphan data; the output is not written', async () => {
    const dir = tempDir();
    const [b, c] = await writeSynthChain(nodeFileSystem, dir, [
      { type: 'dynamic', virtualSize: 8 * MiB, writes: [{ sector: 0, data: fill(4096, 1) }] },
      { type: 'differencing', virtualSize: 8 * MiB, writes: [{ sector: 0, data: fill(512, 5) }, { sector: 5000, data: fill(512, 6) }] },
    ]);
    loseBatEntry(c.path, 1);
    const r = await runCli(['merge', c.path, b.path, path.join(dir, 'out.vhd')]);
    expect(r.code).toBe(4);
    expect(r.err.join('\n')).toMatch(/no structure accounts for/);
    expect(() => readFileSync(path.join(dir, 'out.vhd'))).toThrow();
  });

  it('zeros in the gaps (Windows\' tail, alignment padding) are fine; Hyper-V\'s BAT padding of unused entries too, but not other words there', async () => {
    const dir = tempDir();
    const p = await dynamicDisk(dir);
    const h = readHeader(p);
    const batEnd = h.tableOffset + SECTOR;
    // Our layout puts block data 4 KiB aligned: the first bitmap starts at 3584 + ... so there is room after the BAT.
    const v = await openVhd(nodeFileSystem, p);
    const first = Math.min(...[...v.meta.bat!.allocated()].map((b) => v.meta.bat!.get(b)! * SECTOR));
    await v.close();
    expect(first).toBeGreaterThan(batEnd);
    writeRange(p, batEnd, fill(first - batEnd, 0xff));
    expect(await rules(p)).toEqual({ errors: [], warnings: [] });
    const word = new Uint8Array(4);
    putU32(word, 0, 0x00001234);
    writeRange(p, batEnd + 8, word);
    expect((await rules(p)).errors).toEqual(['orphan-data']);
  });

  it('blktap\'s batmap after the BAT (a "tdbatmap" header and its map) is a structure, not orphan data', async () => {
    const dir = tempDir();
    const p = await dynamicDisk(dir);
    const h = readHeader(p);
    const batEnd = h.tableOffset + SECTOR;
    const hdr = new Uint8Array(SECTOR);
    hdr.set(new TextEncoder().encode('tdbatmap'));
    putU32(hdr, 12, batEnd + SECTOR); // u64 batmap offset (high word zero)
    putU32(hdr, 16, 1); // size in sectors
    writeRange(p, batEnd, hdr);
    writeRange(p, batEnd + SECTOR, fill(SECTOR, 0xd0));
    expect(await rules(p)).toEqual({ errors: [], warnings: [] });
    // The same map bytes without the header that claims them are orphan data.
    writeRange(p, batEnd, new Uint8Array(SECTOR));
    expect((await rules(p)).errors).toEqual(['orphan-data']);
  });

  it('a gap read costs only the gaps: block data is never read', async () => {
    const dir = tempDir();
    const p = await dynamicDisk(dir);
    const v = await openVhd(nodeFileSystem, p);
    try {
      const g = await scanGaps(v);
      const blocks = v.meta.bat!.countAllocated() * (SECTOR + 2 * MiB);
      expect(g.orphans).toEqual([]);
      expect(g.bytesRead).toBeLessThan(v.meta.fileSize - blocks);
    } finally {
      await v.close();
    }
  });
});

describe('header data offset', () => {
  it('not all ones: check reports an error, and commands refuse the disk (exit 4)', async () => {
    const dir = tempDir();
    const p = await dynamicDisk(dir);
    const h = readHeader(p);
    writeRange(p, 512, encodeHeader(sealHeader({ ...h, dataOffset: 0 })));
    expect((await rules(p)).errors).toContain('header-data-offset');
    const r = await runCli(['info', p]);
    expect(r.code).toBe(4);
    expect(r.err.join('\n')).toMatch(/dynamic header data offset is 0x0, expected 0xffffffffffffffff/);
  });
});

describe.skipIf(!HAVE_REAL)('real-world files under the new rules', () => {
  it('no real file has orphan data or a bad header data offset; only the files broken as shipped fail', async () => {
    const seen: string[] = [];
    for (const name of realNames()) {
      const file = realPath(name);
      const r = await checkDisk(nodeFileSystem, file, runner);
      const errs = r.errors.map((e) => e.rule);
      expect(errs, name).not.toContain('orphan-data');
      expect(errs, name).not.toContain('header-data-offset');
      if (!BROKEN.has(name)) expect(r.ok, `${name}: ${r.errors.map((e) => e.message).join('; ')}`).toBe(true);
      if (r.warnings.some((w) => w.rule === 'tail-gap')) seen.push(name);
    }
    // Windows' zero-filled tails are still warnings, Hyper-V's BAT padding among them.
    expect(seen).toEqual(expect.arrayContaining(['fat-differential.vhd', 'hyperv2012r2-dynamic.vhd']));
  });

  it('hyperv2012r2-dynamic.vhd pads its BAT to 4 KiB with unused entries: allowed, and said so', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'h.vhd');
    copyFileSync(realPath('hyperv2012r2-dynamic.vhd'), p);
    const r = await checkDisk(nodeFileSystem, p, runner);
    expect(r.warnings.find((w) => w.rule === 'tail-gap')?.message).toMatch(/the first 512 pad the BAT to 4 KiB with unused entries/);
    // The same bytes as anything but 0xFF or zero would be orphan data.
    const batEnd = readHeader(p).tableOffset + 65024 * 4;
    expect(Buffer.from(readRange(p, batEnd, 4)).toString('hex')).toBe('ffffffff');
    writeRange(p, batEnd, Uint8Array.from([0, 0, 0x12, 0x34]));
    expect((await checkDisk(nodeFileSystem, p, runner)).errors.map((e) => e.rule)).toEqual(['orphan-data']);
  });
});
