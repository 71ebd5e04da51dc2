/**
 * rebase on file systems made by the real tools (mkfs.ext4 -d and debugfs,
 * mkfs.fat and mtools): a template, an updated template (files added,
 * rewritten, deleted), and a user's disk with its own changes, as raw images
 * turned into VHD chains. The oracles are independent of vhdtool's planner:
 *  - the raw images themselves: the result must read as the user's image and
 *    store exactly the sectors where the user's image and the new template's
 *    differ (compared byte by byte here);
 *  - qemu-img reading the flattened result (vhdtool convert, then qemu-img
 *    convert with force_size_calc=current_size);
 *  - the file system's own checker (e2fsck -fn, fsck.fat -n) and reader
 *    (debugfs cat, mtype) on what qemu-img read.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { rebase } from '../../src/ops/rebase.js';
import { convert } from '../../src/ops/merge.js';
import { info } from '../../src/ops/info.js';
import { patternBytes } from '../../src/synth/random.js';
import { content } from '../helpers/hash.js';
import { HAVE_DEBUGFS, HAVE_MKFS_EXT4, HAVE_MKFS_FAT, HAVE_MTOOLS, blankImage, chainFromImages, run } from '../helpers/guest.js';
import { HAVE_QEMU } from '../helpers/peers.js';
import { differingSectors, emptyBlocks, storedSectors, zerosOverZeros } from '../helpers/rebase.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const HAVE_E2FSCK = spawnSync('e2fsck', ['-V'], { stdio: 'ignore' }).error === undefined;
const HAVE_FSCK_FAT = spawnSync('fsck.fat', ['--help'], { stdio: 'ignore' }).error === undefined;

interface Images {
  dir: string;
  /** template, updated template, the user's disk, and the user's later snapshot (raw images). */
  template: string;
  updated: string;
  user: string;
  snap: string;
  /** Files to read back from the user's disk: guest path -> content. */
  userFiles: Map<string, Uint8Array>;
}

/** What qemu-img reads from the result once vhdtool has flattened it (qemu does not follow VHD parents). */
async function qemuView(disk: string, dir: string): Promise<Uint8Array> {
  const flat = path.join(dir, `${path.basename(disk)}.flat.vhd`);
  const raw = `${flat}.raw`;
  await convert(disk, flat, { threads: 0, force: true });
  execFileSync('qemu-img', ['convert', '-O', 'raw', '--image-opts', `driver=vpc,force_size_calc=current_size,file.filename=${flat}`, raw]);
  const b = new Uint8Array(readFileSync(raw));
  writeFileSync(path.join(dir, 'last-qemu.raw'), b);
  return b;
}

/** The result reads as `want` (vhdtool and qemu-img) and stores exactly the sectors where `want` and `parent` differ. */
async function expectExact(out: string, want: Uint8Array, parent: Uint8Array, dir: string): Promise<void> {
  expect(sha(await content(out))).toBe(sha(want));
  const stored = await storedSectors(out);
  expect(stored).toEqual(differingSectors(want, parent));
  expect(zerosOverZeros(stored, want, parent)).toEqual([]);
  expect(await emptyBlocks(out)).toEqual([]);
  if (HAVE_QEMU) expect(sha(await qemuView(out, dir))).toBe(sha(want));
}

function debugfs(img: string, cmds: string[]): void {
  run('debugfs', ['-w', '-f', '-', img], cmds.join('\n') + '\n');
}

