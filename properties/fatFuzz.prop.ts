/**
 * Random damage to real FAT volumes (boot sector, FATs, directories): the
 * reader either reads the volume, with free space, metadata and file data
 * still splitting it exactly, or refuses it with a GuestError. Nothing
 * else: no other error, no hang, no read outside the volume.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { GuestError } from '../src/guest/errors.js';
import type { ByteSource } from '../src/guest/source.js';
import type { FatVolume } from '../src/guest/fat/volume.js';
import { HAVE_MKFS_FAT, HAVE_MTOOLS } from '../test/helpers/guest.js';
import { tempDir } from '../test/helpers/tmp.js';
import { contentOf, mkfat, mt, partitionProblems, scanSource, type FatSpec } from '../test/guest/fatTools.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 200);

/** The base image with byte patches laid over it; reads outside the volume fail the property. */
function patched(base: Uint8Array, patches: Array<[number, number]>): ByteSource {
  const map = new Map(patches);
  return {
    size: base.length,
    read(offset, length) {
      if (!(offset >= 0 && length >= 0 && offset + length <= base.length)) throw new Error(`read outside the volume: ${offset} + ${length}`);
      const out = base.slice(offset, offset + length);
      for (const [at, v] of map) if (at >= offset && at < offset + length) out[at - offset] = v;
      return Promise.resolve(out);
    },
  };
}

interface Base {
  bytes: Uint8Array;
  /** Bytes worth damaging: the boot sector, FATs, root directory and the first clusters (the directories mtools made first). */
  hot: number;
}

async function makeBase(dir: string, spec: FatSpec): Promise<Base> {
  const img = mkfat(path.join(dir, `fuzz${spec.fat}.img`), spec);
  const f = path.join(dir, 'content');
  mt.mmd(img, 'DIR', 'DIR/Sub Directory', 'OTHER');
  for (let i = 0; i < 6; i++) {
    writeFileSync(f, Buffer.alloc(1000 * i + 1, i));
    mt.mcopy(img, f, `${i % 2 ? 'DIR/Sub Directory/' : ''}file number ${i}.bin`);
  }
  mt.mcopy(img, f, 'OTHER/X.TXT');
  mt.mdel(img, 'file number 2.bin');
  const bytes = new Uint8Array(readFileSync(img));
  const vol = (await scanSource(patched(bytes, []))).vol;
  return { bytes, hot: vol.geometry.dataStart + 8 * vol.clusterSize };
}

describe.skipIf(!HAVE_MKFS_FAT || !HAVE_MTOOLS)('FAT reader on randomly damaged volumes', () => {
  const bases: Base[] = [];
  beforeAll(async () => {
    const dir = tempDir();
    const specs: FatSpec[] = [
      { fat: 12, bytes: 1024 * 1024, sectorsPerCluster: 1 },
      { fat: 16, bytes: 4 * 1024 * 1024, sectorsPerCluster: 1 },
      { fat: 32, bytes: 34 * 1024 * 1024, sectorsPerCluster: 1 },
    ];
    for (const s of specs) bases.push(await makeBase(dir, s));
  });

  it('damaged boot sectors, FATs and directories give a consistent scan or a GuestError, never another failure', async () => {
    const arbPatch = fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x00, 0xff, 0xe5, 0x0f, 0xf7, 0xf8)));
    await fc.assert(fc.asyncProperty(fc.nat({ max: 2 }), fc.array(arbPatch, { minLength: 1, maxLength: 24 }), fc.boolean(), async (k, raw, bootToo) => {
      const base = bases[k];
      // Mostly after the boot sector's BPB (so most cases get past it); sometimes in it.
      const patches = raw.map(([at, v]) => [bootToo ? at % base.hot : 64 + (at % (base.hot - 64)), v] as [number, number]);
      const src = patched(base.bytes, patches);
      let scanned;
      try {
        scanned = await scanSource(src);
      } catch (e) {
        expect(e).toBeInstanceOf(GuestError);
        expect((e as Error).message).not.toContain('\n');
        return;
      }
      expect(partitionProblems(scanned.scan, scanned.vol.size)).toEqual([]);
      for (const f of scanned.files) {
        if (f.directory) continue;
        try {
          const c = await contentOf(scanned.vol as FatVolume, f);
          expect(c.length).toBe(f.size);
        } catch (e) {
          expect(e).toBeInstanceOf(GuestError);
        }
      }
    }), { numRuns: RUNS, seed: Number(process.env.VHDTOOL_FAT_FUZZ_SEED ?? 424242) });
  });
});
