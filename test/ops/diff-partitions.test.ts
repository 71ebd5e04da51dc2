/**
 * `diff` and `rebase --check` on partitioned disks (sfdisk, an ext and a FAT
 * volume made by their tools), and their refusals: partitions matched by
 * index (each checked against Sleuth Kit at its offset), a moved and an
 * added partition, a partition holding no file system vhdtool reads, an
 * unreadable file system where sectors differ (exit 9, naming the disk and
 * the partition) and where none do (no error), sizes, a disk with no
 * parent, rebase's own refusals under --check, an interruption. Every
 * refusal leaves every file as it was.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { diff } from '../../src/ops/diff.js';
import { VhdToolError } from '../../src/errors.js';
import { patternBytes } from '../../src/synth/random.js';
import {
  HAVE_DEBUGFS, HAVE_MKFS_EXT4, HAVE_MKFS_FAT, HAVE_MTOOLS, HAVE_SFDISK, HAVE_TSK, blankImage, chainFromImages, embed, partition,
} from '../helpers/guest.js';
import { oracleDiff, pathLevel, poke, tskTree } from '../helpers/diffOracle.js';
import { extTools, fatTools, makeTemplate } from '../helpers/templateScene.js';
import { runCli, hasStackTrace } from '../helpers/cliRun.js';
import { patchFooter } from '../helpers/patch.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const HAVE = HAVE_SFDISK && HAVE_MKFS_EXT4 && HAVE_DEBUGFS && HAVE_MKFS_FAT && HAVE_MTOOLS && HAVE_TSK;

/** Partition 1: ext4 (8 MiB at 1 MiB); partition 2: FAT16 (16 MiB at 9 MiB); a 26 MiB disk. */
const P1 = 1 * MiB;
const P2 = 9 * MiB;
const DISK = 26 * MiB;
const TABLE = `label: dos\nlabel-id: 0x0c0c0d1f\nstart=${P1 / 512}, size=${(8 * MiB) / 512}, type=83\nstart=${P2 / 512}, size=${(16 * MiB) / 512}, type=6\n`;

function disk(file: string, ext: string, fat: string, table = TABLE, at = { ext: P1, fat: P2 }): string {
  blankImage(file, DISK);
  partition(file, table);
  embed(file, ext, at.ext);
  embed(file, fat, at.fat);
  return file;
}

const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');

