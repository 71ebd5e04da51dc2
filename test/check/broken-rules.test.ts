/**
 * `vhdtool check` rejects each broken rule: a generated child disk is patched
 * byte by byte in a temp dir, and check must exit 1 with a one-line message
 * naming the file (and the rule in the report), never a stack trace. The
 * unpatched chain passes, so each failure is caused by its patch alone.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { unlinkSync } from 'node:fs';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain, writeSynthLayer, type SynthLayer, type BuiltLayer } from '../../src/synth/build.js';
import { checkDisk, type CheckReport } from '../../src/check/check.js';
import { createRunner } from '../../src/parallel/pool.js';
import { encodeUtf16Le, newUuid, type Uuid } from '../../src/format/index.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli, hasStackTrace } from '../helpers/cliRun.js';
import {
  batEntry, fileSize, patchFooter, patchHeader, readHeader, readRange, setBatEntry, truncateTo, writeRange,
} from '../helpers/patch.js';
import { appendFileSync } from 'node:fs';

const KiB = 1024;
const BS = 64 * KiB;
const SIZE = 1024 * KiB;
const sec = (n: number, v: number) => new Uint8Array(n * 512).fill(v);

const layers = (): SynthLayer[] => [
  { type: 'dynamic', virtualSize: SIZE, blockSize: BS, writes: [{ sector: 0, data: sec(4, 1) }, { sector: 700, data: sec(2, 2) }], parentTimestamp: 1 },
  // Child blocks: 0 (sector 3 only), 1 (sectors 200-201), 7 (sector 1000).
  { type: 'differencing', virtualSize: SIZE, blockSize: BS, writes: [{ sector: 3, data: sec(1, 3) }, { sector: 200, data: sec(2, 4) }, { sector: 1000, data: sec(1, 5) }], parentTimestamp: 1 },
];

async function chain(): Promise<{ dir: string; base: BuiltLayer; child: BuiltLayer }> {
  const dir = tempDir();
  const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers());
  return { dir, base, child };
}

async function report(file: string): Promise<CheckReport> {
  const runner = createRunner({ threads: 0, slotBytes: 512 });
  try {
    return await checkDisk(nodeFileSystem, file, runner);
  } finally {
    await runner.close();
  }
}

/**
 * Runs `vhdtool check` on `file` and asserts: exit 1, an error line naming
 * the file that matches `message`, a summary line, no stack trace; and that
 * the report carries `rule`.
 */
