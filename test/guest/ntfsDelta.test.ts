/**
 * The incremental NTFS scan (ScanOptions.since) against the full scan of the
 * same view, on volumes changed by the ntfs-3g driver: every file the full
 * scan finds is either reported, field for field the same, or one the
 * earlier view had, identical, and said to be unreported; metadata and file
 * data agree within the changed bytes. The hard cases: a renamed directory,
 * extension records (many hard links) that change or move, an $MFT that
 * grows, a record reused for another file, hard links, named streams, data
 * rewritten in place; and a real Windows differencing disk over its parent.
 */
import { appendFileSync, copyFileSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { HAVE_FUSE, HAVE_TSK, scanImage, withMounted } from '../helpers/ntfsImages.js';
import { checkDelta, differingSectors, longName, makeDeltaBase } from '../helpers/ntfsDelta.js';
import { ntfsFirstByte, poke } from '../helpers/diffOracle.js';
import { NtfsVolume } from '../../src/guest/ntfs/volume.js';
import { bufferSource } from '../../src/guest/source.js';
import { HAVE_REAL, realPath } from '../helpers/real.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openChain } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';
import { chainSource } from '../../src/chain/guestSource.js';

describe.skipIf(!HAVE_FUSE)('NTFS incremental scan against the full scan', () => {
  let dir = '';
  let base = '';

  beforeAll(async () => {
    dir = tempDir();
    base = await makeDeltaBase(path.join(dir, 'a.img'));
  }, 60_000);

  /** A copy of the base changed through ntfs-3g: [base bytes, changed bytes]. */
  async function variant(name: string, fn: (m: string) => void): Promise<[Uint8Array, Uint8Array]> {
    const img = path.join(dir, `${name}.img`);
    copyFileSync(base, img);
    await withMounted(img, fn);
    return [new Uint8Array(readFileSync(base)), new Uint8Array(readFileSync(img))];
  }

  async function agrees(a: Uint8Array, b: Uint8Array) {
    const r = await checkDelta(a, b);
    expect(r.problems).toEqual([]);
    return r;
  }

  it('a renamed directory: what lies under it is reported under its new path, and little else', async () => {
    const [a, b] = await variant('renamed', (m) => renameSync(path.join(m, 'alpha'), path.join(m, 'alpha-renamed')));
    const r = await agrees(a, b);
    expect(r.incremental).toBe(true);
    // alpha-renamed, inner, one.txt, two.bin and the root; not the 50-odd others.
    expect(r.reported).toBeGreaterThanOrEqual(4);
    expect(r.reported).toBeLessThan(r.total / 2);
  });

  it('extension records that change and move: hard links added, then others removed', async () => {
    const [a, b] = await variant('links', (m) => {
      for (let i = 8; i < 20; i++) linkSync(path.join(m, 'gamma/many.txt'), path.join(m, 'gamma', longName(i)));
      for (let i = 0; i < 6; i++) unlinkSync(path.join(m, 'beta', longName(i)));
    });
    // The linked file's names fill its base record: it has extension records (its meta is more than one record) on both sides.
    const linked = async (img: Uint8Array) => (await scanImage(img)).files.find((f) => f.id === manyId)!;
    const manyId = (await scanImage(a)).files.find((f) => f.path.startsWith('beta/a-rather-long') || f.path === 'gamma/many.txt')!.id;
    expect((await linked(a)).meta.bytes).toBeGreaterThan(1024);
    expect((await linked(b)).meta.bytes).toBeGreaterThan((await linked(a)).meta.bytes);
    expect((await agrees(a, b)).incremental).toBe(true);
    // Back again: B's $MFT grew (new extension records), so this way the reader may scan in full; it agrees either way.
    await agrees(b, a);
  });

  it('an $MFT that grew: new records past the earlier end are read; the other way a full scan is made', async () => {
    const [a, b] = await variant('grown', (m) => {
      mkdirSync(path.join(m, 'crowd'));
      for (let i = 0; i < 400; i++) writeFileSync(path.join(m, `crowd/c${i}.txt`), `crowd ${i}\n`);
    });
    const mftSize = async (img: Uint8Array) => (await scanImage(img)).files.find((f) => f.path === '$MFT')!.size;
    expect(await mftSize(b)).toBeGreaterThan(await mftSize(a));
    expect((await agrees(a, b)).incremental).toBe(true);
    // Fewer records on the new side: the shortcut's precondition fails and the reader scans in full.
    expect((await agrees(b, a)).incremental).toBe(false);
  });

  it('a record reused for another file (its sequence number changed)', async () => {
    const [a, b] = await variant('reused', (m) => {
      rmSync(path.join(m, 'gamma/victim.txt'));
      writeFileSync(path.join(m, 'alpha/newcomer.txt'), 'new file in the old record\n');
    });
    const before = (await scanImage(a)).files.find((f) => f.path === 'gamma/victim.txt')!;
    const after = (await scanImage(b)).files.find((f) => f.path === 'alpha/newcomer.txt')!;
    expect(after.ref).toBe(before.ref);
    expect(after.id).not.toBe(before.id);
    expect((await agrees(a, b)).incremental).toBe(true);
    expect((await agrees(b, a)).incremental).toBe(true);
  });

  it('a hard link added, a file moved between directories, named streams added and rewritten', async () => {
    const [a, b] = await variant('links-streams', (m) => {
      linkSync(path.join(m, 'gamma/f1.txt'), path.join(m, 'alpha/f1-link.txt'));
      renameSync(path.join(m, 'gamma/f2.txt'), path.join(m, 'beta/f2-moved.txt'));
      writeFileSync(path.join(m, 'gamma/f3.txt:new'), Buffer.alloc(20_000, 7));
      writeFileSync(path.join(m, 'beta/three.txt:small'), 'rewritten');
      appendFileSync(path.join(m, 'beta/three.txt:large'), Buffer.alloc(30_000, 4));
    });
    const r = await agrees(a, b);
    expect(r.incremental).toBe(true);
    expect((await agrees(b, a)).incremental).toBe(true);
    expect(r.reported).toBeLessThan(r.total / 2);
  });

  it.skipIf(!HAVE_TSK)('data rewritten in place: the file is reported though its record did not change', async () => {
    const img = path.join(dir, 'poked.img');
    copyFileSync(base, img);
    poke(img, ntfsFirstByte(img, 'alpha/inner/two.bin', 4096), Buffer.from('POKED'));
    const a = new Uint8Array(readFileSync(base));
    const b = new Uint8Array(readFileSync(img));
    expect(differingSectors(a, b).bytes).toBe(512);
    const r = await agrees(a, b);
    expect(r.incremental).toBe(true);
    // The file and $Volume? No: only the file whose cluster changed (and nothing else) is reported.
    expect(r.reported).toBe(1);
  });

  it('any one record changed in a byte the reader ignores (its base or extension records then read again)', async () => {
    const a = new Uint8Array(readFileSync(base));
    const vol = await NtfsVolume.open(bufferSource(a));
    const { files } = await scanImage(a);
    const records = Math.floor(files.find((f) => f.path === '$MFT')!.size / 1024);
    // The extension records exist (the linked file's and the streams' file's meta span several records).
    expect(files.filter((f) => f.meta.bytes > 1024 && !f.directory && !f.system).length).toBeGreaterThanOrEqual(2);
    for (let n = 16; n < records; n++) {
      const b = a.slice();
      const at = vol.recordRanges(n).first;
      if (b[at] !== 0x46) continue; // never used ("FILE" missing)
      b[at + 18]++; // the hard link count, which the reader does not use
      const r = await checkDelta(a, b);
      expect({ n, problems: r.problems, incremental: r.incremental }).toEqual({ n, problems: [], incremental: true });
    }
  });

  it('an aborted signal stops an incremental scan: INTERRUPTED', async () => {
    const [a, b] = await variant('stopped', (m) => renameSync(path.join(m, 'beta'), path.join(m, 'beta-stopped')));
    const prev = await (await NtfsVolume.open(bufferSource(a))).scan({ resumable: true });
    const vol = await NtfsVolume.open(bufferSource(b));
    const stop = new AbortController();
    stop.abort();
    const changed = differingSectors(a, b);
    expect(vol.continuesFrom(await NtfsVolume.open(bufferSource(a)), changed)).toBe(true);
    await expect(vol.scan({ signal: stop.signal, since: { from: prev.resume!, changed } })).rejects.toMatchObject({ code: 'INTERRUPTED' });
  });

  it('nothing changed: nothing is reported', async () => {
    const a = new Uint8Array(readFileSync(base));
    const r = await agrees(a, a);
    expect(r.incremental).toBe(true);
    expect(r.reported).toBe(0);
  });
});

describe.skipIf(!HAVE_REAL)('NTFS incremental scan on a real Windows differencing disk', () => {
  /** The NTFS partition (MBR entry 1, sectors 128 + 6016) of a fixture's view, through vhdtool's chain reader. */
  async function partition(name: string): Promise<Uint8Array> {
    const chain = await openChain(nodeFileSystem, realPath(name));
    try {
      return await chainSource(new ChainReader(chain)).read(128 * 512, 6016 * 512);
    } finally {
      await chain.close();
    }
  }

  it('dfvfs\' ntfs-differential.vhd over ntfs-parent.vhd: the child\'s view scanned from the parent\'s agrees with its full scan, and back', async () => {
    const a = await partition('ntfs-parent.vhd');
    const b = await partition('ntfs-differential.vhd');
    const r = await checkDelta(a, b);
    expect(r.problems).toEqual([]);
    expect(r.incremental).toBe(true);
    expect(r.reported).toBeGreaterThan(0);
    expect(r.reported).toBeLessThan(r.total);
    expect((await checkDelta(b, a)).problems).toEqual([]);
  });
});
