/**
 * openVhd on generated disks: the metadata it returns matches what was
 * written, the three modes treat recoverable damage as documented (strict
 * refuses, lenient warns, collect records), and structural damage is always
 * a typed error naming the file, found before any offset is followed.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync, mkdirSync, appendFileSync } from 'node:fs';
import * as path from 'node:path';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openVhd, type OpenMode } from '../../src/vhd/image.js';
import { VhdToolError } from '../../src/errors.js';
import { writeSynthChain, writeSynthLayer, type SynthLayer } from '../../src/synth/build.js';
import { geometryForSize, type Uuid } from '../../src/format/index.js';
import { tempDir } from '../helpers/tmp.js';
import { fileSize, patchFooter, patchHeader, readRange, setBatEntry, truncateTo, writeRange, readHeader } from '../helpers/patch.js';

const MiB = 1024 * 1024;
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

async function dynamicDisk(over: Partial<SynthLayer> = {}, name = 'd.vhd'): Promise<string> {
  const dir = tempDir();
  const p = path.join(dir, name);
  await writeSynthLayer(nodeFileSystem, p, {
    type: 'dynamic', virtualSize: 6 * MiB, blockSize: 2 * MiB,
    writes: [{ sector: 0, data: fill(512, 1) }, { sector: 4096 * 2 + 7, data: fill(1024, 2) }],
    uniqueId: '11111111-2222-4333-8444-555555555555' as Uuid, timestamp: 700000000,
    ...over,
  }, null);
  return p;
}

async function openErr(p: string, mode: OpenMode = 'strict'): Promise<VhdToolError> {
  try {
    const v = await openVhd(nodeFileSystem, p, { mode });
    await v.close();
  } catch (e) {
    expect(e).toBeInstanceOf(VhdToolError);
    return e as VhdToolError;
  }
  throw new Error(`${p} opened in ${mode} mode`);
}

describe('openVhd: what a generated disk holds', () => {
  it('dynamic disk: footer, header, BAT and layout as written', async () => {
    const p = await dynamicDisk();
    const v = await openVhd(nodeFileSystem, p);
    try {
      const m = v.meta;
      expect(m.type).toBe('dynamic');
      expect(m.virtualSize).toBe(6 * MiB);
      expect(m.fileSize).toBe(fileSize(p));
      expect(m.footer.uniqueId).toBe('11111111-2222-4333-8444-555555555555');
      expect(m.footer.timestamp).toBe(700000000);
      expect(m.footer.geometry).toEqual(geometryForSize(6 * MiB));
      expect(m.footer.features).toBe(2);
      expect(m.footerOffset).toBe(fileSize(p) - 512);
      expect(m.footerLength).toBe(512);
      expect(m.footerCopy).toEqual(m.footer);
      expect(m.header!.tableOffset).toBe(1536);
      expect(m.blockSize).toBe(2 * MiB);
      expect(m.blockCount).toBe(3);
      expect(m.bitmapSize).toBe(512);
      expect([0, 1, 2].map((i) => m.bat!.get(i) !== null)).toEqual([true, false, true]);
      // Hyper-V layout: each block's data on a 4 KiB boundary.
      for (const i of m.bat!.allocated()) expect((m.bat!.get(i)! * 512 + 512) % 4096).toBe(0);
      expect(m.issues).toEqual([]);
      expect(m.locators).toEqual([]);
      expect(m.regions.map((r) => r.name).sort()).toEqual(['BAT', 'block 0', 'block 2', 'footer', 'footer copy', 'header']);
    } finally {
      await v.close();
    }
  });

  it('fixed disk: data then footer, no header', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'f.vhd');
    await writeSynthLayer(nodeFileSystem, p, { type: 'fixed', virtualSize: 3 * MiB, writes: [{ sector: 5, data: fill(512, 9) }] }, null);
    expect(fileSize(p)).toBe(3 * MiB + 512);
    const v = await openVhd(nodeFileSystem, p);
    try {
      expect(v.meta.type).toBe('fixed');
      expect(v.meta.footer.dataOffset).toBeNull();
      expect(v.meta.header).toBeNull();
      expect(v.meta.bat).toBeNull();
      expect(v.meta.footerOffset).toBe(3 * MiB);
      expect([...readRange(p, 5 * 512, 2)]).toEqual([9, 9]);
    } finally {
      await v.close();
    }
  });

  it('differencing disk: parent UUID, parent name and W2ku/W2ru locators decoded', async () => {
    const dir = tempDir();
    const built = await writeSynthChain(nodeFileSystem, dir, [
      { type: 'dynamic', virtualSize: 2 * MiB, writes: [] },
      { type: 'differencing', virtualSize: 2 * MiB, writes: [{ sector: 1, data: fill(512, 3) }] },
    ]);
    const v = await openVhd(nodeFileSystem, built[1].path);
    try {
      const m = v.meta;
      expect(m.type).toBe('differencing');
      expect(m.header!.parentUniqueId).toBe(built[0].uniqueId);
      expect(m.header!.parentUnicodeName).toBe('base.vhd');
      expect(m.locators.map((l) => [l.entry.platform, l.value])).toEqual([
        ['W2ku', { ok: true, path: path.resolve(built[0].path) }],
        ['W2ru', { ok: true, path: '.\\base.vhd' }],
      ]);
      for (const l of m.locators) {
        expect(l.spaceUnit).toBe('bytes');
        expect(l.spaceBytes! % 512).toBe(0);
        expect(l.spaceBytes!).toBeGreaterThanOrEqual(l.entry.dataLength);
      }
      expect(m.issues).toEqual([]);
    } finally {
      await v.close();
    }
  });
});

describe('openVhd: modes', () => {
  it('footer checksum mismatch: strict refuses (BAD_CHECKSUM), lenient warns, collect records an error', async () => {
    const p = await dynamicDisk();
    patchFooter(p, (f) => ({ ...f, checksum: (f.checksum + 1) >>> 0 }), { reseal: false });
    const e = await openErr(p);
    expect(e.code).toBe('BAD_CHECKSUM');
    expect(e.path).toBe(p);
    expect(e.message).toMatch(/^footer checksum mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}$/);
    for (const mode of ['lenient', 'collect'] as const) {
      const v = await openVhd(nodeFileSystem, p, { mode });
      await v.close();
      const i = v.meta.issues.find((x) => x.rule === 'footer-checksum')!;
      expect(i.severity).toBe(mode === 'lenient' ? 'warning' : 'error');
    }
  });

  it('header checksum mismatch: strict refuses, lenient reads on', async () => {
    const p = await dynamicDisk();
    patchHeader(p, (h) => ({ ...h, checksum: 1 }), { reseal: false });
    expect((await openErr(p)).message).toMatch(/dynamic header checksum mismatch/);
    const v = await openVhd(nodeFileSystem, p, { mode: 'lenient' });
    await v.close();
    expect(v.meta.issues.map((i) => [i.severity, i.rule])).toEqual([['warning', 'header-checksum']]);
  });

  it('header checksum is computed over the stored bytes: bytes after the NUL ending the parent name count', async () => {
    const p = await dynamicDisk();
    const off = (await openVhd(nodeFileSystem, p, { mode: 'strict' }).then(async (v) => { await v.close(); return v.meta.footer.dataOffset!; }));
    const raw = readRange(p, off, 1024);
    // Parent name field: bytes 64..575, UTF-16BE, empty for a dynamic disk. Leave junk after its NUL.
    raw[64 + 10] = 0x41;
    raw[64 + 11] = 0x42;
    const seal = (b: Uint8Array) => {
      let sum = 0;
      for (let i = 0; i < 1024; i++) if (i < 36 || i >= 40) sum += b[i];
      new DataView(b.buffer, b.byteOffset).setUint32(36, ~sum >>> 0);
    };
    seal(raw);
    writeRange(p, off, raw);
    const v = await openVhd(nodeFileSystem, p, { mode: 'strict' });
    await v.close();
    expect(v.meta.issues.filter((i) => i.rule === 'header-checksum')).toEqual([]);
    // Those bytes are covered by the checksum: changing one without resealing must fail.
    raw[64 + 11] = 0x43;
    writeRange(p, off, raw);
    expect((await openErr(p)).message).toMatch(/dynamic header checksum mismatch/);
  });

  it('footer copy different from the end footer: strict refuses, collect records it', async () => {
    const p = await dynamicDisk();
    patchFooter(p, (f) => ({ ...f, timestamp: f.timestamp + 1 }), { end: false });
    expect((await openErr(p)).message).toBe('footer copy at offset 0 differs from the end footer');
    const v = await openVhd(nodeFileSystem, p, { mode: 'collect' });
    await v.close();
    expect(v.meta.issues.map((i) => i.rule)).toEqual(['footer-copy']);
  });

  it('end footer destroyed but the copy intact: only lenient mode reads the disk, from the copy', async () => {
    const p = await dynamicDisk();
    writeRange(p, fileSize(p) - 512, new Uint8Array(512));
    expect((await openErr(p)).message).toMatch(/end footer is missing or corrupt/);
    expect((await openErr(p, 'collect')).message).toMatch(/the copy at offset 0 is intact/);
    const v = await openVhd(nodeFileSystem, p, { mode: 'lenient' });
    await v.close();
    expect(v.meta.footer.uniqueId).toBe('11111111-2222-4333-8444-555555555555');
    expect(v.meta.issues.some((i) => i.rule === 'footer-missing')).toBe(true);
  });

  it('a 511-byte footer (Virtual PC before 2004) is read with a warning', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'f511.vhd');
    await writeSynthLayer(nodeFileSystem, p, { type: 'fixed', virtualSize: MiB, writes: [] }, null);
    truncateTo(p, MiB + 511);
    const v = await openVhd(nodeFileSystem, p);
    await v.close();
    expect(v.meta.footerLength).toBe(511);
    expect(v.meta.virtualSize).toBe(MiB);
    expect(v.meta.issues.map((i) => [i.severity, i.rule])).toEqual([['warning', 'footer-511']]);
  });
});

describe('openVhd: structural damage is a typed error, whatever the mode', () => {
  const modes: OpenMode[] = ['strict', 'lenient', 'collect'];

  it('empty file, tiny file, no cookie, directory, missing file', async () => {
    const dir = tempDir();
    const empty = path.join(dir, 'empty.vhd');
    writeFileSync(empty, '');
    const tiny = path.join(dir, 'tiny.vhd');
    writeFileSync(tiny, 'conectix');
    const junk = path.join(dir, 'junk.vhd');
    writeFileSync(junk, fill(4096, 0x41));
    mkdirSync(path.join(dir, 'adir.vhd'));
    for (const mode of modes) {
      expect(await openErr(empty, mode)).toMatchObject({ code: 'TRUNCATED', path: empty, message: 'file is empty, not a VHD' });
      expect(await openErr(tiny, mode)).toMatchObject({ code: 'TRUNCATED', path: tiny });
      expect(await openErr(junk, mode)).toMatchObject({ code: 'BAD_FORMAT', message: 'not a VHD file: no "conectix" footer at offset 3584' });
      expect(await openErr(path.join(dir, 'adir.vhd'), mode)).toMatchObject({ code: 'NOT_A_FILE' });
      expect(await openErr(path.join(dir, 'missing.vhd'), mode)).toMatchObject({ code: 'NOT_FOUND' });
    }
  });

  it('unknown disk type, blktap busy cookie, current size not a multiple of 512', async () => {
    const a = await dynamicDisk();
    patchFooter(a, (f) => ({ ...f, diskType: 5 }));
    expect(await openErr(a, 'collect')).toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/unsupported disk type 5/) });
    const b = await dynamicDisk();
    patchFooter(b, (f) => ({ ...f, cookie: 'v_poison' }));
    expect(await openErr(b, 'lenient')).toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/v_poison/) });
    const c = await dynamicDisk();
    patchFooter(c, (f) => ({ ...f, currentSize: f.currentSize - 100 }));
    expect(await openErr(c, 'collect')).toMatchObject({ code: 'BAD_FORMAT', message: expect.stringMatching(/not a multiple of 512/) });
  });

  it('a fixed disk shorter than its size is TRUNCATED', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'f.vhd');
    await writeSynthLayer(nodeFileSystem, p, { type: 'fixed', virtualSize: MiB, writes: [] }, null);
    const footer = readRange(p, MiB, 512);
    truncateTo(p, MiB / 2);
    appendFileSync(p, footer);
    expect(await openErr(p, 'collect')).toMatchObject({ code: 'TRUNCATED', message: expect.stringMatching(/fixed disk is truncated/) });
  });

  it('header offset, BAT extent and block extents are checked against the file before they are read', async () => {
    const a = await dynamicDisk();
    patchFooter(a, (f) => ({ ...f, dataOffset: 1024 * 1024 * 1024 }));
    expect(await openErr(a, 'collect')).toMatchObject({ code: 'TRUNCATED', message: expect.stringMatching(/dynamic header at 0x40000000 lies outside the file/) });

    const b = await dynamicDisk();
    patchHeader(b, (h) => ({ ...h, maxTableEntries: 0x7fffffff }));
    expect(await openErr(b, 'collect')).toMatchObject({ code: 'TRUNCATED', message: expect.stringMatching(/BAT of 2147483647 entries .* extends past the end of the file/) });

    const c = await dynamicDisk();
    patchHeader(c, (h) => ({ ...h, tableOffset: 2 ** 40 }));
    expect(await openErr(c, 'collect')).toMatchObject({ code: 'TRUNCATED' });

    const d = await dynamicDisk();
    setBatEntry(d, 2, 0xfffffff0);
    expect(await openErr(d, 'collect')).toMatchObject({ code: 'TRUNCATED', message: expect.stringMatching(/^block 2 at 0x1ffffffe000 \+ 2097664 bytes extends past the end of the data/) });

    const e = await dynamicDisk();
    setBatEntry(e, 0, 0);
    expect(await openErr(e, 'collect')).toMatchObject({ code: 'BAD_FORMAT', message: 'BAT entry 0 points into the footer copy (sector 0)' });
  });

  it('block size and table size are checked before anything is sized from them', async () => {
    const a = await dynamicDisk();
    patchHeader(a, (h) => ({ ...h, blockSize: 3 * 512 }));
    expect(await openErr(a, 'collect')).toMatchObject({ code: 'UNSUPPORTED', message: 'block size 1536 is not a power of two between 512 and 2 GiB' });
    const b = await dynamicDisk();
    patchHeader(b, (h) => ({ ...h, blockSize: 0 }));
    expect(await openErr(b, 'collect')).toMatchObject({ code: 'UNSUPPORTED' });
    const c = await dynamicDisk();
    patchHeader(c, (h) => ({ ...h, maxTableEntries: 2 }));
    expect(await openErr(c, 'collect')).toMatchObject({ code: 'BAD_FORMAT', message: 'BAT has 2 entries, too few for 6291456 bytes in 2097152-byte blocks (needs 3)' });
  });

  it('header cookie and the missing parent UUID of a differencing disk are fatal', async () => {
    const a = await dynamicDisk();
    patchHeader(a, (h) => ({ ...h, cookie: 'cxsparsX' }));
    expect(await openErr(a, 'lenient')).toMatchObject({ code: 'BAD_FORMAT', message: 'dynamic header cookie is "cxsparsX", expected "cxsparse"' });
    const b = await dynamicDisk();
    patchFooter(b, (f) => ({ ...f, diskType: 'differencing' }));
    expect(readHeader(b).parentUniqueId).toBeNull();
    expect(await openErr(b, 'collect')).toMatchObject({ code: 'UNSUPPORTED', message: 'differencing disk has no parent UUID' });
  });
});
