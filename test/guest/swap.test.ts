/**
 * The Linux swap reader on areas made by mkswap (page sizes 4 KiB to 64 KiB,
 * labels, UUIDs), checked against util-linux blkid -p (UUID, LABEL, VERSION,
 * TYPE swap / swsuspend) and mkswap's own report of the usable size; then
 * hibernation signatures, a big-endian header, the obsolete version 0, and
 * headers the kernel would refuse.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GuestError } from '../../src/guest/errors.js';
import { openVolume } from '../../src/guest/detect.js';
import { READERS } from '../../src/guest/readers.js';
import { bufferSource } from '../../src/guest/source.js';
import { SwapVolume, maxBadPages, swapReader } from '../../src/guest/swap.js';
import { blankImage, run } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const HAVE_MKSWAP = spawnSync('mkswap', ['--version'], { stdio: 'ignore' }).error === undefined;
const HAVE_BLKID = spawnSync('blkid', ['--version'], { stdio: 'ignore' }).error === undefined;

function blkid(file: string): Record<string, string> {
  const r = spawnSync('blkid', ['-p', '-o', 'export', file], { encoding: 'utf8' });
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** An image made by mkswap; returns it with the usable bytes mkswap reported. */
function mkswap(args: string[], bytes = 4 * MiB): { file: string; img: Uint8Array; usable: number } {
  const file = blankImage(path.join(tempDir(), 'swap.img'), bytes);
  const out = run('mkswap', [...args, file]);
  const usable = Number(/\((\d+) bytes\)/.exec(out)![1]);
  return { file, img: new Uint8Array(readFileSync(file)), usable };
}

async function open(img: Uint8Array): Promise<SwapVolume> {
  const v = await swapReader.open(bufferSource(img));
  expect(v).toBeInstanceOf(SwapVolume);
  return v as SwapVolume;
}

async function refused(img: Uint8Array): Promise<string> {
  const e = await swapReader.open(bufferSource(img)).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(GuestError);
  return (e as GuestError).message;
}

function makeSwap(pageSize: number, pages: number): Uint8Array {
  const img = new Uint8Array(pageSize * pages);
  const v = new DataView(img.buffer);
  v.setUint32(1024, 1, true);
  v.setUint32(1028, pages - 1, true);
  img.set(new TextEncoder().encode('SWAPSPACE2'), pageSize - 10);
  return img;
}

describe.skipIf(!HAVE_MKSWAP)('swap areas made by mkswap', () => {
  for (const pageSize of [4096, 8192, 16384, 65536]) {
    it(`page size ${pageSize}: version, last page, UUID and label as mkswap and blkid give them`, async () => {
      const uuid = '12345678-9abc-def0-1234-56789abcdef0';
      const { file, img, usable } = mkswap(['-p', String(pageSize), '-L', `swap${pageSize}`, '-U', uuid]);
      const vol = await open(img);
      expect(vol.header).toMatchObject({ pageSize, version: 1, lastPage: usable / pageSize, badPages: [], uuid, label: `swap${pageSize}`, littleEndian: true, suspend: null });
      expect(vol.clusterSize).toBe(pageSize);
      expect(vol.label).toBe(`swap${pageSize}`);
      if (HAVE_BLKID) expect(blkid(file)).toMatchObject({ TYPE: 'swap', VERSION: '1', UUID: uuid, LABEL: `swap${pageSize}` });
    });
  }

  it('the volume: no free space, the header page is the metadata, no files, clean', async () => {
    const { img } = mkswap([]);
    const vol = await open(img);
    const scan = await vol.scan();
    expect(scan.state).toEqual({ state: 'clean', reasons: [] });
    expect(scan.free.isEmpty).toBe(true);
    expect(scan.metadata.toArray()).toEqual([[0, 4096]]);
    expect(scan.fileData.isEmpty).toBe(true);
    expect([scan.files, scan.directories, scan.anomalies.length]).toEqual([0, 0, 0]);
    expect(vol.clusterArea).toEqual({ start: 0, end: 4 * MiB });
    await expect(async () => {
      for await (const _ of vol.readContent({ id: 'x', path: 'x', size: 0, directory: false, system: false, data: scan.free, meta: scan.free, ref: 0 })) void _;
    }).rejects.toThrow(/holds no files/);
  });

  it('openVolume finds it through READERS', async () => {
    expect(READERS).toContain(swapReader);
    const { img } = mkswap([]);
    const v = await openVolume(bufferSource(img));
    expect(v.kind).toBe('swap');
  });

  for (const sig of ['S1SUSPEND', 'S2SUSPEND', 'ULSUSPEND', 'LINHIB0001']) {
    it(`a hibernation image (${sig}) makes the state 'hibernated', as blkid's swsuspend says`, async () => {
      const { file, img } = mkswap(['-L', 'hib']);
      img.set(new TextEncoder().encode('SWAPSPACE2'), 4096 - 20);
      img.fill(0, 4096 - 10, 4096);
      img.set(new TextEncoder().encode(sig), 4096 - 10);
      const vol = await open(img);
      expect(vol.header.suspend).toBe(sig);
      expect(vol.header.label).toBe('hib');
      const scan = await vol.scan();
      expect(scan.state.state).toBe('hibernated');
      expect(scan.state.reasons[0]).toMatch(new RegExp(`hibernation image \\(signature ${sig}\\)`));
      if (HAVE_BLKID) {
        writeFileSync(file, img);
        expect(blkid(file)).toMatchObject({ TYPE: 'swsuspend', VERSION: sig.toLowerCase() });
      }
    });
  }

  it('a header written by a big-endian machine reads the same, as blkid reads it', async () => {
    const { file, img, usable } = mkswap(['-U', '11111111-2222-3333-4444-555555555555']);
    const v = new DataView(img.buffer);
    for (const at of [1024, 1028, 1032]) v.setUint32(at, v.getUint32(at, true), false);
    const vol = await open(img);
    expect(vol.header).toMatchObject({ littleEndian: false, version: 1, lastPage: usable / 4096 });
    if (HAVE_BLKID) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(file, img);
      expect(blkid(file)).toMatchObject({ TYPE: 'swap', VERSION: '1' });
    }
  });
});

