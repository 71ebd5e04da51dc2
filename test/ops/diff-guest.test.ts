/**
 * `diff` on file systems made by the real tools (mkfs.ext4 and debugfs,
 * mkfs.fat and mtools), turned into VHD chains: a template, an updated
 * template and a user's disk (test/helpers/templateScene.ts), with files
 * added, deleted, rewritten in place, renamed, and directories created and
 * removed. The oracle is Sleuth Kit: both trees listed (fls) and every file
 * hashed (icat), compared path by path; renames by inode number.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { diff, type DiffPartitionResult, type DiffResult } from '../../src/ops/diff.js';
import { rebase } from '../../src/ops/rebase.js';
import { VhdToolError } from '../../src/errors.js';
import { HAVE_DEBUGFS, HAVE_MKFS_EXT4, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_TSK, blankImage, chainFromImages, run } from '../helpers/guest.js';
import { HAVE_FUSE } from '../helpers/ntfsImages.js';
import { fatFirstByte, oracleDiff, oracleRenames, pathLevel, poke, tskTree, type TreeEntry } from '../helpers/diffOracle.js';
import { extTools, fatTools, makeScene, makeTemplate, ntfsShell, ntfsTools, type Scene } from '../helpers/templateScene.js';
import { runCli } from '../helpers/cliRun.js';
import { tempDir } from '../helpers/tmp.js';

const KINDS = [
  { tools: extTools, have: HAVE_MKFS_EXT4 && HAVE_DEBUGFS && HAVE_TSK },
  { tools: fatTools, have: HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_TSK },
  // ntfs-3g through FUSE makes the changes (skipped where /dev/fuse is missing).
  { tools: ntfsTools, have: HAVE_FUSE && HAVE_TSK },
];

const MiB = 1024 * 1024;
/** ext's lost+found is in every tree; nothing else is skipped. */
const noSkip = () => false;

function only(r: DiffResult): DiffPartitionResult {
  expect(r.partitions).toHaveLength(1);
  return r.partitions[0];
}