function ext4Images(): Images {
  const dir = tempDir();
  const src = path.join(dir, 'tree');
  const put = (rel: string, data: Uint8Array) => {
    execFileSync('mkdir', ['-p', path.dirname(path.join(src, rel))]);
    writeFileSync(path.join(src, rel), data);
  };
  put('etc/config.txt', Buffer.from('template v1\n'.repeat(50)));
  put('apps/tool.bin', patternBytes(300 * 1024, 1));
  put('apps/lib.bin', patternBytes(200 * 1024, 2));
  put('docs/readme.txt', Buffer.from('read me\n'.repeat(400)));
  const template = blankImage(path.join(dir, 'template.img'), 16 * MiB);
  run('mkfs.ext4', ['-q', '-F', '-b', '1024', '-d', src, '-U', '0c0c0c0c-0000-4000-8000-000000000001', '-E', 'root_owner=0:0', template]);
  const files = path.join(dir, 'files');
  execFileSync('mkdir', ['-p', files]);
  const f = (name: string, data: Uint8Array) => { writeFileSync(path.join(files, name), data); return path.join(files, name); };
  // The template update: a tool rewritten, a library removed, a new package.
  const updated = path.join(dir, 'updated.img');
  copyFileSync(template, updated);
  debugfs(updated, [
    'rm /apps/tool.bin', `write ${f('tool2.bin', patternBytes(320 * 1024, 3))} /apps/tool.bin`,
    'rm /apps/lib.bin', `write ${f('pkg.bin', patternBytes(500 * 1024, 4))} /apps/pkg.bin`,
  ]);
  // The user's changes: a document, a changed config, the readme deleted.
  const doc = patternBytes(150 * 1024, 5);
  const config = Buffer.from('user settings\n'.repeat(80));
  const user = path.join(dir, 'user.img');
  copyFileSync(template, user);
  debugfs(user, ['mkdir /home', `write ${f('doc.bin', doc)} /home/doc.bin`, 'rm /etc/config.txt', `write ${f('config.txt', config)} /etc/config.txt`, 'rm /docs/readme.txt']);
  const snap = path.join(dir, 'snap.img');
  copyFileSync(user, snap);
  debugfs(snap, [`write ${f('later.bin', patternBytes(40 * 1024, 6))} /home/later.bin`]);
  return { dir, template, updated, user, snap, userFiles: new Map([['/home/doc.bin', doc], ['/etc/config.txt', config], ['/apps/lib.bin', patternBytes(200 * 1024, 2)]]) };
}

function fatImages(): Images {
  const dir = tempDir();
  const f = (name: string, data: Uint8Array) => { writeFileSync(path.join(dir, name), data); return path.join(dir, name); };
  const template = blankImage(path.join(dir, 'template.img'), 16 * MiB);
  run('mkfs.fat', ['-F', '16', '-i', '0c0c0001', '-n', 'TEMPLATE', template]);
  run('mmd', ['-i', template, '::/APPS', '::/DOCS']);
  run('mcopy', ['-i', template, f('tool.bin', patternBytes(300 * 1024, 11)), f('lib.bin', patternBytes(200 * 1024, 12)), '::/APPS/']);
  run('mcopy', ['-i', template, f('readme.txt', Buffer.from('read me\r\n'.repeat(300))), '::/DOCS/']);
  const updated = path.join(dir, 'updated.img');
  copyFileSync(template, updated);
  run('mdel', ['-i', updated, '::/APPS/LIB.BIN']);
  run('mcopy', ['-o', '-i', updated, f('tool2.bin', patternBytes(320 * 1024, 13)), '::/APPS/TOOL.BIN']);
  run('mcopy', ['-i', updated, f('pkg.bin', patternBytes(400 * 1024, 14)), '::/APPS/PKG.BIN']);
  const doc = patternBytes(150 * 1024, 15);
  const user = path.join(dir, 'user.img');
  copyFileSync(template, user);
  run('mmd', ['-i', user, '::/HOME']);
  run('mcopy', ['-i', user, f('doc.bin', doc), '::/HOME/DOC.BIN']);
  run('mdel', ['-i', user, '::/DOCS/README.TXT']);
  const snap = path.join(dir, 'snap.img');
  copyFileSync(user, snap);
  run('mcopy', ['-i', snap, f('later.bin', patternBytes(40 * 1024, 16)), '::/HOME/LATER.BIN']);
  return { dir, template, updated, user, snap, userFiles: new Map([['/HOME/DOC.BIN', doc], ['/APPS/LIB.BIN', patternBytes(200 * 1024, 12)]]) };
}

/** The guest's own tools on what qemu-img read: the file system is clean and the user's files are there, byte for byte. */
function checkGuest(kind: 'ext4' | 'fat', raw: string, files: Map<string, Uint8Array>): void {
  if (kind === 'ext4') {
    if (HAVE_E2FSCK) expect(spawnSync('e2fsck', ['-fn', raw]).status).toBe(0);
    for (const [p, data] of files) expect(sha(execFileSync('debugfs', ['-R', `cat ${p}`, raw], { stdio: ['ignore', 'pipe', 'ignore'] })), p).toBe(sha(data));
  } else {
    if (HAVE_FSCK_FAT) expect(spawnSync('fsck.fat', ['-n', raw]).status).toBe(0);
    for (const [p, data] of files) expect(sha(execFileSync('mtype', ['-i', raw, `::${p}`])), p).toBe(sha(data));
  }
}

