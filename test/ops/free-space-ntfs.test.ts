/**
 * compact --free-space on NTFS volumes that mkntfs made and the ntfs-3g
 * driver wrote through FUSE (skipped where FUSE does not work): a base with
 * files, a child in which files were written and then deleted. Oracles on
 * the composed view, before and after: Sleuth Kit lists every file (fls) and
 * reads it (icat), and says which clusters are unallocated (blkls); ntfsinfo
 * reports the volume's metadata. The view may change only in unallocated
 * clusters, every file reads the same, and the child keeps nothing there.
 * A hibernated volume (hiberfil.sys starting "hibr", which ntfs-3g refuses to
 * mount) is left as it is while the other partition is done; so is the
 * pagefile with --drop pagefile where its header is a pending crash dump.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compact } from '../../src/ops/compact.js';
import { RangeSet, RangeSetBuilder } from '../../src/guest/ranges.js';
import { chainFromImages, extract, HAVE_SFDISK, run } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { HAVE_FUSE, HAVE_TSK, mkntfs, tskFree, tskPaths, withMounted } from '../helpers/ntfsImages.js';
import { heldBytes, makeDisk, noise, rawOf } from '../helpers/freeSpace.js';
import { spawnSync } from 'node:child_process';

const HAVE = HAVE_FUSE && HAVE_TSK && HAVE_SFDISK;
const GPT_DATA = 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7';
const MiB = 1024 * 1024;

/** Every file's content hash by path, read with Sleuth Kit's icat from a partition image. */
function hashes(img: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [inode, names] of tskPaths(img)) {
    const r = spawnSync('icat', [img, String(inode)], { maxBuffer: 256 * MiB });
    if (r.status !== 0) continue; // directories and system files icat cannot read as one stream
    const h = createHash('sha256').update(r.stdout).digest('hex');
    for (const n of names) out.set(n, h);
  }
  return out;
}

/** Disk bytes of a partition's unallocated clusters (blkls -l on the partition image). */
function freeOf(partImg: string, start: number, clusterSize: number): RangeSet {
  const b = new RangeSetBuilder();
  for (const c of tskFree(partImg)) b.add(start + c * clusterSize, start + (c + 1) * clusterSize);
  return b.build();
}

function changedBytes(a: Buffer, b: Buffer): RangeSet {
  const out: Array<[number, number]> = [];
  for (let o = 0; o < a.length; o += 512) if (a.compare(b, o, o + 512, o, o + 512) !== 0) out.push([o, o + 512]);
  return RangeSet.from(out);
}

interface Part {
  start: number;
  bytes: number;
  cluster: number;
  /** Writes the base's files (mounted). */
  base: (mnt: string) => void;
  /** Changes the child (mounted). */
  child: (mnt: string) => void;
}

async function chainOf(dir: string, label: 'dos' | 'gpt', parts: Part[]): Promise<{ leaf: string; size: number }> {
  const v0: string[] = [];
  const v1: string[] = [];
  for (const [i, p] of parts.entries()) {
    const a = mkntfs(path.join(dir, `v${i}-0.img`), p.bytes, p.cluster);
    await withMounted(a, p.base);
    const b = path.join(dir, `v${i}-1.img`);
    copyFileSync(a, b);
    await withMounted(b, p.child);
    v0.push(a);
    v1.push(b);
  }
  const last = parts[parts.length - 1];
  const size = last.start * 512 + last.bytes + 2 * MiB;
  const table = (vols: string[]) => parts.map((p, i) => ({ start: p.start, sectors: p.bytes / 512, type: label === 'gpt' ? GPT_DATA : '07', image: vols[i] }));
  const base = makeDisk(path.join(dir, 'base.img'), { size, label, parts: table(v0) });
  const child = makeDisk(path.join(dir, 'child.img'), { size, label, parts: table(v1) });
  const [, leaf] = await chainFromImages(dir, [base, child]);
  return { leaf: leaf.path, size };
}