for (const { tools, have } of KINDS) {
  describe.skipIf(!have)(`diff on ${tools.kind} images made by the real tools, against Sleuth Kit`, () => {
    let s: Scene;
    let trees: { template: Map<string, TreeEntry>; updated: Map<string, TreeEntry>; user: Map<string, TreeEntry> };
    let dir: string;
    beforeAll(async () => {
      s = makeScene(tools);
      trees = { template: tskTree(s.template), updated: tskTree(s.updated), user: tskTree(s.user) };
      dir = tempDir();
      // One base, two children: the update as a layer over the template (the Hyper-V way), and the user's disk.
      await chainFromImages(dir, [s.template, s.updated], ['template.vhd', 'updated.vhd']);
      await chainFromImages(dir, [s.template, s.user], ['template-copy.vhd', 'user.vhd']);
      // The user's disk again, on the same base file as the update (rebase keeps its view).
      await rebase(path.join(dir, 'user.vhd'), path.join(dir, 'template.vhd'), { output: path.join(dir, 'user-on-template.vhd'), threads: 0 });
      // The update as a disk of its own, sharing no layer with anything.
      mkdirSync(path.join(dir, 'alone'));
      await chainFromImages(path.join(dir, 'alone'), [s.updated], ['updated-alone.vhd']);
    });

    const check = (r: DiffResult, a: Map<string, TreeEntry>, b: Map<string, TreeEntry>, ancestor?: Map<string, TreeEntry>) => {
      const p = only(r);
      expect(p.fileSystem).toBe(tools.kind === 'fat' ? 'fat16' : tools.kind);
      expect(p.compared).toBe(true);
      const want = oracleDiff(a, b, noSkip);
      // The scene is what it claims: each kind of change is there to be found.
      expect(want.added.length + want.deleted.length + want.modified.length).toBeGreaterThan(3);
      expect(pathLevel(p, a, b)).toEqual(want);
      if (tools.kind !== 'fat') expect(p.renamed.map((x) => ({ from: x.from, to: x.to }))).toEqual(oracleRenames(a, b, ancestor));
      return p;
    };

    it('diff CHILD: which files the user changed, against its own parent', async () => {
      const r = await diff(path.join(dir, 'user.vhd'), undefined, { threads: 0 });
      expect(r.mode).toBe('parent');
      expect(r.sharedLayers).toBe(1);
      // Only where the leaf holds sectors: no more than the user's image differs from the template.
      expect(r.bytesCompared).toBeLessThanOrEqual(differingBytes(s.template, s.user));
      const p = check(r, trees.template, trees.user);
      if (tools.kind !== 'fat') expect(p.renamed).toEqual([{ from: 'etc/config.txt', to: 'etc/settings.txt', directory: false }]);
      // An in-place rewrite (same clusters, same size) is found although no metadata changed.
      expect(p.modified.map((f) => f.path)).toContain(tools.name('apps/lib.bin'));
    });

    it('diff A B between two children of one base, and against a disk that shares no layer', async () => {
      const r = await diff(path.join(dir, 'updated.vhd'), path.join(dir, 'user.vhd'), { threads: 2 });
      expect(r.sharedLayers).toBe(0);
      check(r, trees.updated, trees.user);
      // The two children share their base: files both created after it (NTFS gives them the same record numbers) are not matched.
      const siblings = await diff(path.join(dir, 'updated.vhd'), path.join(dir, 'user-on-template.vhd'), { threads: 1 });
      expect(siblings.sharedLayers).toBe(1);
      check(siblings, trees.updated, trees.user, trees.template);
      const alone = await diff(path.join(dir, 'template.vhd'), path.join(dir, 'alone', 'updated-alone.vhd'), { threads: 2 });
      expect(alone.sharedLayers).toBe(0);
      check(alone, trees.template, trees.updated);
    });

    it('reads only the files on differing sectors: the unchanged 2 MiB file is equal without reading it', async () => {
      const r = await diff(path.join(dir, 'updated.vhd'), undefined, { threads: 1 });
      const p = check(r, trees.template, trees.updated);
      expect(p.modified.map((f) => f.path).sort()).toEqual([tools.name('apps/tool.bin'), tools.name('docs/manual.txt')].sort());
      // The rewritten files are read (on both sides); big/blob.bin is not: reading it would cost 4 MiB.
      expect(p.filesRead).toBeGreaterThanOrEqual(2);
      expect(p.bytesRead).toBeGreaterThanOrEqual(2 * (300 * 1024 + 900 * 7));
      expect(p.bytesRead).toBeLessThan(4 * MiB);
    });

    it('a disk against itself, and two names of one chain, differ in nothing', async () => {
      for (const [a, b] of [['user.vhd', 'user.vhd'], ['template.vhd', 'template-copy.vhd']]) {
        const r = await diff(path.join(dir, a), path.join(dir, b), { threads: 0 });
        expect(r.differingBytes).toBe(0);
        expect(r.summary).toEqual({ added: 0, deleted: 0, modified: 0, renamed: 0, createdDirectories: 0, deletedDirectories: 0 });
        expect(only(r).note).toBe('no sector of it differs');
      }
    });

    it('stops when interrupted during either scan, and says it was interrupted (whatever the reader throws)', async () => {
      for (const which of [0, 1]) {
        const ac = new AbortController();
        let scans = 0;
        const progress = { start: (label: string) => { if (label.startsWith('reading partition') && scans++ === which) ac.abort(); }, advance() {}, done() {} };
        const e = await diff(path.join(dir, 'user.vhd'), undefined, { threads: 0, progress, signal: ac.signal }).then(() => null, (x: unknown) => x);
        expect((e as VhdToolError).code, String(e)).toBe('INTERRUPTED');
      }
    });

    it('the JSON shape: partitions with index, fileSystem, added, deleted, modified, renamed; full paths, no leading slash', async () => {
      const r = await diff(path.join(dir, 'user.vhd'), undefined, { threads: 0 });
      const p = only(r);
      expect(Object.keys(p)).toEqual(expect.arrayContaining(['index', 'fileSystem', 'added', 'deleted', 'modified', 'renamed', 'createdDirectories', 'deletedDirectories']));
      expect(p.index).toBe(1);
      expect(p.added.find((f) => f.path === tools.name('home/doc.bin'))).toEqual({ path: tools.name('home/doc.bin'), size: 150 * 1024 });
      expect(p.createdDirectories).toEqual([{ path: tools.name('home') }]);
      for (const f of [...p.added, ...p.deleted, ...p.modified]) expect(f.path.startsWith('/')).toBe(false);
    });
  });
}

function differingBytes(a: string, b: string): number {
  const x = readFileSync(a);
  const y = readFileSync(b);
  let n = 0;
  for (let o = 0; o < x.length; o += 512) if (x.compare(y, o, o + 512, o, o + 512) !== 0) n += 512;
  return n;
}