const KINDS = [
  { kind: 'ext4' as const, make: ext4Images, have: HAVE_MKFS_EXT4 && HAVE_DEBUGFS },
  { kind: 'fat' as const, make: fatImages, have: HAVE_MKFS_FAT && HAVE_MTOOLS },
];

for (const { kind, make, have } of KINDS) {
  describe.skipIf(!have)(`rebase on ${kind} images made by the real tools`, () => {
    let im: Images;
    let bytes: { template: Uint8Array; updated: Uint8Array; user: Uint8Array; snap: Uint8Array };
    beforeAll(() => {
      im = make();
      bytes = {
        template: new Uint8Array(readFileSync(im.template)), updated: new Uint8Array(readFileSync(im.updated)),
        user: new Uint8Array(readFileSync(im.user)), snap: new Uint8Array(readFileSync(im.snap)),
      };
      // The scene is what it claims: the update and the user both changed the template, in different places.
      expect(differingSectors(bytes.template, bytes.updated).length).toBeGreaterThan(100);
      expect(differingSectors(bytes.template, bytes.user).length).toBeGreaterThan(100);
    });

    it('a user\'s child onto the updated template (--output): the user\'s view, exactly the sectors it differs in; the guest\'s files and checker agree', async () => {
      const dir = tempDir();
      await chainFromImages(dir, [im.template, im.user], ['template.vhd', 'user.vhd']);
      await chainFromImages(dir, [im.updated], ['template-v2.vhd']);
      const out = path.join(dir, 'user-v2.vhd');
      const r = await rebase(path.join(dir, 'user.vhd'), path.join(dir, 'template-v2.vhd'), { output: out, threads: 2 });
      expect(r.sectors.kept).toBe(differingSectors(bytes.user, bytes.updated).length);
      await expectExact(out, bytes.user, bytes.updated, dir);
      if (HAVE_QEMU) checkGuest(kind, path.join(dir, 'last-qemu.raw'), im.userFiles);
    });

    it('in place: the UUID is kept and the user\'s snapshot above it still reads the same', async () => {
      const dir = tempDir();
      await chainFromImages(dir, [im.template, im.user, im.snap], ['template.vhd', 'user.vhd', 'snap.vhd']);
      await chainFromImages(dir, [im.updated], ['template-v2.vhd']);
      const user = path.join(dir, 'user.vhd');
      const uuid = (await info(user)).uuid;
      await rebase(user, path.join(dir, 'template-v2.vhd'), { threads: 1 });
      expect((await info(user)).uuid).toBe(uuid);
      await expectExact(user, bytes.user, bytes.updated, dir);
      const snap = path.join(dir, 'snap.vhd');
      expect((await info(snap)).chain.map((c) => path.basename(c.path))).toEqual(['snap.vhd', 'user.vhd', 'template-v2.vhd']);
      expect(sha(await content(snap))).toBe(sha(bytes.snap));
    });

    it('the import path: the raw image and a fixed full copy become children of the template, and back onto the update', async () => {
      const dir = tempDir();
      await chainFromImages(dir, [im.template], ['template.vhd']);
      await chainFromImages(dir, [im.updated], ['template-v2.vhd']);
      const raw = path.join(dir, 'user-full.img');
      copyFileSync(im.user, raw);
      const fromRaw = path.join(dir, 'user-from-raw.vhd');
      const r = await rebase(raw, path.join(dir, 'template.vhd'), { output: fromRaw, threads: 0 });
      expect(r.inputType).toBe('raw');
      await expectExact(fromRaw, bytes.user, bytes.template, dir);
      expect(r.savedBytes).toBeGreaterThan(bytes.user.length / 2);
      if (HAVE_QEMU) checkGuest(kind, path.join(dir, 'last-qemu.raw'), im.userFiles);
      const full = path.join(dir, 'user-full.vhd');
      await convert(fromRaw, full, { type: 'fixed', threads: 0 });
      await rebase(full, path.join(dir, 'template.vhd'), { threads: 0 });
      await expectExact(full, bytes.user, bytes.template, dir);
      await rebase(full, path.join(dir, 'template-v2.vhd'), { threads: 0 });
      await expectExact(full, bytes.user, bytes.updated, dir);
    });
  });
}
