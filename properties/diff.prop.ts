/**
 * Properties of `diff` over random histories on real file systems: a small
 * ext4, FAT or NTFS volume made by its tool, then a random sequence of file
 * operations made by the file system's own tools (debugfs, mtools, ntfs-3g
 * through FUSE where /dev/fuse works): files
 * written, deleted, renamed, rewritten in place, directories made and
 * removed. The history is split in two: the first part makes the parent's
 * image, the rest the child's.
 *
 * The oracle is Sleuth Kit (fls and icat on both images, every file hashed),
 * compared path by path; renames by inode and generation.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diff } from '../src/ops/diff.js';
import { nodeFileSystem } from '../src/io/fsys.js';
import { writeSynthLayer } from '../src/synth/build.js';
import { patternBytes } from '../src/synth/random.js';
import { HAVE_DEBUGFS, HAVE_MKFS_EXT4, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_TSK, blankImage, chainFromImages, run } from '../test/helpers/guest.js';
import { oracleDiff, oracleRenames, pathLevel, tskTree } from '../test/helpers/diffOracle.js';
import { extTools, fatTools, ntfsTools, type FsTools } from '../test/helpers/templateScene.js';
import { HAVE_FUSE } from '../test/helpers/ntfsImages.js';
import { tempDir } from '../test/helpers/tmp.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS_DIFF ?? 12);
const MiB = 1024 * 1024;

type Op =
  | { kind: 'put'; dir: number; name: number; size: number; seed: number }
  | { kind: 'del'; file: number }
  | { kind: 'rename'; file: number; dir: number; name: number }
  | { kind: 'poke'; file: number; seed: number }
  | { kind: 'mkdir'; dir: number; name: number }
  | { kind: 'rmdir'; dir: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('put' as const), dir: fc.nat(), name: fc.nat(40), size: fc.oneof(fc.integer({ min: 0, max: 600 }), fc.integer({ min: 1, max: 200_000 })), seed: fc.integer({ min: 1, max: 1e6 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('del' as const), file: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('rename' as const), file: fc.nat(), dir: fc.nat(), name: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('poke' as const), file: fc.nat(), seed: fc.integer({ min: 1, max: 1e6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('mkdir' as const), dir: fc.nat(), name: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rmdir' as const), dir: fc.nat() }) },
);

/** The files and directories a history has made so far (paths without a leading slash; '' is the root). */
class Model {
  files = new Map<string, number>();
  dirs = new Set<string>(['']);

  pick<T>(xs: Iterable<T>, i: number): T | undefined {
    const a = [...xs].sort();
    return a.length ? a[i % a.length] : undefined;
  }

  join(dir: string, leaf: string): string {
    return dir ? `${dir}/${leaf}` : leaf;
  }

  taken(p: string): boolean {
    return this.files.has(p) || this.dirs.has(p);
  }
}

/** Applies one operation with the file system's tools, when it makes sense in the model's state. */
function apply(t: FsTools, img: string, m: Model, op: Op): void {
  const name = (n: number, ext: string) => t.name(`f${n}.${ext}`);
  switch (op.kind) {
    case 'put': {
      const p = m.join(m.pick(m.dirs, op.dir)!, name(op.name, 'bin'));
      if (m.taken(p)) return;
      t.put(img, p, patternBytes(op.size, op.seed));
      m.files.set(p, op.size);
      return;
    }
    case 'del': {
      const p = m.pick(m.files.keys(), op.file);
      if (p === undefined) return;
      t.del(img, p);
      m.files.delete(p);
      return;
    }
    case 'rename': {
      const p = m.pick(m.files.keys(), op.file);
      const q = m.join(m.pick(m.dirs, op.dir)!, name(op.name, 'ren'));
      if (p === undefined || m.taken(q)) return;
      t.rename(img, p, q);
      m.files.set(q, m.files.get(p)!);
      m.files.delete(p);
      return;
    }
    case 'poke': {
      // In place needs clusters of its own: a file above what ext keeps inline and NTFS resident.
      const p = m.pick([...m.files].filter(([, size]) => size >= 4096).map(([q]) => q), op.file);
      if (p === undefined) return;
      t.pokeFile(img, p, patternBytes(16, op.seed));
      return;
    }
    case 'mkdir': {
      const p = m.join(m.pick(m.dirs, op.dir)!, t.name(`d${op.name}`));
      if (m.taken(p)) return;
      t.mkdir(img, p);
      m.dirs.add(p);
      return;
    }
    case 'rmdir': {
      const empty = [...m.dirs].filter((d) => d !== '' && ![...m.files.keys(), ...m.dirs].some((x) => x.startsWith(`${d}/`)));
      const d = m.pick(empty, op.dir);
      if (d === undefined) return;
      t.rmdir(img, d);
      m.dirs.delete(d);
    }
  }
}

