/**
 * compact --free-space on ext4 volumes that mkfs.ext4 made (-d for the
 * base's files) and debugfs changed (write, then rm) in the child. Oracles
 * on the composed view, before and after: debugfs dumps every file
 * (byte-identical), e2fsck -fn finds nothing, Sleuth Kit's blkls says which
 * blocks are unallocated: the view changes only there, and the child keeps
 * nothing there. A volume whose journal needs recovery is left as it is
 * while the other partition is done.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compact } from '../../src/ops/compact.js';
import { RangeSet } from '../../src/guest/ranges.js';
import { blankImage, chainFromImages, extract, HAVE_DEBUGFS, HAVE_MKFS_EXT4, HAVE_SFDISK, HAVE_TSK, run } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { tskFree } from '../guest/fatTools.js';
import { heldBytes, makeDisk, noise, rawOf } from '../helpers/freeSpace.js';

const HAVE = HAVE_MKFS_EXT4 && HAVE_DEBUGFS && HAVE_SFDISK && HAVE_TSK;
const MiB = 1024 * 1024;

function mkext4(file: string, bytes: number, block: number, from: string): string {
  blankImage(file, bytes);
  run('mkfs.ext4', ['-q', '-F', '-b', String(block), '-E', 'lazy_itable_init=0,nodiscard', '-d', from, file]);
  return file;
}

const debugfs = (img: string, cmd: string, write = false) => run('debugfs', [...(write ? ['-w'] : []), '-R', cmd, img]);

/** Every regular file's content hash by path, dumped with debugfs (rdump of the root). */
function hashes(img: string, dir: string): Map<string, string> {
  const out = path.join(dir, `dump-${Math.random().toString(36).slice(2)}`);
  mkdirSync(out);
  run('debugfs', ['-R', `rdump / ${out}`, img]);
  const m = new Map<string, string>();
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else m.set(r, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(out, '');
  return m;
}

function changedBytes(a: Buffer, b: Buffer): RangeSet {
  const out: Array<[number, number]> = [];
  for (let o = 0; o < a.length; o += 512) if (a.compare(b, o, o + 512, o, o + 512) !== 0) out.push([o, o + 512]);
  return RangeSet.from(out);
}

/** A base volume holding files, and the child's: files written, then some removed (debugfs -w). */
function volumes(dir: string, name: string, bytes: number, block: number, seed: number): [string, string] {
  const src = path.join(dir, `${name}-files`);
  mkdirSync(path.join(src, 'docs'), { recursive: true });
  writeFileSync(path.join(src, 'keep.bin'), noise(120_000, seed + 1));
  writeFileSync(path.join(src, 'docs/old.bin'), noise(900_000, seed + 2));
  const v0 = mkext4(path.join(dir, `${name}-0.img`), bytes, block, src);
  const v1 = path.join(dir, `${name}-1.img`);
  writeFileSync(v1, readFileSync(v0));
  for (const [f, n, s] of [['new.bin', 700_000, 3], ['big.tmp', 3_000_000, 4], ['small.txt', 300, 5]] as const) {
    const local = path.join(dir, `${name}-${f}`);
    writeFileSync(local, noise(n, seed + s));
    debugfs(v1, `write ${local} ${f}`, true);
  }
  debugfs(v1, 'rm big.tmp', true);
  debugfs(v1, 'rm docs/old.bin', true);
  return [v0, v1];
}

describe.skipIf(!HAVE)('compact --free-space on ext4 (mkfs.ext4, debugfs; oracles debugfs, e2fsck, Sleuth Kit)', () => {
  for (const c of [
    { name: 'MBR, start at sector 63, 1 KiB blocks', label: 'dos' as const, start: 63, block: 1024 },
    { name: 'GPT, start at 1 MiB, 4 KiB blocks', label: 'gpt' as const, start: 2048, block: 4096 },
  ]) {
    it(`${c.name}: files unchanged, e2fsck clean, deleted files' blocks gone from the child`, async () => {
      const dir = tempDir();
      const bytes = 24 * MiB;
      const [v0, v1] = volumes(dir, 'v', bytes, c.block, 10);
      const size = c.start * 512 + bytes + 2 * MiB;
      const type = c.label === 'gpt' ? '0FC63DAF-8483-4772-8E79-3D69D8477DE4' : '83';
      const base = makeDisk(path.join(dir, 'base.img'), { size, label: c.label, parts: [{ start: c.start, sectors: bytes / 512, type, image: v0 }] });
      const child = makeDisk(path.join(dir, 'child.img'), { size, label: c.label, parts: [{ start: c.start, sectors: bytes / 512, type, image: v1 }] });
      const [, leafL] = await chainFromImages(dir, [base, child]);
      const leaf = leafL.path;
      const off = c.start * 512;
      const before = await rawOf(leaf, path.join(dir, 'before.raw'));
      const p0 = extract(before, off, bytes, path.join(dir, 'p0.img'));
      const files0 = hashes(p0, dir);
      expect([...files0.keys()].filter((p) => !p.startsWith('lost+found')).sort()).toEqual(['keep.bin', 'new.bin', 'small.txt']);
      const free0 = tskFree(p0, 0, c.block).shift(off);
      const held0 = await heldBytes(leaf);
      expect(held0.intersectBytes(free0)).toBeGreaterThan(2_500_000);

      const dry = await compact(leaf, { freeSpace: true, dryRun: true, threads: 1 });
      const r = await compact(leaf, { freeSpace: true, threads: 1 });
      expect(r.freeSpace).toEqual(dry.freeSpace);
      expect(r.reclaimedBytes).toBe(dry.reclaimableBytes);
      expect(r.freeSpace!.partitions[0]).toMatchObject({ fs: 'ext4', status: 'planned', reason: null });

      const after = await rawOf(leaf, path.join(dir, 'after.raw'));
      const p1 = extract(after, off, bytes, path.join(dir, 'p1.img'));
      expect(hashes(p1, dir)).toEqual(files0);
      const fsck = spawnSync('e2fsck', ['-fn', p1], { encoding: 'utf8' });
      expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
      const changed = changedBytes(readFileSync(before), readFileSync(after));
      expect(changed.subtract(free0).isEmpty).toBe(true);
      expect(changed.bytes).toBeGreaterThan(0);
      expect((await heldBytes(leaf)).intersectBytes(free0)).toBe(0);
      expect(r.freeSpace!.bytes.freeSpace).toBe(held0.intersectBytes(free0));
    });
  }

  it('a volume whose journal needs recovery is left as it is, with the reason; the other partition is compacted', async () => {
    const dir = tempDir();
    const bytes = 16 * MiB;
    const [a0, a1] = volumes(dir, 'a', bytes, 4096, 20);
    const [b0, b1] = volumes(dir, 'b', bytes, 4096, 40);
    debugfs(b1, 'feature needs_recovery', true);
    const startB = 2048 + bytes / 512;
    const size = (startB * 512) + bytes + 2 * MiB;
    const parts = (a: string, b: string) => [{ start: 2048, sectors: bytes / 512, type: '83', image: a }, { start: startB, sectors: bytes / 512, type: '83', image: b }];
    const base = makeDisk(path.join(dir, 'base.img'), { size, label: 'dos', parts: parts(a0, b0) });
    const child = makeDisk(path.join(dir, 'child.img'), { size, label: 'dos', parts: parts(a1, b1) });
    const [, leafL] = await chainFromImages(dir, [base, child]);
    const held0 = await heldBytes(leafL.path);
    const r = await compact(leafL.path, { freeSpace: true, threads: 1 });
    const [pa, pb] = r.freeSpace!.partitions;
    expect(pa).toMatchObject({ index: 1, status: 'planned' });
    expect(pa.bytes.freeSpace).toBeGreaterThan(2_500_000);
    expect(pb).toMatchObject({ index: 2, status: 'skipped', reason: expect.stringMatching(/^needs-recovery: /) });
    const inB = RangeSet.of(startB * 512, startB * 512 + bytes);
    expect((await heldBytes(leafL.path)).intersect(inB).equals(held0.intersect(inB))).toBe(true);
  });
});
