/**
 * Damaged ext volumes: real mkfs images with random bytes of their metadata
 * (superblock, descriptors, bitmaps, inode tables, directories, extent and
 * indirect blocks) overwritten. Opening, scanning and reading every file
 * either works or fails with a GuestError: never another exception, never a
 * hang.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as path from 'node:path';
import { mkdirSync, openSync, readFileSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { HAVE_MKFS_EXT4 } from '../test/helpers/guest.js';
import { tempDir } from '../test/helpers/tmp.js';
import { mkfs } from '../test/guest/extOracle.js';
import { bufferSource } from '../src/guest/source.js';
import { ExtVolume } from '../src/guest/ext/volume.js';
import { GuestError } from '../src/guest/errors.js';
import type { GuestFile } from '../src/guest/volume.js';
import { VhdToolError } from '../src/errors.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 200);

interface Image { bytes: Uint8Array; metaBytes: number[] }
const images: Image[] = [];

async function metadataPositions(bytes: Uint8Array): Promise<number[]> {
  const vol = await ExtVolume.open(bufferSource(bytes));
  const scan = await vol.scan();
  const pos: number[] = [];
  for (const [a, b] of scan.metadata) for (let p = a; p < b && p < bytes.length; p += 7) pos.push(p);
  return pos;
}

/** Opens, scans and reads (the start of) every file; returns what went wrong, if anything. */
async function exercise(bytes: Uint8Array): Promise<unknown> {
  try {
    const vol = await ExtVolume.open(bufferSource(bytes));
    const files: GuestFile[] = [];
    await vol.scan({ onFile: (f) => { if (files.length < 64) files.push(f); } });
    for (const f of files) {
      try {
        let chunks = 0;
        for await (const c of vol.readContent(f)) {
          expect(c).toBeInstanceOf(Uint8Array);
          if (++chunks >= 4) break;
        }
      } catch (e) {
        if (!(e instanceof GuestError)) return e;
      }
    }
    return null;
  } catch (e) {
    return e instanceof GuestError ? null : e;
  }
}

describe.skipIf(!HAVE_MKFS_EXT4)('ext reader on damaged volumes', () => {
  beforeAll(async () => {
    const dir = tempDir('vhdtool-ext-robust-');
    const src = path.join(dir, 'src');
    mkdirSync(path.join(src, 'a/b'), { recursive: true });
    for (let i = 0; i < 12; i++) writeFileSync(path.join(src, i % 3 ? 'a' : 'a/b', `f${i}`), Buffer.alloc(i * 1500 + 1, i));
    const fd = openSync(path.join(src, 'islands'), 'w');
    for (let i = 0; i < 9; i++) writeSync(fd, Buffer.alloc(1024, i + 1), 0, 1024, i * 5000);
    closeSync(fd);
    for (const args of [['-b', '1024'], ['-t', 'ext2', '-b', '1024'], ['-b', '1024', '-O', 'inline_data,^64bit']]) {
      const img = mkfs(path.join(dir, `${images.length}.img`), 2 * 1024 * 1024, args, src);
      const bytes = new Uint8Array(readFileSync(img));
      images.push({ bytes, metaBytes: await metadataPositions(bytes) });
    }
  });

  it('random damage to the metadata gives a result or a GuestError, never another exception', async () => {
    await fc.assert(fc.asyncProperty(
      fc.nat(2),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }),
      async (which, edits) => {
        const img = images[which];
        const bytes = img.bytes.slice();
        for (const [p, v] of edits) bytes[img.metaBytes[p % img.metaBytes.length]] = v;
        const problem = await exercise(bytes);
        if (problem) throw problem;
      },
    ), { numRuns: RUNS });
  });

  it('the undamaged images scan cleanly (the damage above is what the property exercises)', async () => {
    for (const img of images) {
      const scan = await (await ExtVolume.open(bufferSource(img.bytes))).scan();
      expect(scan.anomalies).toEqual([]);
      expect(img.metaBytes.length).toBeGreaterThan(1000);
    }
    expect(new VhdToolError('BAD_FILESYSTEM', 'x').exitCode).toBe(9);
  });
});
