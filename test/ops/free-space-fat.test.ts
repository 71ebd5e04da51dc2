/**
 * compact --free-space on FAT volumes that mkfs.fat and mtools made: a base
 * with files, a child in which files were written and deleted (mdel). The
 * oracles are the file system's own tools on the composed view, before and
 * after: mtools lists and copies out every file (byte-identical), fsck.fat -n
 * finds nothing, and Sleuth Kit's blkls says which sectors are unallocated:
 * the view may change only there, and the leaf keeps no sector there.
 */
import { openSync, readSync, writeSync, closeSync } from 'node:fs';
import * as path from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compact } from '../../src/ops/compact.js';
import { RangeSet } from '../../src/guest/ranges.js';
import { chainFromImages, extract, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_SFDISK, HAVE_TSK } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { drive, fsckFat, HAVE_FSCK_FAT, mkfat, mt, tskFree, type FatSpec } from '../guest/fatTools.js';
import { heldBytes, makeDisk, noise, rawOf, step } from '../helpers/freeSpace.js';

const HAVE = HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_SFDISK && HAVE_TSK && HAVE_FSCK_FAT;
const GPT_DATA = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7';

interface Case {
  name: string;
  label: 'dos' | 'gpt';
  start: number;
  fat: FatSpec;
}

const CASES: Case[] = [
  { name: 'MBR, start at sector 63, FAT32 with 512-byte clusters', label: 'dos', start: 63, fat: { fat: 32, bytes: 40 * 1024 * 1024, sectorsPerCluster: 1 } },
  { name: 'GPT, start at 1 MiB, FAT12 with 64 KiB clusters', label: 'gpt', start: 2048, fat: { fat: 12, bytes: 8 * 1024 * 1024, sectorsPerCluster: 128 } },
  { name: 'MBR, start at 1 MiB, FAT16 with 4 KiB clusters', label: 'dos', start: 2048, fat: { fat: 16, bytes: 24 * 1024 * 1024, sectorsPerCluster: 8 } },
];

function local(dir: string, name: string, bytes: number, seed: number): string {
  const f = path.join(dir, name);
  writeFileSync(f, noise(bytes, seed));
  return f;
}

/** Every file of the volume and its content, as mtools reads them. */
function filesOf(img: string, offset: number): Map<string, Buffer> {
  const d = drive(img, offset);
  const out = new Map<string, Buffer>();
  for (const p of mt.list(d)) if (!p.endsWith('/')) out.set(p, Buffer.from(mt.cat(d, p)));
  return out;
}

