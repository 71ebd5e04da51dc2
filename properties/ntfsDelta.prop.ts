/**
 * The incremental NTFS scan (ScanOptions.since) is exact: whatever happened
 * between the two views, the files it reports plus the earlier view's files
 * it calls unreported are the full scan's files, field for field, and its
 * metadata and file data are the full scan's within the changed bytes.
 *
 * Two sources of change: random MFT record edits on a volume ntfs-3g wrote
 * (records copied over others, as an extension record that moved, zeroed,
 * freed, torn, given another sequence number or another base, or changed
 * in a byte the reader does not use), and random
 * file-system histories written through ntfs-3g.
 */
import { copyFileSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { NtfsVolume } from '../src/guest/ntfs/volume.js';
import { bufferSource } from '../src/guest/source.js';
import { tempDir } from '../test/helpers/tmp.js';
import { HAVE_FUSE, scanImage, withMounted } from '../test/helpers/ntfsImages.js';
import { checkDelta, makeDeltaBase } from '../test/helpers/ntfsDelta.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS_NTFS_DELTA ?? 40);
const RS = 1024;

type Edit =
  | { kind: 'copy'; to: number; from: number }
  | { kind: 'zero' | 'free' | 'dir' | 'touch'; to: number }
  | { kind: 'flip'; to: number; at: number; value: number }
  | { kind: 'sequence'; to: number; value: number }
  | { kind: 'base'; to: number; base: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('copy' as const), to: fc.nat(), from: fc.nat() }),
  fc.record({ kind: fc.constantFrom('zero' as const, 'free' as const, 'dir' as const, 'touch' as const), to: fc.nat() }),
  fc.record({ kind: fc.constant('flip' as const), to: fc.nat(), at: fc.integer({ min: 0, max: RS - 1 }), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('sequence' as const), to: fc.nat(), value: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ kind: fc.constant('base' as const), to: fc.nat(), base: fc.nat() }),
);

/** Applies record edits to a copy of the image; `at(n)` is record n's byte offset, `count` the records in use by the $MFT. */
function applyEdits(img: Uint8Array, edits: Edit[], at: (n: number) => number, count: number): Uint8Array {
  const out = img.slice();
  const dv = new DataView(out.buffer);
  for (const e of edits) {
    // Records 0..3 are left alone: a broken $MFT or $MFTMirr record makes the volume unreadable on both paths alike.
    const n = 4 + (e.to % (count - 4));
    const o = at(n);
    switch (e.kind) {
      case 'copy': {
        out.copyWithin(o, at(4 + (e.from % (count - 4))), at(4 + (e.from % (count - 4))) + RS);
        if (dv.getUint16(o + 4, true) >= 0x30) dv.setUint32(o + 44, n, true); // the record's own number
        break;
      }
      case 'zero': out.fill(0, o, o + RS); break;
      case 'free': dv.setUint16(o + 22, dv.getUint16(o + 22, true) & ~1, true); break;
      case 'dir': dv.setUint16(o + 22, dv.getUint16(o + 22, true) ^ 2, true); break;
      // The hard link count, which the reader does not use: the record's bytes change, not what it says.
      case 'touch': dv.setUint16(o + 18, dv.getUint16(o + 18, true) + 1, true); break;
      case 'flip': out[o + e.at] = e.value; break;
      case 'sequence': dv.setUint16(o + 16, e.value, true); break;
      case 'base': {
        dv.setUint32(o + 32, e.base % count, true);
        dv.setUint16(o + 36, 0, true);
        dv.setUint16(o + 38, 1, true);
        break;
      }
    }
  }
  return out;
}

/** Full and incremental scans agree; false when a full scan refuses either view (e.g. $Bitmap broken): nothing to compare. */
async function agree(a: Uint8Array, b: Uint8Array): Promise<boolean> {
  for (const img of [a, b]) {
    try {
      await scanImage(img);
    } catch {
      return false;
    }
  }
  const r = await checkDelta(a, b);
  expect(r.problems).toEqual([]);
  return r.incremental;
}

describe.skipIf(!HAVE_FUSE)('NTFS incremental scan is exact', () => {
  let base = new Uint8Array(0);
  let at: (n: number) => number = () => 0;
  let count = 0;
  const dir = tempDir('ntfs-delta-prop-');

  beforeAll(async () => {
    base = new Uint8Array(readFileSync(await makeDeltaBase(path.join(dir, 'base.img'))));
    const vol = await NtfsVolume.open(bufferSource(base));
    const { files } = await scanImage(base);
    count = Math.floor(files.find((f) => f.path === '$MFT')!.size / RS);
    at = (n) => vol.recordRanges(n).first;
  }, 60_000);

  it('after random MFT record edits, either way round, the incremental scan reports exactly what the full scan finds that may differ', async () => {
    let incremental = 0;
    await fc.assert(fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 8 }), async (edits) => {
      const b = applyEdits(base, edits, at, count);
      if (await agree(base, b)) incremental++;
      await agree(b, base);
    }), { numRuns: RUNS, seed: 0x5eed_de17 });
    // The shortcut was really taken in most runs (not a full scan each time).
    expect(incremental).toBeGreaterThan(RUNS / 2);
  }, 120_000);

  it('after random file-system changes written by ntfs-3g, the incremental scan reports exactly what the full scan finds that may differ', async () => {
    type Op = { kind: 'rename-dir' | 'move' | 'delete' | 'create' | 'link' | 'stream' | 'grow'; n: number };
    const op: fc.Arbitrary<Op> = fc.record({ kind: fc.constantFrom('rename-dir', 'move', 'delete', 'create', 'link', 'stream', 'grow'), n: fc.nat(40) });
    let round = 0;
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
      const img = path.join(dir, `h${round++}.img`);
      writeFileSync(img, base);
      await withMounted(img, (m) => {
        const dirs = ['alpha', 'alpha/inner', 'beta', 'gamma'];
        ops.forEach((o, i) => {
          const d = dirs[o.n % dirs.length];
          const f = path.join(m, 'gamma', `f${o.n % 30}.txt`);
          const exists = (p: string) => { try { readFileSync(p); return true; } catch { return false; } };
          if (o.kind === 'rename-dir' && d !== 'alpha/inner') {
            const to = `${d}-r${i}`;
            renameSync(path.join(m, d), path.join(m, to));
            dirs[dirs.indexOf(d)] = to;
            if (d === 'alpha') dirs[1] = `${to}/inner`;
          } else if (o.kind === 'move' && exists(f)) renameSync(f, path.join(m, d, `moved-${i}.txt`));
          else if (o.kind === 'delete' && exists(f)) rmSync(f);
          else if (o.kind === 'create') writeFileSync(path.join(m, d, `new-${i}.txt`), Buffer.alloc(o.n * 97, i));
          else if (o.kind === 'link' && exists(f)) linkSync(f, path.join(m, d, `link-${i}-with-a-name-long-enough-to-crowd-the-record.txt`));
          else if (o.kind === 'stream' && exists(f)) writeFileSync(`${f}:s${i}`, Buffer.alloc(o.n * 211, i));
          else if (o.kind === 'grow') {
            mkdirSync(path.join(m, d, `crowd-${i}`));
            for (let k = 0; k < 60; k++) writeFileSync(path.join(m, d, `crowd-${i}`, `c${k}`), `${k}`);
          }
        });
      });
      const b = new Uint8Array(readFileSync(img));
      rmSync(img);
      await agree(base, b);
      await agree(b, base);
    }), { numRuns: Math.max(3, Math.round(RUNS / 6)), seed: 0x5eed_de18 });
  }, 300_000);
});
