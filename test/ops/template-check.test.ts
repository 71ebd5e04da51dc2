/**
 * `rebase CHILD --onto NEWTEMPLATE --check` on ext and FAT images made by the
 * real tools (test/helpers/templateScene.ts): the conflicts found are exactly
 * the ones constructed; the changes listed agree with Sleuth Kit's trees; the
 * naive-relink verdict is checked by doing the naive relink (the child's
 * sectors over the new template) and running the file system's checker on
 * the result. Over a folder, every child of the old template is checked and
 * nothing else.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { rebase } from '../../src/ops/rebase.js';
import { templateCheck, templateCheckRoots } from '../../src/ops/templateCheck.js';
import { patternBytes } from '../../src/synth/random.js';
import { HAVE_DEBUGFS, HAVE_MKFS_EXT4, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_TSK, chainFromImages } from '../helpers/guest.js';
import { oracleDiff, tskTree } from '../helpers/diffOracle.js';
import { extTools, fatTools, makeScene, makeTemplate, ntfsTools, type FsTools, type Scene } from '../helpers/templateScene.js';
import { HAVE_FUSE } from '../helpers/ntfsImages.js';
import { runCli } from '../helpers/cliRun.js';
import { tempDir } from '../helpers/tmp.js';
import { writeRange } from '../helpers/patch.js';

const HAVE_E2FSCK = spawnSync('e2fsck', ['-V'], { stdio: 'ignore' }).error === undefined;
const HAVE_FSCK_FAT = spawnSync('fsck.fat', ['--help'], { stdio: 'ignore' }).error === undefined;

const KINDS = [
  { tools: extTools, have: HAVE_MKFS_EXT4 && HAVE_DEBUGFS && HAVE_TSK && HAVE_E2FSCK },
  { tools: fatTools, have: HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_TSK && HAVE_FSCK_FAT },
  // ntfs-3g (FUSE) makes the changes; there is no NTFS checker here, so the naive relink's result is read with Sleuth Kit only.
  { tools: ntfsTools, have: HAVE_FUSE && HAVE_TSK },
];

/** What a naive relink shows: the new template with every sector the user's disk changed taken from the user's disk. */
function naiveImage(template: string, updated: string, user: string, out: string): string {
  const t = readFileSync(template);
  const n = readFileSync(updated);
  const u = readFileSync(user);
  for (let o = 0; o < t.length; o += 512) if (t.compare(u, o, o + 512, o, o + 512) !== 0) u.copy(n, o, o, o + 512);
  writeFileSync(out, n);
  return out;
}

/** The file system's own checker on an image (null: none for this file system). */
function fsckClean(kind: FsTools['kind'], img: string): boolean | null {
  if (kind === 'ntfs') return null;
  const r = kind === 'ext4' ? spawnSync('e2fsck', ['-fn', img]) : spawnSync('fsck.fat', ['-n', img]);
  return r.status === 0;
}

/** Paths of the changes a side made, by path (as the oracle sees them), from the report's entries. */
function entryPaths(list: Array<{ path: string; change: string; directory: boolean }>, change: string, directory: boolean): string[] {
  return list.filter((e) => e.change === change && e.directory === directory).map((e) => e.path).sort();
}

