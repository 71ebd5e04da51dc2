/**
 * Random file trees on a small ext volume, built by debugfs -w from random
 * operations (mkdir, write of dense and sparse files, rm, rmdir, hard links,
 * symlinks, fallocate), then read by the ext reader and by debugfs:
 * the block -> file map agrees with icheck on every allocated block, every
 * path is one ncheck gives, and the free map is dumpe2fs's.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as path from 'node:path';
import { closeSync, openSync, writeSync } from 'node:fs';
import { HAVE_DEBUGFS, HAVE_MKFS_EXT4 } from '../test/helpers/guest.js';
import { tempDir } from '../test/helpers/tmp.js';
import { debugfs, dumpe2fsFree, e2fsckClean, icheck, mkfs, ncheck } from '../test/guest/extOracle.js';
import { scanImage } from '../test/guest/extVerify.js';
import { RangeSet } from '../src/guest/ranges.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS_EXT ?? 12);
const SEED = Number(process.env.VHDTOOL_PROP_SEED ?? 1311);

type OpKind = 'mkdir' | 'write' | 'sparse' | 'rm' | 'rmdir' | 'ln' | 'symlink' | 'fallocate';
interface Op { kind: OpKind; pick: number; size: number }

const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom<OpKind>('mkdir', 'write', 'write', 'write', 'sparse', 'rm', 'rm', 'rmdir', 'ln', 'symlink', 'fallocate'),
  pick: fc.nat(1000),
  size: fc.integer({ min: 0, max: 120_000 }),
});

const LAYOUTS = [
  ['-b', '1024', '-O', '^resize_inode'],
  ['-t', 'ext2', '-b', '1024', '-O', '^resize_inode'],
  ['-b', '4096', '-O', '^resize_inode,^64bit'],
  ['-t', 'ext3', '-b', '2048', '-O', '^resize_inode'],
];

/** Turns abstract operations into debugfs commands on a model of the tree (names, link counts). */
function commands(ops: Op[], hostDir: string, extents: boolean): string[] {
  const dirs: string[] = [''];
  const names: Array<{ path: string; obj: number }> = [];
  const links = new Map<number, number>();
  const cmds: string[] = [];
  let n = 0;
  const join = (d: string, x: string) => (d ? `${d}/${x}` : x);
  for (const op of ops) {
    const parent = dirs[op.pick % dirs.length];
    const name = join(parent, `n${n++}`);
    switch (op.kind) {
      case 'mkdir': cmds.push(`mkdir ${name}`); dirs.push(name); break;
      case 'write':
      case 'sparse': {
        const host = path.join(hostDir, `h${n}`);
        const fd = openSync(host, 'w');
        const data = Buffer.alloc(op.size % 40_000 + 1, n & 0xff);
        writeSync(fd, data, 0, data.length, op.kind === 'sparse' ? op.size * 3 : 0);
        closeSync(fd);
        cmds.push(`write ${host} ${name}`);
        names.push({ path: name, obj: n });
        links.set(n, 1);
        break;
      }
      case 'rm': {
        if (!names.length) break;
        const [victim] = names.splice(op.pick % names.length, 1);
        cmds.push(`rm ${victim.path}`);
        links.set(victim.obj, links.get(victim.obj)! - 1);
        break;
      }
      case 'rmdir': {
        const empty = dirs.filter((d) => d && !dirs.some((x) => x.startsWith(`${d}/`)) && !names.some((x) => x.path.startsWith(`${d}/`)));
        if (!empty.length) break;
        const d = empty[op.pick % empty.length];
        cmds.push(`rmdir ${d}`);
        dirs.splice(dirs.indexOf(d), 1);
        break;
      }
      case 'ln': {
        if (!names.length) break;
        const t = names[op.pick % names.length];
        const count = links.get(t.obj)! + 1;
        cmds.push(`ln ${t.path} ${name}`, `sif ${t.path} links_count ${count}`);
        links.set(t.obj, count);
        names.push({ path: name, obj: t.obj });
        break;
      }
      case 'symlink': cmds.push(`symlink ${name} ${'t'.repeat(op.size % 200 + 1)}`); break;
      case 'fallocate': {
        // Blocks past i_size without extents would be an e2fsck error (only extents can mark them uninitialised).
        if (!names.length || !extents) break;
        const t = names[op.pick % names.length];
        const start = op.size % 64;
        cmds.push(`fallocate ${t.path} ${start} ${start + (op.pick % 40)}`);
        break;
      }
    }
  }
  return cmds;
}

describe.skipIf(!HAVE_MKFS_EXT4 || !HAVE_DEBUGFS)('ext reader: random trees made by debugfs', () => {
  it('every allocated block belongs to the inode icheck names (or to no inode), every path is one ncheck gives, and the free map is dumpe2fs\'s', async () => {
    await fc.assert(fc.asyncProperty(fc.nat(LAYOUTS.length - 1), fc.array(opArb, { minLength: 1, maxLength: 30 }), async (layout, ops) => {
      const dir = tempDir('vhdtool-ext-prop-');
      const img = mkfs(path.join(dir, 'fs.img'), 8 * 1024 * 1024, LAYOUTS[layout]);
      debugfs(img, commands(ops, dir, !LAYOUTS[layout].includes('ext2') && !LAYOUTS[layout].includes('ext3')), true);
      const fsck = e2fsckClean(img);
      expect(fsck.clean, fsck.output).toBe(true);
      const { vol, scan, files } = await scanImage(img);
      const bs = vol.clusterSize;
      expect(scan.anomalies).toEqual([]);
      expect(scan.free.toArray()).toEqual(RangeSet.from(dumpe2fsFree(img).map(([a, b]) => [a * bs, b * bs] as [number, number])).toArray());

      // Ours: block -> inode, from each file's data and its map blocks (its meta less its inode's bytes).
      const owner = new Map<number, number>();
      for (const f of files) {
        const claim = (s: RangeSet) => { for (const [a, b] of s) for (let blk = a / bs; blk < b / bs; blk++) if (!owner.has(blk)) owner.set(blk, f.ref); };
        claim(f.data);
        claim(f.meta.narrow(bs));
      }
      const allocated: number[] = [];
      for (const [a, b] of RangeSet.of(vol.clusterArea.start, vol.clusterArea.end).subtract(scan.free)) for (let blk = a / bs; blk < b / bs; blk++) allocated.push(blk);
      const theirs = icheck(img, allocated);
      // (narrow(bs) drops the inode's own bytes: never a whole block in these layouts.)
      for (const blk of allocated) expect(owner.get(blk) ?? 0, `block ${blk}`).toBe(theirs.get(blk) ?? 0);

      const named = files.filter((f) => !f.system && f.ref !== 2);
      const nc = ncheck(img, named.map((f) => f.ref));
      for (const f of named) expect(nc.get(f.ref) ?? [], `inode ${f.ref}`).toContain(f.path);
    }), { numRuns: RUNS, seed: SEED });
  });
});