/** Hashes of every file in a folder and its subfolders (to show a refusal changed nothing). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out[path.join(e.parentPath, e.name)] = sha(path.join(e.parentPath, e.name));
  }
  return out;
}

describe.skipIf(!HAVE)('diff on partitioned disks, and the refusals', () => {
  let d: string;
  const vol = { ext: '', fat: '', extUser: '', fatUser: '' };
  let template: string;
  let user: string;
  beforeAll(() => {
    d = tempDir();
    vol.ext = path.join(d, 'p1.img');
    vol.fat = path.join(d, 'p2.img');
    makeTemplate(extTools, vol.ext, 8 * MiB);
    makeTemplate(fatTools, vol.fat, 16 * MiB);
    vol.extUser = path.join(d, 'p1-user.img');
    vol.fatUser = path.join(d, 'p2-user.img');
    copyFileSync(vol.ext, vol.extUser);
    copyFileSync(vol.fat, vol.fatUser);
    extTools.put(vol.extUser, 'etc/new.conf', Buffer.from('new\n'));
    extTools.pokeFile(vol.extUser, 'apps/tool.bin', Buffer.from('EXT USER'));
    fatTools.del(vol.fatUser, 'docs/readme.txt');
    fatTools.pokeFile(vol.fatUser, 'big/blob.bin', Buffer.from('FAT USER'));
    template = disk(path.join(d, 'template.img'), vol.ext, vol.fat);
    user = disk(path.join(d, 'user.img'), vol.extUser, vol.fatUser);
  });

  async function chain(images: string[], names: string[]): Promise<string[]> {
    const dir = tempDir();
    const layers = await chainFromImages(dir, images, names);
    return layers.map((l) => l.path);
  }

  it('partitions are matched by index; each one agrees with Sleuth Kit at its offset', async () => {
    const [, child] = await chain([template, user], ['template.vhd', 'user.vhd']);
    const r = await diff(child, undefined, { threads: 1 });
    expect(r.partitions.map((p) => [p.index, p.fileSystem, p.layout])).toEqual([[1, 'ext4', 'same'], [2, 'fat16', 'same']]);
    for (const [i, off] of [[0, P1], [1, P2]]) {
      const a = tskTree(template, off / 512);
      const b = tskTree(user, off / 512);
      const want = oracleDiff(a, b);
      expect(want.added.length + want.deleted.length + want.modified.length).toBeGreaterThan(0);
      expect(pathLevel(r.partitions[i], a, b)).toEqual(want);
    }
    expect(r.outsideBytes).toBe(0);
  });

  it('a moved partition: its files are matched and read, none reported changed but the real changes; an added partition: all added', async () => {
    const moved = `label: dos\nlabel-id: 0x0c0c0d1f\nstart=${P1 / 512}, size=${(8 * MiB) / 512}, type=83\nstart=${(P2 + MiB) / 512}, size=${(16 * MiB) / 512}, type=6\n`;
    const shifted = disk(path.join(d, 'moved.img'), vol.ext, vol.fatUser, moved, { ext: P1, fat: P2 + MiB });
    const [a, b] = await chain([template, shifted], ['t.vhd', 'moved.vhd']);
    const r = await diff(a, b, { threads: 0 });
    const p = r.partitions[1];
    expect(p.layout).toBe('moved');
    expect(p.note).toMatch(/^moved from byte 9437184 to 10485760/);
    expect(pathLevel(p, tskTree(template, P2 / 512), tskTree(shifted, (P2 + MiB) / 512))).toEqual(oracleDiff(tskTree(template, P2 / 512), tskTree(shifted, (P2 + MiB) / 512)));
    expect(r.partitions[0].note).toBe('no sector of it differs');
    // Partition 2 gone: every file of it deleted.
    const one = `label: dos\nlabel-id: 0x0c0c0d1f\nstart=${P1 / 512}, size=${(8 * MiB) / 512}, type=83\n`;
    const single = path.join(d, 'single.img');
    blankImage(single, DISK);
    partition(single, one);
    embed(single, vol.ext, P1);
    const [c, e] = await chain([template, single], ['t.vhd', 'single.vhd']);
    const gone = await diff(c, e, { threads: 0 });
    expect(gone.partitions[1].layout).toBe('deleted');
    const fat = tskTree(template, P2 / 512);
    expect(gone.partitions[1].deleted.map((f) => f.path)).toEqual([...fat].filter(([, x]) => !x.directory).map(([q]) => q).sort());
    const back = await diff(e, c, { threads: 0 });
    expect(back.partitions[1].layout).toBe('added');
    expect(back.partitions[1].added.map((f) => f.path)).toEqual(gone.partitions[1].deleted.map((f) => f.path));
  });

  it('a partition holding no file system vhdtool reads (LUKS) is not compared, and says so; diff exits 1', async () => {
    const luks = path.join(d, 'luks.img');
    const luksUser = path.join(d, 'luks-user.img');
    copyFileSync(template, luks);
    poke(luks, P1, Buffer.from('LUKS\xba\xbe\x00\x01', 'latin1'));
    poke(luks, P1 + 1024, new Uint8Array(4096));
    copyFileSync(luks, luksUser);
    poke(luksUser, P1 + 3 * MiB, patternBytes(8192, 3));
    const [, child] = await chain([luks, luksUser], ['luks.vhd', 'luks-user.vhd']);
    const r = await diff(child, undefined, { threads: 0 });
    expect(r.partitions[0].compared).toBe(false);
    expect(r.partitions[0].note).toBe('LUKS1: not a file system vhdtool reads; 8192 bytes of it differ');
    const cli = await runCli(['diff', '--no-progress', '--threads', '0', child]);
    expect(cli.code).toBe(1);
  });

  it('an unreadable file system where sectors differ: exit 9 naming the disk and the partition (diff and --check); where none differ: no error', async () => {
    const broken = path.join(d, 'broken.img');
    copyFileSync(user, broken);
    // The ext superblock of partition 1 claims more blocks than the partition holds.
    poke(broken, P1 + 1024 + 4, Buffer.from([0xff, 0xff, 0xff, 0x00]));
    const dir = tempDir();
    await chainFromImages(dir, [template, broken], ['template.vhd', 'broken.vhd']);
    mkdirSync(path.join(dir, 'v2'));
    await chainFromImages(path.join(dir, 'v2'), [user], ['v2.vhd']);
    const before = snapshot(dir);
    const child = path.join(dir, 'broken.vhd');
    for (const args of [['diff', child], ['rebase', child, '--onto', path.join(dir, 'v2', 'v2.vhd'), '--check']]) {
      const r = await runCli([...args, '--no-progress', '--threads', '0']);
      expect(r.code, r.err.join('\n')).toBe(9);
      expect(r.err).toHaveLength(1);
      expect(r.err[0]).toMatch(new RegExp(`^vhdtool: ${escape(child)}: partition 1 \\(ext\\): ext superblock: `));
      expect(hasStackTrace(r.err)).toBe(false);
    }
    expect(snapshot(dir)).toEqual(before);
    // The same broken partition on both sides, the changes elsewhere: partition 1 is equal unread.
    const broken2 = path.join(d, 'broken2.img');
    copyFileSync(broken, broken2);
    poke(broken2, P2 + 5 * MiB, Buffer.from('elsewhere'));
    const [a, b] = await chain([broken, broken2], ['b1.vhd', 'b2.vhd']);
    const r = await diff(a, b, { threads: 0 });
    expect(r.partitions[0].note).toBe('no sector of it differs');
    expect(r.partitions[1].differingBytes).toBe(512);
  });

  it('sizes: a larger disk reading zeros past the smaller\'s end compares; with data there it is refused (exit 6)', async () => {
    const big = path.join(d, 'big.img');
    copyFileSync(user, big);
    const bytes = readFileSync(big);
    writeFileSync(big, Buffer.concat([bytes, Buffer.alloc(4 * MiB)]));
    const [a] = await chain([template], ['t.vhd']);
    const [b] = await chain([big], ['big.vhd']);
    const r = await diff(a, b, { threads: 0 });
    expect(r.virtualSize).toBe(DISK + 4 * MiB);
    expect(r.summary.added).toBe(1);
    poke(big, DISK + MiB, Buffer.from('past the end'));
    const [c] = await chain([big], ['big2.vhd']);
    const cli = await runCli(['diff', '--no-progress', '--threads', '0', a, c]);
    expect(cli.code).toBe(6);
    expect(cli.err).toEqual([`vhdtool: ${c}: sizes differ (${DISK} and ${DISK + 4 * MiB} bytes) and ${c} holds data past ${a}'s end (at byte ${DISK + MiB}); the disks do not show the same disk`]);
  });

  it('one disk that has no parent is bad usage (exit 2)', async () => {
    const [a] = await chain([template], ['t.vhd']);
    const cli = await runCli(['diff', '--no-progress', a]);
    expect(cli.code).toBe(2);
    expect(cli.err).toEqual([`vhdtool: ${a}: is a dynamic disk with no parent; \`diff\` with one disk compares a differencing disk with its parent: name two disks to compare`]);
  });

  it('--check refuses what rebase refuses, naming it, and changes nothing: a smaller template, a cycle, saved state, --output', async () => {
    const dir = tempDir();
    await chainFromImages(dir, [template, user, user], ['template.vhd', 'user.vhd', 'snap.vhd']);
    const small = path.join(d, 'small.img');
    writeFileSync(small, readFileSync(template).subarray(0, DISK - MiB));
    mkdirSync(path.join(dir, 's'));
    await chainFromImages(path.join(dir, 's'), [small], ['small.vhd']);
    const child = path.join(dir, 'user.vhd');
    const check = (onto: string, ...more: string[]) => runCli(['rebase', child, '--onto', onto, '--check', '--no-progress', '--threads', '0', ...more]);
    const before = snapshot(dir);
    let r = await check(path.join(dir, 's', 'small.vhd'));
    expect([r.code, r.err]).toEqual([6, [`vhdtool: ${path.join(dir, 's', 'small.vhd')}: new template is smaller than ${child} (${DISK - MiB} < ${DISK} bytes); ${child}'s view cannot sit on it`]]);
    r = await check(path.join(dir, 'snap.vhd'));
    expect(r.code).toBe(5);
    expect(r.err[0]).toMatch(/contains the disk being rebased/);
    r = await check(path.join(dir, 'template.vhd'), '--output', path.join(dir, 'out.vhd'));
    expect([r.code, r.err]).toEqual([2, ['vhdtool: --check writes nothing; --output does not apply']]);
    expect(snapshot(dir)).toEqual(before);
    patchFooter(child, (f) => ({ ...f, savedState: 1 }));
    const saved = snapshot(dir);
    r = await check(path.join(dir, 'template.vhd'));
    expect(r.code).toBe(6);
    expect(r.err[0]).toMatch(/saved state/);
    expect(snapshot(dir)).toEqual(saved);
  });

  it('stops when interrupted (library: INTERRUPTED at the next unit of work; command line: exit 130)', async () => {
    const [, child] = await chain([template, user], ['template.vhd', 'user.vhd']);
    const ac = new AbortController();
    const progress = { start: (label: string) => { if (label.startsWith('reading partition')) ac.abort(); }, advance() {}, done() {} };
    const e = await diff(child, undefined, { threads: 0, progress, signal: ac.signal }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(VhdToolError);
    expect((e as VhdToolError).code).toBe('INTERRUPTED');
    const { main } = await import('../../src/cli/main.js');
    const err: string[] = [];
    const code = await main(['node', 'vhdtool', 'diff', '--threads', '0', '--no-progress', child], { out: () => undefined, err: (l) => err.push(l), tty: false, signal: AbortSignal.abort() });
    expect(code).toBe(130);
    expect(err).toEqual(['vhdtool: interrupted; nothing was changed']);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