async function expectRejected(file: string, rule: string, message: RegExp): Promise<void> {
  const r = await runCli(['check', '--threads', '0', file]);
  expect(r.code, r.out.join('\n')).toBe(1);
  expect(r.err).toEqual([]);
  expect(hasStackTrace([...r.out, ...r.err])).toBe(false);
  for (const l of r.out) expect(l.startsWith(`${file}: `), l).toBe(true);
  const errors = r.out.filter((l) => l.startsWith(`${file}: error: `));
  expect(errors.length).toBeGreaterThan(0);
  expect(errors.some((l) => message.test(l.slice(`${file}: error: `.length))), errors.join('\n')).toBe(true);
  expect(r.out[r.out.length - 1]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${errors.length} problems?(,|$)`));
  const rep = await report(file);
  expect(rep.ok).toBe(false);
  expect(rep.errors.map((e) => e.rule)).toContain(rule);
  expect(rep.errors.length).toBe(errors.length);
}

describe('check: the unpatched chain is clean', () => {
  it('exits 0 with "ok" for the base and the child', async () => {
    const { base, child } = await chain();
    const r = await runCli(['check', '--threads', '0', base.path, child.path]);
    expect(r.code).toBe(0);
    expect(r.out).toEqual([`${base.path}: ok`, `${child.path}: ok`]);
    const rep = await report(child.path);
    expect(rep).toMatchObject({ ok: true, type: 'differencing', errors: [], warnings: [], parents: [{ path: base.path, uuid: base.uniqueId }] });
  });
});

describe('check: each broken rule is rejected with one line naming the file', () => {
  it('footer checksum', async () => {
    const { child } = await chain();
    patchFooter(child.path, (f) => ({ ...f, checksum: (f.checksum ^ 0x10) >>> 0 }), { reseal: false });
    await expectRejected(child.path, 'footer-checksum', /^footer checksum mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/);
  });

  it('header checksum', async () => {
    const { child } = await chain();
    patchHeader(child.path, (h) => ({ ...h, checksum: (h.checksum + 1) >>> 0 }), { reseal: false });
    await expectRejected(child.path, 'header-checksum', /^dynamic header checksum mismatch/);
  });

  it('footer copy at offset 0 differs from the end footer', async () => {
    const { child } = await chain();
    patchFooter(child.path, (f) => ({ ...f, originalSize: f.originalSize + 512 }), { end: false });
    await expectRejected(child.path, 'footer-copy', /^footer copy at offset 0 differs from the end footer$/);
  });

  it('truncated file (the end footer cut off)', async () => {
    const { child } = await chain();
    truncateTo(child.path, fileSize(child.path) - 4096);
    await expectRejected(child.path, 'structure', /end footer is missing or corrupt/);
  });

  it('truncated file (footer re-appended after cutting into the last block)', async () => {
    const { child } = await chain();
    const footer = readRange(child.path, fileSize(child.path) - 512, 512);
    truncateTo(child.path, fileSize(child.path) - 512 - 8192);
    appendFileSync(child.path, footer);
    await expectRejected(child.path, 'structure', /^block \d+ at 0x[0-9a-f]+ \+ 66048 bytes extends past the end of the data/);
  });

  it('BAT entry pointing into the dynamic header', async () => {
    const { child } = await chain();
    setBatEntry(child.path, 1, 1); // sector 1 = byte 512: the header
    await expectRejected(child.path, 'overlap', /^header \[0x200, 0x600\) overlaps block 1 \[0x200, 0x10400\)$/);
  });

  it('BAT entry past the end of the file', async () => {
    const { child } = await chain();
    setBatEntry(child.path, 7, 0x00ffffff);
    await expectRejected(child.path, 'structure', /^block 7 at 0x1fffffe00 \+ 66048 bytes extends past the end of the data/);
  });

  it('two blocks overlapping', async () => {
    const { child } = await chain();
    setBatEntry(child.path, 7, batEntry(child.path, 1) + 8);
    await expectRejected(child.path, 'overlap', /^block 1 \[0x[0-9a-f]+, 0x[0-9a-f]+\) overlaps block 7 \[/);
  });

  it('block size not a power of two', async () => {
    const { child } = await chain();
    patchHeader(child.path, (h) => ({ ...h, blockSize: 96 * KiB }));
    await expectRejected(child.path, 'structure', /^block size 98304 is not a power of two between 512 and 2 GiB$/);
  });

  it('table too small for the size', async () => {
    const { child } = await chain();
    patchHeader(child.path, (h) => ({ ...h, maxTableEntries: 15 }));
    await expectRejected(child.path, 'structure', /^BAT has 15 entries, too few for 1048576 bytes in 65536-byte blocks \(needs 16\)$/);
  });

  it('data in a sector whose bitmap bit is clear', async () => {
    const { child } = await chain();
    // Block 0 has only sector 3 set; put data in its sector 5.
    const dataStart = batEntry(child.path, 0) * 512 + 512;
    writeRange(child.path, dataStart + 5 * 512 + 17, Uint8Array.of(0x42));
    await expectRejected(child.path, 'bitmap-clear-data', /^block 0: 1 sector\(s\) hold data where the bitmap is clear \(first at sector 5\)$/);
    // --fast skips the block data, so it does not see it.
    const fast = await runCli(['check', '--fast', '--threads', '0', child.path]);
    expect(fast.code).toBe(0);
  });

  it('locator data that is not valid UTF-16', async () => {
    const { child } = await chain();
    const w2ru = readHeader(child.path).locators[1];
    expect(w2ru.platform).toBe('W2ru');
    writeRange(child.path, w2ru.dataOffset, Uint8Array.of(0x2e, 0x00, 0x00, 0xd8)); // '.', then an unpaired high surrogate
    await expectRejected(child.path, 'locator-data', /^locator 1 \(W2ru\): data is not valid UTF-16$/);
  });

  it('locator data length past its reserved space', async () => {
    const { child } = await chain();
    const space = readHeader(child.path).locators[1].dataSpace;
    patchHeader(child.path, (h) => ({ ...h, locators: h.locators.map((l, i) => (i === 1 ? { ...l, dataLength: space + 2 } : l)) }));
    await expectRejected(child.path, 'locator-length', new RegExp(`^locator 1 \\(W2ru\\) data length ${space + 2} exceeds its space of ${space} bytes$`));
  });

  it('locator data pointing outside the file', async () => {
    const { child } = await chain();
    patchHeader(child.path, (h) => ({ ...h, locators: h.locators.map((l, i) => (i === 1 ? { ...l, dataOffset: 0x40000000 } : l)) }));
    await expectRejected(child.path, 'locator-range', /^locator 1 \(W2ru\) data at 0x40000000 \+ 20 lies outside the file$/);
  });

  it('parent UUID mismatch', async () => {
    const { base, child } = await chain();
    const other = newUuid();
    patchFooter(base.path, (f) => ({ ...f, uniqueId: other }));
    await expectRejected(child.path, 'parent-uuid', new RegExp(`^parent chain: parent UUID mismatch: .* expects parent ${base.uniqueId}.*UUID ${other}`));
  });

  it('parent missing', async () => {
    const { base, child } = await chain();
    unlinkSync(base.path);
    await expectRejected(child.path, 'parent', new RegExp(`^parent chain: parent ${base.uniqueId} not found; tried `));
  });

  it('a child that is its own parent', async () => {
    const { dir, base } = await chain();
    const u = newUuid();
    const self = await writeSynthLayer(nodeFileSystem, path.join(dir, 'self.vhd'), {
      ...layers()[1], uniqueId: u, locators: [{ platform: 'W2ru', data: encodeUtf16Le('.\\self.vhd') }], parentName: 'self.vhd',
    }, { path: base.path, uniqueId: u });
    await expectRejected(self.path, 'parent', /^parent chain: disk names itself as its own parent/);
  });

  it('two children pointing at each other', async () => {
    const { dir, base } = await chain();
    const ua = newUuid();
    const ub = newUuid();
    const mk = (name: string, uuid: Uuid, parentUuid: Uuid, to: string) => writeSynthLayer(nodeFileSystem, path.join(dir, name), {
      ...layers()[1], uniqueId: uuid, locators: [{ platform: 'W2ru', data: encodeUtf16Le('.\\' + to) }], parentName: to,
    }, { path: base.path, uniqueId: parentUuid });
    const a = await mk('a.vhd', ua, ub, 'b.vhd');
    const b = await mk('b.vhd', ub, ua, 'a.vhd');
    await expectRejected(a.path, 'parent', /^parent chain: chain loops: the parent of .*b\.vhd is .*a\.vhd again/);
    await expectRejected(b.path, 'parent', /^parent chain: chain loops: the parent of .*a\.vhd is .*b\.vhd again/);
  });
});

describe('check: several disks and JSON', () => {
  it('checks every disk, exits 1 if any fails, and the JSON report lists each', async () => {
    const { base, child } = await chain();
    patchHeader(child.path, (h) => ({ ...h, checksum: 0 }), { reseal: false });
    const r = await runCli(['check', '--threads', '0', '--json', base.path, child.path]);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out.join('\n'));
    expect(j.ok).toBe(false);
    expect(j.disks.map((d: CheckReport) => [d.path, d.ok, d.errors.map((e) => e.rule)])).toEqual([
      [base.path, true, []],
      [child.path, false, ['header-checksum']],
    ]);
  });
});