/** Volume size: 8 MiB (FAT16 needs 16). */
const sizeOf = (t: FsTools) => (t.kind === 'ext4' ? 8 : 16) * MiB;

function fresh(t: FsTools, img: string): void {
  blankImage(img, sizeOf(t));
  if (t.kind === 'ext4') run('mkfs.ext4', ['-q', '-F', '-b', '1024', '-U', '0c0c0c0c-0000-4000-8000-0000000000e1', '-E', 'root_owner=0:0', img]);
  else if (t.kind === 'fat') run('mkfs.fat', ['-F', '16', '-i', '0c0c00e1', img]);
  else run('mkntfs', ['-F', '-Q', '-q', '-c', '4096', img]);
}

const KINDS = [
  { tools: extTools, have: HAVE_MKFS_EXT4 && HAVE_DEBUGFS && HAVE_TSK, runs: RUNS },
  { tools: fatTools, have: HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_TSK, runs: RUNS },
  // Every NTFS operation is an ntfs-3g mount (FUSE): fewer runs.
  { tools: ntfsTools, have: HAVE_FUSE && HAVE_TSK, runs: Math.max(2, Math.round(RUNS / 3)) },
];

for (const { tools, have, runs } of KINDS) {
  describe.skipIf(!have)(`diff properties on ${tools.kind}`, () => {
    it('diff agrees with Sleuth Kit\'s file-by-file hashes of both trees over random histories (parent: the first part, child: the rest)', async () => {
      await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 14 }), fc.array(opArb, { minLength: 1, maxLength: 10 }), async (before, after) => {
        const dir = tempDir();
        const a = path.join(dir, 'a.img');
        const b = path.join(dir, 'b.img');
        fresh(tools, a);
        const m = new Model();
        for (const op of before) apply(tools, a, m, op);
        copyFileSync(a, b);
        for (const op of after) apply(tools, b, m, op);
        const vhd = path.join(dir, 'vhd');
        mkdirSync(vhd);
        await chainFromImages(vhd, [a, b], ['a.vhd', 'b.vhd']);
        const r = await diff(path.join(vhd, 'b.vhd'), undefined, { threads: 0 });
        const ta = tskTree(a);
        const tb = tskTree(b);
        expect(r.partitions).toHaveLength(1);
        expect(pathLevel(r.partitions[0], ta, tb)).toEqual(oracleDiff(ta, tb));
        if (tools.kind !== 'fat') expect(r.partitions[0].renamed.filter((x) => !x.directory).map((x) => ({ from: x.from, to: x.to }))).toEqual(oracleRenames(ta, tb));
      }), { numRuns: runs });
    });

    it('diff of a disk against itself is empty, and so is a child that rewrote its parent\'s bytes unchanged', async () => {
      await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 14 }), fc.integer({ min: 0, max: 8 * MiB / 512 - 64 }), async (ops, at) => {
        const dir = tempDir();
        const a = path.join(dir, 'a.img');
        fresh(tools, a);
        const m = new Model();
        for (const op of ops) apply(tools, a, m, op);
        const vhd = path.join(dir, 'vhd');
        mkdirSync(vhd);
        const [base] = await chainFromImages(vhd, [a], ['a.vhd']);
        const self = await diff(base.path, base.path, { threads: 0 });
        expect(self.differingBytes).toBe(0);
        expect(self.summary).toEqual({ added: 0, deleted: 0, modified: 0, renamed: 0, createdDirectories: 0, deletedDirectories: 0 });
        // A child holding 32 KiB of its parent's own bytes: it holds sectors, none of them differs.
        const bytes = readFileSync(a).subarray(at * 512, at * 512 + 32768);
        const child = path.join(vhd, 'same.vhd');
        await writeSynthLayer(nodeFileSystem, child, { type: 'differencing', virtualSize: sizeOf(tools), writes: [{ sector: at, data: new Uint8Array(bytes) }] }, base);
        const r = await diff(child, undefined, { threads: 0 });
        expect(r.differingBytes).toBe(0);
        expect(r.bytesCompared).toBe(32768);
        expect(r.summary.added + r.summary.deleted + r.summary.modified + r.summary.renamed).toBe(0);
      }), { numRuns: Math.max(2, Math.round(runs / 2)) });
    });
  });
}