/** Disk bytes of the sectors that differ between two images of one size. */
function changedBytes(a: string, b: string, size: number): RangeSet {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  const out: Array<[number, number]> = [];
  const x = Buffer.alloc(1 << 20);
  const y = Buffer.alloc(1 << 20);
  try {
    for (let at = 0; at < size; at += x.length) {
      const n = Math.min(x.length, size - at);
      readSync(fa, x, 0, n, at);
      readSync(fb, y, 0, n, at);
      if (x.compare(y, 0, n, 0, n) === 0) continue;
      for (let o = 0; o < n; o += 512) if (x.compare(y, o, o + 512, o, o + 512) !== 0) out.push([at + o, at + o + 512]);
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
  return RangeSet.from(out);
}

function setDirty(vol: string, fat: 12 | 16 | 32): void {
  const fd = openSync(vol, 'r+');
  try {
    const at = fat === 32 ? 0x41 : 0x25;
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] |= 1;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

describe.skipIf(!HAVE)('compact --free-space on FAT (mkfs.fat, mtools; oracles mtools, fsck.fat, Sleuth Kit)', () => {
  for (const c of CASES) {
    it(`${c.name}: live files unchanged, deleted files' sectors gone from the child, dry run exact`, async () => {
      const dir = tempDir();
      const vol = mkfat(path.join(dir, 'vol.img'), c.fat);
      const off = c.start * 512;
      const sectors = c.fat.bytes / 512;
      const size = off + c.fat.bytes + 1024 * 1024;
      const base = makeDisk(path.join(dir, 'base.img'), {
        size, label: c.label, parts: [{ start: c.start, sectors, type: c.label === 'gpt' ? GPT_DATA : c.fat.fat === 32 ? '0c' : '06', image: vol }],
      });
      const d0 = drive(base, off);
      mt.mmd(d0, 'dir');
      mt.mcopy(d0, local(dir, 'keep1.bin', 30_000, 1), 'keep1.bin');
      mt.mcopy(d0, local(dir, 'gone1.bin', 700_000, 2), 'gone1.bin');
      mt.mcopy(d0, local(dir, 'keep2.bin', 90_000, 3), 'dir/keep2.bin');
      const child = step(base, dir, 'child.img');
      const d1 = drive(child, off);
      mt.mcopy(d1, local(dir, 'new1.bin', 600_000, 4), 'new1.bin');
      mt.mcopy(d1, local(dir, 'new2.bin', 1_500_000, 5), 'new2.bin');
      mt.mcopy(d1, local(dir, 'new3.bin', 5_000, 6), 'dir/new3.bin');
      mt.mdel(d1, 'new2.bin', 'gone1.bin');
      const layers = await chainFromImages(dir, [base, child]);
      const leaf = layers[1].path;

      const before = await rawOf(leaf, path.join(dir, 'before.raw'));
      const files0 = filesOf(before, off);
      expect([...files0.keys()].sort()).toEqual(['dir/keep2.bin', 'dir/new3.bin', 'keep1.bin', 'new1.bin']);
      const free0 = tskFree(before, c.start).shift(off);
      const held0 = await heldBytes(leaf);
      // The deleted new2.bin was written in the child: most of the child's sectors lie in free clusters.
      expect(held0.intersectBytes(free0)).toBeGreaterThan(1_000_000);

      const dry = await compact(leaf, { freeSpace: true, dryRun: true, threads: 1 });
      const real = await compact(leaf, { freeSpace: true, threads: 1 });
      expect(real.changed).toBe(true);
      expect(real.reclaimedBytes).toBe(dry.reclaimableBytes);
      expect(real.newSize).toBe(dry.newSize);
      expect(real.freeSpace).toEqual(dry.freeSpace);
      const fsr = real.freeSpace!;
      expect(fsr.partitions).toHaveLength(1);
      expect(fsr.partitions[0]).toMatchObject({ index: 1, fs: `fat${c.fat.fat}`, status: 'planned', reason: null });
      expect(fsr.bytes.freeSpace).toBe(fsr.partitions[0].bytes.freeSpace);

      const after = await rawOf(leaf, path.join(dir, 'after.raw'));
      // Every file reads byte-identical, the volume checks clean.
      const files1 = filesOf(after, off);
      expect([...files1.keys()].sort()).toEqual([...files0.keys()].sort());
      for (const [p, data] of files0) expect(files1.get(p)!.equals(data), p).toBe(true);
      const fsck = fsckFat(extract(after, off, c.fat.bytes, path.join(dir, 'after-part.img')));
      expect(fsck.status, fsck.output).toBe(0);
      // The view changed only in unallocated sectors, and by exactly what was dropped as free space.
      const changed = changedBytes(before, after, size);
      expect(changed.subtract(free0).isEmpty).toBe(true);
      expect(changed.bytes).toBeLessThanOrEqual(fsr.bytes.freeSpace);
      // No sector the leaf keeps lies wholly in free clusters; what it dropped there is what it reports.
      const held1 = await heldBytes(leaf);
      expect(held1.intersectBytes(free0)).toBe(0);
      expect(fsr.bytes.freeSpace).toBe(held0.intersectBytes(free0));
      expect(held0.subtract(held1).bytes).toBe(fsr.bytes.freeSpace + fsr.bytes.sameAsParent + fsr.bytes.zeroOverZero);

      const again = await compact(leaf, { freeSpace: true, threads: 1 });
      expect(again.changed).toBe(false);
    });
  }

  it('a dirty FAT volume is left as it is, with the reason; the other partition is compacted', async () => {
    const dir = tempDir();
    const a = mkfat(path.join(dir, 'a.img'), { fat: 16, bytes: 12 * 1024 * 1024, sectorsPerCluster: 4 });
    const b = mkfat(path.join(dir, 'b.img'), { fat: 16, bytes: 12 * 1024 * 1024, sectorsPerCluster: 4 });
    const startA = 2048;
    const startB = 2048 + 12 * 2048;
    const base = makeDisk(path.join(dir, 'base.img'), {
      size: (startB + 12 * 2048 + 2048) * 512, label: 'dos',
      parts: [{ start: startA, sectors: 12 * 2048, type: '06', image: a }, { start: startB, sectors: 12 * 2048, type: '06', image: b }],
    });
    const child = step(base, dir, 'child.img');
    for (const start of [startA, startB]) {
      const d = drive(child, start * 512);
      mt.mcopy(d, local(dir, `x${start}.bin`, 800_000, start), 'x.bin');
      mt.mdel(d, 'x.bin');
    }
    // Dirty the second volume in the child (as a guest that did not unmount it would leave it).
    const partB = extract(child, startB * 512, 12 * 1024 * 1024, path.join(dir, 'partB.img'));
    setDirty(partB, 16);
    const fd = openSync(child, 'r+');
    const boot = Buffer.alloc(512);
    const pf = openSync(partB, 'r');
    readSync(pf, boot, 0, 512, 0);
    closeSync(pf);
    writeSync(fd, boot, 0, 512, startB * 512);
    closeSync(fd);
    const layers = await chainFromImages(dir, [base, child]);
    const leaf = layers[1].path;
    const held0 = await heldBytes(leaf);
    const r = await compact(leaf, { freeSpace: true, threads: 1 });
    const [pa, pb] = r.freeSpace!.partitions;
    expect(pa).toMatchObject({ index: 1, status: 'planned' });
    expect(pa.bytes.freeSpace).toBeGreaterThan(700_000);
    expect(pb).toMatchObject({ index: 2, status: 'skipped' });
    expect(pb.reason).toMatch(/^dirty: .*dirty flag/);
    expect(pb.bytes.freeSpace).toBe(0);
    // The dirty volume's sectors all stay in the child.
    const held1 = await heldBytes(leaf);
    const inB = RangeSet.of(startB * 512, (startB + 12 * 2048) * 512);
    expect(held1.intersect(inB).equals(held0.intersect(inB))).toBe(true);
  });
});