const put = (mnt: string, rel: string, bytes: number, seed: number) => {
  mkdirSync(path.dirname(path.join(mnt, rel)), { recursive: true });
  writeFileSync(path.join(mnt, rel), noise(bytes, seed));
};

function history(seed: number): Pick<Part, 'base' | 'child'> {
  return {
    base: (m) => {
      put(m, 'keep.bin', 120_000, seed + 1);
      put(m, 'docs/old.bin', 900_000, seed + 2);
    },
    child: (m) => {
      put(m, 'docs/new.bin', 700_000, seed + 3);
      put(m, 'big.tmp', 3_000_000, seed + 4);
      put(m, 'small.txt', 300, seed + 5);
      rmSync(path.join(m, 'big.tmp'));
      rmSync(path.join(m, 'docs/old.bin'));
    },
  };
}

describe.skipIf(!HAVE)('compact --free-space on NTFS (mkntfs, ntfs-3g; oracles Sleuth Kit, ntfsinfo)', () => {
  for (const c of [
    { name: 'MBR, start at sector 63, 512-byte clusters', label: 'dos' as const, start: 63, cluster: 512 },
    { name: 'GPT, start at 1 MiB, 64 KiB clusters', label: 'gpt' as const, start: 2048, cluster: 65536 },
  ]) {
    it(`${c.name}: files unchanged, metadata unchanged, deleted files' sectors gone from the child`, async () => {
      const dir = tempDir();
      const bytes = 24 * MiB;
      const { leaf, size } = await chainOf(dir, c.label, [{ start: c.start, bytes, cluster: c.cluster, ...history(10) }]);
      const off = c.start * 512;
      const before = await rawOf(leaf, path.join(dir, 'before.raw'));
      const part0 = extract(before, off, bytes, path.join(dir, 'p0.img'));
      const files0 = hashes(part0);
      expect([...files0.keys()].filter((p) => !p.startsWith('$')).sort()).toEqual(['docs', 'docs/new.bin', 'keep.bin', 'small.txt']);
      const info0 = run('ntfsinfo', ['-m', part0]).replace(part0, 'IMG');
      const free0 = freeOf(part0, off, c.cluster);
      const held0 = await heldBytes(leaf);
      expect(held0.intersectBytes(free0)).toBeGreaterThan(2_500_000);

      const dry = await compact(leaf, { freeSpace: true, dryRun: true, threads: 1 });
      const r = await compact(leaf, { freeSpace: true, threads: 1 });
      expect(r.freeSpace).toEqual(dry.freeSpace);
      expect(r.reclaimedBytes).toBe(dry.reclaimableBytes);
      expect(r.freeSpace!.partitions[0]).toMatchObject({ fs: 'ntfs', status: 'planned', reason: null });

      const after = await rawOf(leaf, path.join(dir, 'after.raw'));
      const part1 = extract(after, off, bytes, path.join(dir, 'p1.img'));
      expect(hashes(part1)).toEqual(files0);
      expect(run('ntfsinfo', ['-m', part1]).replace(part1, 'IMG')).toBe(info0);
      const changed = changedBytes(readFileSync(before), readFileSync(after));
      expect(changed.subtract(free0).isEmpty).toBe(true);
      expect(changed.bytes).toBeGreaterThan(0);
      const held1 = await heldBytes(leaf);
      expect(held1.intersectBytes(free0)).toBe(0);
      expect(r.freeSpace!.bytes.freeSpace).toBe(held0.intersectBytes(free0));
      expect(size).toBe(readFileSync(after).length);
    });
  }

  it('a hibernated volume is left as it is, with the reason; the other partition is compacted', async () => {
    const dir = tempDir();
    const bytes = 16 * MiB;
    const hibernated: Part = {
      start: 2048 + 16 * 2048, bytes, cluster: 4096, ...history(40),
    };
    const childOf = hibernated.child;
    // Windows hibernated (or shut down with Fast Startup): hiberfil.sys begins "hibr" (written through
    // FUSE as a plain file; ntfs-3g would now refuse to mount the volume read-write).
    hibernated.child = (m) => {
      childOf(m);
      writeFileSync(path.join(m, 'hiberfil.sys'), Buffer.concat([Buffer.from('hibr'), noise(200_000, 99)]));
    };
    const { leaf } = await chainOf(dir, 'gpt', [{ start: 2048, bytes, cluster: 4096, ...history(20) }, hibernated]);
    const held0 = await heldBytes(leaf);
    const r = await compact(leaf, { freeSpace: true, drop: ['hiberfil'], threads: 1 });
    const [a, b] = r.freeSpace!.partitions;
    expect(a).toMatchObject({ index: 1, status: 'planned' });
    expect(a.bytes.freeSpace).toBeGreaterThan(2_500_000);
    expect(b).toMatchObject({ index: 2, status: 'skipped', reason: expect.stringMatching(/^hibernated: hiberfil\.sys holds a hibernation image/) });
    expect(b.refused).toEqual([{ drop: 'hiberfil', reason: b.reason }]);
    const inB = RangeSet.of(hibernated.start * 512, hibernated.start * 512 + bytes);
    expect((await heldBytes(leaf)).intersect(inB).equals(held0.intersect(inB))).toBe(true);
  });

  it('--drop pagefile: its clusters are dropped but its first 4 KiB, located through the reader; a pending crash dump is refused', async () => {
    for (const head of ['\0\0\0\0\0\0\0\0', 'PAGEDUMP']) {
      const dir = tempDir();
      const bytes = 16 * MiB;
      const h = history(60);
      const part: Part = {
        start: 2048, bytes, cluster: 4096,
        base: (m) => {
          h.base(m);
          writeFileSync(path.join(m, 'pagefile.sys'), noise(2_000_000, 61));
        },
        child: (m) => {
          h.child(m);
          const data = noise(2_000_000, 62);
          data.write(head, 0, 'latin1');
          writeFileSync(path.join(m, 'pagefile.sys'), data);
        },
      };
      const { leaf } = await chainOf(dir, 'dos', [part]);
      const off = part.start * 512;
      const before = await rawOf(leaf, path.join(dir, 'before.raw'));
      const p0 = extract(before, off, bytes, path.join(dir, 'p0.img'));
      const inode = [...tskPaths(p0)].find(([, names]) => names.has('pagefile.sys'))![0];
      const content0 = spawnSync('icat', [p0, String(inode)], { maxBuffer: 64 * MiB }).stdout as Buffer;
      const held0 = await heldBytes(leaf);
      const r = await compact(leaf, { freeSpace: true, drop: ['pagefile'], threads: 1 });
      const p = r.freeSpace!.partitions[0];
      const after = await rawOf(leaf, path.join(dir, 'after.raw'));
      const p1 = extract(after, off, bytes, path.join(dir, 'p1.img'));
      const content1 = spawnSync('icat', [p1, String(inode)], { maxBuffer: 64 * MiB }).stdout as Buffer;
      if (head === 'PAGEDUMP') {
        expect(p.refused).toEqual([{ drop: 'pagefile', reason: expect.stringMatching(/crash dump Windows has not saved yet \(PAGEDUMP\)/) }]);
        expect(p.bytes.pagefile).toBe(0);
        expect(content1.equals(content0)).toBe(true);
        continue;
      }
      expect(p.refused).toEqual([]);
      // The child rewrote the whole file (the sectors its size reaches; the slack after it stays zero, unheld):
      // all of it but the header is dropped, and it now reads the parent's bytes.
      expect(p.bytes.pagefile).toBe(Math.ceil(2_000_000 / 512) * 512 - 4096);
      expect(content1.length).toBe(content0.length);
      expect(content1.subarray(0, 4096).equals(content0.subarray(0, 4096))).toBe(true);
      expect(content1.subarray(4096).equals(noise(2_000_000, 61).subarray(4096))).toBe(true);
      expect(held0.bytes - (await heldBytes(leaf)).bytes).toBeGreaterThanOrEqual(p.bytes.pagefile);
    }
  });
});