for (const { tools, have } of KINDS) {
  describe.skipIf(!have)(`rebase --check on ${tools.kind} images made by the real tools`, () => {
    let s: Scene;
    let dir: string;
    beforeAll(async () => {
      s = makeScene(tools);
      dir = tempDir();
      await chainFromImages(dir, [s.template, s.user], ['template.vhd', 'user.vhd']);
      mkdirSync(path.join(dir, 'v2'));
      await chainFromImages(path.join(dir, 'v2'), [s.updated], ['template-v2.vhd']);
    });

    it('finds exactly the conflicts constructed, the same changes, and lists each side\'s changes as Sleuth Kit sees them', async () => {
      const r = await templateCheck(path.join(dir, 'user.vhd'), path.join(dir, 'v2', 'template-v2.vhd'), { threads: 0 });
      expect(r.conflicts.map((c) => ({ path: c.path, update: c.update, user: c.user, reason: c.reason, ...(c.directory !== undefined ? { directory: c.directory } : {}) })))
        .toEqual(s.expected.conflicts);
      expect(r.sameChanges).toEqual(s.expected.sameChanges);
      expect(r.verdict).toBe('safe-to-rebase');
      const t = tskTree(s.template);
      for (const [list, img] of [[r.updateChanged, s.updated], [r.userChanged, s.user]] as const) {
        const want = oracleDiff(t, tskTree(img));
        expect(entryPaths(list, 'added', false)).toEqual(want.added);
        expect(entryPaths(list, 'deleted', false)).toEqual(want.deleted);
        expect(entryPaths(list, 'modified', false)).toEqual(want.modified);
        expect(entryPaths(list, 'added', true)).toEqual(want.createdDirectories);
        expect(entryPaths(list, 'deleted', true)).toEqual(want.deletedDirectories);
      }
    });

    it('a naive relink would corrupt this disk, and does: the checker fails on the mix; both sides changed metadata and common sectors', async () => {
      const r = await templateCheck(path.join(dir, 'user.vhd'), path.join(dir, 'v2', 'template-v2.vhd'), { threads: 2 });
      expect(r.naiveRelinkSafe).toBe(false);
      expect(r.naiveRelink.commonBytes).toBeGreaterThan(0);
      expect(r.naiveRelink.commonBytes).toBe(r.naiveRelink.commonRanges.reduce((n, [a, b]) => n + b - a, 0));
      expect(r.metadataConflicts.length).toBeGreaterThan(0);
      // Both added files in the same free clusters: the files on the common sectors include them.
      expect(r.naiveRelink.tornFiles.map((f) => f.path)).toEqual(expect.arrayContaining([tools.name('etc/clash.txt')]));
      const clean = fsckClean(tools.kind, naiveImage(s.template, s.updated, s.user, path.join(dir, 'naive.img')));
      if (clean !== null) expect(clean).toBe(false);
    });

    it('disjoint in-place changes: no conflict, a naive relink is safe, and doing it leaves a clean file system with both changes', async () => {
      const d = tempDir();
      const template = path.join(d, 'template.img');
      makeTemplate(tools, template);
      const updated = path.join(d, 'updated.img');
      const user = path.join(d, 'user.img');
      copyFileSync(template, updated);
      copyFileSync(template, user);
      tools.pokeFile(updated, 'apps/tool.bin', Buffer.from('THE UPDATE'));
      tools.pokeFile(user, 'docs/manual.txt', Buffer.from('THE USER'));
      await chainFromImages(d, [template, user], ['template.vhd', 'user.vhd']);
      mkdirSync(path.join(d, 'v2'));
      await chainFromImages(path.join(d, 'v2'), [updated], ['template-v2.vhd']);
      const r = await templateCheck(path.join(d, 'user.vhd'), path.join(d, 'v2', 'template-v2.vhd'), { threads: 0 });
      expect(r.conflicts).toEqual([]);
      expect(r.metadataConflicts).toEqual([]);
      expect(r.naiveRelinkSafe).toBe(true);
      expect(r.updateChanged.map((e) => [e.path, e.change])).toEqual([[tools.name('apps/tool.bin'), 'modified']]);
      expect(r.userChanged.map((e) => [e.path, e.change])).toEqual([[tools.name('docs/manual.txt'), 'modified']]);
      const naive = naiveImage(template, updated, user, path.join(d, 'naive.img'));
      expect(fsckClean(tools.kind, naive)).not.toBe(false);
      const mixed = tskTree(naive);
      expect(mixed.get(tools.name('apps/tool.bin'))!.sha).toBe(tskTree(updated).get(tools.name('apps/tool.bin'))!.sha);
      expect(mixed.get(tools.name('docs/manual.txt'))!.sha).toBe(tskTree(user).get(tools.name('docs/manual.txt'))!.sha);
      const cli = await runCli(['rebase', path.join(d, 'user.vhd'), '--onto', path.join(d, 'v2', 'template-v2.vhd'), '--check', '--threads', '0']);
      expect(cli.code, cli.err.join('\n')).toBe(0);
      expect(cli.out.join('\n')).toMatch(/a naive relink .* would be safe/);
    });

    it('over a folder: every child of the old template, one line each, one JSON object; snapshots and the new template are not users', async () => {
      const d = tempDir();
      const golden = path.join(d, 'golden');
      const users = path.join(d, 'users');
      mkdirSync(golden);
      mkdirSync(users);
      // user1 conflicts (the scene), user2 changed only a file of its own, user1's snapshot sits on user1.
      await chainFromImages(golden, [s.template], ['golden.vhd']);
      await chainFromImages(golden, [s.updated], ['golden-v2.vhd']);
      const user2img = path.join(d, 'user2.img');
      copyFileSync(s.template, user2img);
      tools.pokeFile(user2img, 'big/blob.bin', patternBytes(4096, 9));
      const snapImg = path.join(d, 'snap.img');
      copyFileSync(s.user, snapImg);
      tools.put(snapImg, 'home/later.bin', patternBytes(20000, 7));
      await chainFromImages(users, [s.template, s.user, snapImg], ['tmp-base.vhd', 'user1.vhd', 'user1-snap.avhd']);
      await chainFromImages(users, [s.template, user2img], ['tmp-base2.vhd', 'user2.vhd']);
      // Both users onto golden.vhd (the same content as their bases): rebase keeps their views and UUIDs.
      for (const u of ['user1.vhd', 'user2.vhd']) await rebase(path.join(users, u), path.join(golden, 'golden.vhd'), { threads: 0 });
      rmSync(path.join(users, 'tmp-base.vhd'));
      rmSync(path.join(users, 'tmp-base2.vhd'));
      const r = await templateCheckRoots([users], path.join(golden, 'golden-v2.vhd'), { threads: 0 });
      expect(r.old).toBe(path.join(golden, 'golden.vhd'));
      expect(r.users.map((u) => path.basename(u.path))).toEqual(['user1.vhd', 'user2.vhd']);
      const [u1, u2] = r.users;
      expect(u1.ok && u1.conflicts.map((c) => c.path)).toEqual(s.expected.conflicts.map((c) => c.path));
      expect(u2.ok && u2.conflicts).toEqual([]);
      // user2 rewrote file data in place and changed no metadata: only the update did.
      expect(u2.ok && u2.naiveRelinkSafe).toBe(true);
      expect(r.summary).toEqual({ users: 2, withConflicts: 1, naiveRelinkUnsafe: 1, errors: 0 });
      const cli = await runCli(['rebase', users, '--onto', path.join(golden, 'golden-v2.vhd'), '--check', '--threads', '0']);
      expect(cli.code, cli.err.join('\n')).toBe(1);
      expect(cli.out.filter((l) => l.startsWith(users))).toHaveLength(2);
      const json = await runCli(['rebase', users, '--onto', path.join(golden, 'golden-v2.vhd'), '--check', '--json', '--threads', '0']);
      expect(JSON.parse(json.out.join('\n')).users).toHaveLength(2);
    });
  });
}