describe('swap headers by hand', () => {
  it('bad pages are listed and reported as an anomaly over their pages', async () => {
    const img = makeSwap(4096, 100);
    const v = new DataView(img.buffer);
    v.setUint32(1032, 2, true);
    v.setUint32(1536, 5, true);
    v.setUint32(1540, 9, true);
    const vol = await open(img);
    expect(vol.header.badPages).toEqual([5, 9]);
    const scan = await vol.scan();
    expect(scan.anomalies).toHaveLength(1);
    expect(scan.anomalies[0].ranges!.toArray()).toEqual([[5 * 4096, 6 * 4096], [9 * 4096, 10 * 4096]]);
  });

  it('the obsolete version 0 (SWAP-SPACE) is recognised, without UUID or label', async () => {
    const img = new Uint8Array(4096 * 20);
    img.set(new TextEncoder().encode('SWAP-SPACE'), 4086);
    const vol = await open(img);
    expect(vol.header).toMatchObject({ version: 0, lastPage: 19, uuid: null, label: null });
  });

  it('a 32 KiB page (not written by mkswap, but used by some architectures) is found by its signature', async () => {
    const vol = await open(makeSwap(32768, 10));
    expect(vol.header.pageSize).toBe(32768);
  });

  it('TuxOnIce\'s header at the start is a hibernation image', async () => {
    const img = makeSwap(4096, 50);
    img.fill(0, 4086, 4096);
    img.set([0xed, 0xc3, 0x02, 0xe9, 0x98, 0x56, 0xe5, 0x0c], 0);
    const vol = await open(img);
    expect((await vol.scan()).state.state).toBe('hibernated');
  });

  it('headers the kernel refuses are GuestErrors', async () => {
    const bad = (edit: (v: DataView) => void) => {
      const img = makeSwap(4096, 100);
      edit(new DataView(img.buffer));
      return img;
    };
    expect(await refused(bad((v) => v.setUint32(1024, 2, true)))).toMatch(/header version 2 \(1 expected\)/);
    expect(await refused(bad((v) => v.setUint32(1028, 0, true)))).toMatch(/empty \(last page 0\)/);
    expect(await refused(bad((v) => v.setUint32(1028, 100, true)))).toMatch(/claims 101 pages of 4096 bytes, the volume holds 100/);
    expect(await refused(bad((v) => v.setUint32(1032, maxBadPages(4096) + 1, true)))).toMatch(/638 bad pages listed, more than the 637/);
    expect(await refused(bad((v) => { v.setUint32(1032, 1, true); v.setUint32(1536, 0, true); }))).toMatch(/bad page 0 lies outside/);
    expect(await refused(bad((v) => { v.setUint32(1032, 1, true); v.setUint32(1536, 100, true); }))).toMatch(/bad page 100 lies outside the area \(pages 1-99\)/);
    expect(await refused(makeSwap(4096, 1))).toMatch(/smaller than two 4096-byte pages/);
    expect(await refused(new Uint8Array(8192))).toMatch(/no swap signature/);
  });

  it('probe: a signature in the signature slot of some page size, and nothing else', () => {
    expect(swapReader.probe(makeSwap(4096, 4), 16384)).toBe(true);
    const img = makeSwap(4096, 4);
    img.set(new TextEncoder().encode('SWAPSPACE2'), 4087);
    img.fill(0, 4086, 4087);
    expect(swapReader.probe(img, img.length)).toBe(false);
  });
});