describe.skipIf(!(HAVE_FUSE && HAVE_TSK))('diff on NTFS named streams (ntfs-3g through FUSE)', () => {
  it('a resident stream rewritten in place is modified, a new stream added; streams of untouched files are not read', async () => {
    const d = tempDir();
    const template = path.join(d, 'template.img');
    blankImage(template, 16 * MiB);
    run('mkntfs', ['-F', '-Q', '-q', '-c', '4096', template]);
    ntfsTools.mkdir(template, 'docs');
    const script = Array.from({ length: 12 }, (_, i) => `head -c 9000 /dev/zero | tr '\\0' '${String.fromCharCode(97 + i)}' > "$M/docs/f${i}.txt"; printf 'ZoneId=3\\n' > "$M/docs/f${i}.txt:Zone.Identifier"`).join('; ');
    ntfsShell(template, script);
    const user = path.join(d, 'user.img');
    copyFileSync(template, user);
    ntfsShell(user, `printf 'ZoneId=4\\n' > "$M/docs/f5.txt:Zone.Identifier"; printf 'more' > "$M/docs/f7.txt:extra"`);
    await chainFromImages(d, [template, user], ['template.vhd', 'user.vhd']);
    const r = await diff(path.join(d, 'user.vhd'), undefined, { threads: 0 });
    const p = only(r);
    const a = tskTree(template);
    const b = tskTree(user);
    expect(pathLevel(p, a, b)).toEqual(oracleDiff(a, b));
    expect(p.modified.map((f) => f.path)).toEqual(['docs/f5.txt:Zone.Identifier']);
    expect(p.added.map((f) => f.path)).toEqual(['docs/f7.txt:extra']);
    // A stream lives in its file's MFT record: only the two files whose record changed are read, with their
    // streams (4), not the other ten files' streams.
    expect(p.filesRead).toBeLessThanOrEqual(4);
  });
});

describe.skipIf(!(HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_TSK))('diff on a FAT chain changed in the table alone', () => {
  it('a file whose cluster chain is relinked (its directory entry untouched) is found by its cluster layout', async () => {
    const d = tempDir();
    const template = path.join(d, 'template.img');
    blankImage(template, 16 * MiB);
    run('mkfs.fat', ['-F', '16', '-i', '0c0c00f1', template]);
    fatTools.put(template, 'f.bin', new Uint8Array(4096).fill(0x41));
    fatTools.put(template, 'g.bin', new Uint8Array(2048).fill(0x47));
    const geo = fatGeometry(template);
    const clusterOf = (file: string) => (fatFirstByte(template, file) / 512 - geo.clusterArea) / geo.spc + 2;
    const [c1, c3] = [clusterOf('F.BIN'), clusterOf('G.BIN')];
    fatTools.del(template, 'g.bin');
    // The user's disk: F's chain c1 -> c1+1 becomes c1 -> c3 (G's old cluster, still holding G's bytes), in both FATs.
    const user = path.join(d, 'user.img');
    copyFileSync(template, user);
    for (const fat of geo.fats) {
      const entry = (c: number, v: number) => poke(user, fat * 512 + c * 2, Buffer.from([v & 0xff, v >> 8]));
      entry(c1, c3);
      entry(c3, 0xffff);
      entry(c1 + 1, 0);
    }
    await chainFromImages(d, [template, user], ['template.vhd', 'user.vhd']);
    const r = await diff(path.join(d, 'user.vhd'), undefined, { threads: 0 });
    const a = tskTree(template);
    const b = tskTree(user);
    expect(oracleDiff(a, b).modified).toEqual(['F.BIN']);
    expect(pathLevel(only(r), a, b)).toEqual(oracleDiff(a, b));
  });
});

/** First sectors of the FAT copies and of the cluster area, and sectors per cluster, from Sleuth Kit's fsstat. */
function fatGeometry(img: string): { fats: number[]; clusterArea: number; spc: number } {
  const out = run('fsstat', [img]);
  const fats = [...out.matchAll(/^\*+ FAT \d+: (\d+) - \d+$/gm)].map((m) => Number(m[1]));
  const area = Number(/Cluster Area: (\d+) -/.exec(out)![1]);
  const spc = Number(/Cluster Size: (\d+)/.exec(out)![1]) / 512;
  return { fats, clusterArea: area, spc };
}

describe.skipIf(!(HAVE_MKFS_EXT4 && HAVE_DEBUGFS))('diff reports each side\'s volume state', () => {
  it('a clean template and a user\'s volume left not cleanly unmounted: the new side is dirty, with the reason', async () => {
    const d = tempDir();
    const template = path.join(d, 'template.img');
    makeTemplate(extTools, template, 8 * MiB);
    const user = path.join(d, 'user.img');
    copyFileSync(template, user);
    extTools.put(user, 'etc/new.conf', Buffer.from('new\n'));
    run('debugfs', ['-w', '-R', 'ssv state 0', user]);
    await chainFromImages(d, [template, user], ['template.vhd', 'user.vhd']);
    const p = only(await diff(path.join(d, 'user.vhd'), undefined, { threads: 0 }));
    expect(p.state.old).toBe('clean');
    expect(p.state.new).toBe('dirty');
    expect(p.state.reasons.join(' ')).toMatch(/not cleanly unmounted/);
    expect(p.added.map((f) => f.path)).toEqual(['etc/new.conf']);
    const cli = await runCli(['diff', '--no-progress', '--threads', '0', path.join(d, 'user.vhd')]);
    expect(cli.out.join('\n')).toMatch(/warning: the new side's file system is dirty/);
  });
});