describe.skipIf(!(HAVE_MKFS_EXT4 && HAVE_DEBUGFS))('rebase --check over folders: errors and the old template', () => {
  it('a user whose file system cannot be read is reported on its line (exit 9), the others are checked; two templates need --old', async () => {
    const d = tempDir();
    const golden = path.join(d, 'golden');
    const users = path.join(d, 'users');
    mkdirSync(golden);
    mkdirSync(users);
    const template = path.join(d, 'template.img');
    makeTemplate(extTools, template);
    const updated = path.join(d, 'updated.img');
    copyFileSync(template, updated);
    extTools.pokeFile(updated, 'apps/tool.bin', Buffer.from('UPDATE'));
    const good = path.join(d, 'good.img');
    copyFileSync(template, good);
    extTools.pokeFile(good, 'docs/manual.txt', Buffer.from('MINE'));
    const broken = path.join(d, 'broken.img');
    copyFileSync(good, broken);
    // Its superblock claims more blocks than the volume holds.
    writeRange(broken, 1024 + 4, new Uint8Array([0xff, 0xff, 0xff, 0x00]));
    // The update as a layer over the old template (the Hyper-V way), kept among the users: it is not a user.
    await chainFromImages(golden, [template, updated], ['golden.vhd', 'golden-v2.vhd']);
    renameSync(path.join(golden, 'golden-v2.vhd'), path.join(users, 'golden-v2.vhd'));
    await chainFromImages(users, [template, good], ['b1.vhd', 'good.vhd']);
    await chainFromImages(users, [template, broken], ['b2.vhd', 'broken.vhd']);
    for (const u of ['good.vhd', 'broken.vhd']) await rebase(path.join(users, u), path.join(golden, 'golden.vhd'), { threads: 0 });
    rmSync(path.join(users, 'b1.vhd'));
    rmSync(path.join(users, 'b2.vhd'));
    const v2 = path.join(users, 'golden-v2.vhd');
    const r = await runCli(['rebase', users, '--onto', v2, '--check', '--threads', '0', '--no-progress']);
    expect(r.code, r.err.join('\n')).toBe(9);
    const lines = r.out.filter((l) => l.startsWith(users));
    expect(lines).toHaveLength(2);
    const b = path.join(users, 'broken.vhd');
    expect(lines[0].startsWith(`${b}: error: ${b}: partition 1 (ext): ext superblock: `)).toBe(true);
    expect(lines[1]).toBe(`${path.join(users, 'good.vhd')}: no conflict; changed 1 file(s); safe-to-rebase; naive relink safe`);
    // A second template with a child of its own under the folder: which one is old is not guessed.
    const other = path.join(d, 'other');
    mkdirSync(other);
    await chainFromImages(other, [template, good], ['other-base.vhd', 'other-user.vhd']);
    copyFileSync(path.join(other, 'other-user.vhd'), path.join(users, 'other-user.vhd'));
    const amb = await runCli(['rebase', users, '--onto', v2, '--check', '--threads', '0', '--no-progress']);
    expect(amb.code).toBe(2);
    expect(amb.err[0]).toMatch(/^vhdtool: the disks under the roots sit on 2 different templates \(.*golden\.vhd, .*other-base\.vhd\): name the old one with --old$/);
    const named = await runCli(['rebase', users, '--onto', v2, '--check', '--old', path.join(golden, 'golden.vhd'), '--json', '--threads', '0', '--no-progress']);
    expect(named.code).toBe(9);
    const j = JSON.parse(named.out.join('\n'));
    expect(j.users.map((u: { path: string; ok: boolean }) => [path.basename(u.path), u.ok])).toEqual([['broken.vhd', false], ['good.vhd', true]]);
    expect(j.users[0].error.code).toBe('BAD_FILESYSTEM');
  });
});
