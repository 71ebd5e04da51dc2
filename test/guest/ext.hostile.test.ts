/**
 * Hostile ext volumes, each made from a real mkfs image damaged in one place
 * (debugfs set_inode_field / set_super_value / set_bg, or bytes patched):
 * every one gives a clear GuestError or a named anomaly, never a hang, a
 * crash or unbounded memory.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { mkdirSync, openSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { HAVE_DEBUGFS, HAVE_MKFS_EXT4, run } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { debugfs, debugfsStat, mkfs, patch, readBytes, u32le } from './extOracle.js';
import { contentOf, scanImage, withImageSource } from './extVerify.js';
import { ExtVolume } from '../../src/guest/ext/volume.js';
import { GuestError } from '../../src/guest/errors.js';

const TOOLS = HAVE_MKFS_EXT4 && HAVE_DEBUGFS;
const MiB = 1024 * 1024;

/** A small volume: a file with a depth-1 extent tree, a one-extent file, a directory tree. */
function volume(dir: string, args: string[] = ['-b', '1024']): string {
  const src = path.join(dir, 'src');
  mkdirSync(path.join(src, 'd/e'), { recursive: true });
  const fd = openSync(path.join(src, 'islands'), 'w');
  for (let i = 0; i < 8; i++) writeSync(fd, Buffer.alloc(1024, 0x41 + i), 0, 1024, i * 8192);
  closeSync(fd);
  writeFileSync(path.join(src, 'one'), Buffer.alloc(3000, 0x31));
  writeFileSync(path.join(src, 'd/e/deep.txt'), 'deep\n');
  return mkfs(path.join(dir, 'fs.img'), 8 * MiB, args, src);
}

function ino(img: string, p: string): number {
  return Number(/Inode: (\d+)/.exec(debugfs(img, [`stat ${p}`]))![1]);
}

async function openFails(img: string): Promise<GuestError> {
  const e = await withImageSource(img, (src) => ExtVolume.open(src)).then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(GuestError);
  return e as GuestError;
}

function anomaly(s: Awaited<ReturnType<typeof scanImage>>, kind: string): string {
  const a = s.scan.anomalies.find((x) => x.kind === kind);
  expect(a, `anomaly ${kind} in ${JSON.stringify(s.scan.anomalies.map((x) => x.kind))}`).toBeDefined();
  return a!.message;
}

describe.skipIf(!TOOLS)('hostile ext volumes', () => {
  it('an extent tree loop (a node whose index points at itself) is cut and reported', async () => {
    const img = volume(tempDir());
    const n = ino(img, '/islands');
    const st = debugfsStat(img, [n]).get(n)!;
    expect(st.tree.length).toBe(1);
    const leaf = st.tree[0];
    // Root: depth 2 over the old leaf; the old leaf becomes an index node (depth 1) pointing at itself.
    debugfs(img, [`sif <${n}> block[1] ${0x00020004}`], true);
    const node = new Uint8Array(24);
    const dv = new DataView(node.buffer);
    dv.setUint16(0, 0xf30a, true); dv.setUint16(2, 1, true); dv.setUint16(4, 84, true); dv.setUint16(6, 1, true);
    dv.setUint32(12, 0, true); dv.setUint32(16, leaf, true);
    patch(img, leaf * 1024, node);
    const s = await scanImage(img);
    expect(anomaly(s, 'bad-extent')).toMatch(new RegExp(`inode ${n}: extent node block ${leaf} is reached twice`));
    await expect(contentOf(s.vol, s.files.find((f) => f.ref === n)!)).rejects.toBeInstanceOf(GuestError);
  });

  it('two index entries sharing one leaf: the second is refused (no exponential walk)', async () => {
    const img = volume(tempDir());
    const n = ino(img, '/islands');
    const leaf = debugfsStat(img, [n]).get(n)!.tree[0];
    debugfs(img, [`sif <${n}> block[0] ${0x0002f30a}`, `sif <${n}> block[6] 100000`, `sif <${n}> block[7] ${leaf}`, `sif <${n}> block[8] 0`], true);
    const s = await scanImage(img);
    expect(anomaly(s, 'bad-extent')).toMatch(/reached twice/);
  });

  it('an extent tree deeper than 5 levels is refused for that file', async () => {
    const img = volume(tempDir());
    const n = ino(img, '/islands');
    debugfs(img, [`sif <${n}> block[1] ${0x00060004}`], true);
    const s = await scanImage(img);
    expect(anomaly(s, 'bad-extent')).toMatch(/depth 6 exceeds 5/);
    expect(s.files.find((f) => f.ref === n)!.data.isEmpty).toBe(true);
  });

  it('an extent pointing past the end of the volume is skipped and reported; reading that file fails cleanly', async () => {
    const img = volume(tempDir());
    const n = ino(img, '/one');
    debugfs(img, [`sif <${n}> block[5] 99999999`], true);
    const s = await scanImage(img);
    expect(anomaly(s, 'bad-extent')).toMatch(/points to blocks 99999999\.\.\d+, outside the file system/);
    await expect(contentOf(s.vol, s.files.find((f) => f.ref === n)!)).rejects.toThrow(/outside the file system/);
  });

  it('ext2: a block pointer and an indirect pointer past the end are skipped and reported', async () => {
    const img = volume(tempDir(), ['-t', 'ext2', '-b', '1024']);
    const n = ino(img, '/one');
    debugfs(img, [`sif <${n}> block[1] 88888888`, `sif <${n}> block[IND] 77777777`], true);
    const s = await scanImage(img);
    const m = anomaly(s, 'bad-extent');
    expect(m).toMatch(/block pointer 88888888/);
    expect(m).toMatch(/indirect block pointer 77777777/);
  });

  it('a directory loop (a hard link from a subdirectory back to its ancestor) ends, naming the second link', async () => {
    const img = volume(tempDir());
    debugfs(img, ['ln d d/e/back-to-d'], true);
    const s = await scanImage(img);
    expect(anomaly(s, 'bad-directory')).toMatch(/directory inode \d+ has a second name 'back-to-d' in directory 'd\/e'/);
    expect(s.files.find((f) => f.path === 'd/e/deep.txt')).toBeDefined();
    expect(new Set(s.files.map((f) => f.ref)).size).toBe(s.files.length);
  });

  it('a directory entry naming an inode past the last one, and a broken rec_len, are reported', async () => {
    const img = volume(tempDir());
    const d = ino(img, '/d/e');
    const block = debugfsStat(img, [d]).get(d)!.runs[0][1];
    const raw = readBytes(img, block * 1024, 1024);
    const at = raw.indexOf('deep.txt') - 8;
    patch(img, block * 1024 + at, u32le(0xfffffff0));
    let s = await scanImage(img);
    expect(anomaly(s, 'bad-directory')).toMatch(/names inode 4294967280, past the last inode/);
    patch(img, block * 1024 + at + 4, Uint8Array.of(3, 0));
    s = await scanImage(img);
    expect(anomaly(s, 'bad-directory')).toMatch(/bad length 3/);
  });

  it('a huge blocks count (more than the volume holds) is refused at open', async () => {
    const img = volume(tempDir());
    debugfs(img, ['ssv blocks_count 4000000000'], true);
    expect((await openFails(img)).message).toMatch(/do not fit in the volume/);
  });

  it('an inodes count that is not groups x inodes per group is refused', async () => {
    const img = volume(tempDir());
    debugfs(img, ['ssv inodes_count 4000000000'], true);
    expect((await openFails(img)).message).toMatch(/inodes count 4000000000 is not/);
  });

  it('an unknown incompatible feature, and bigalloc, are refused by name', async () => {
    const img = volume(tempDir());
    const sb = readBytes(img, 1024, 1024);
    patch(img, 1024 + 0x60, u32le(sb.readUInt32LE(0x60) | 0x80000));
    expect((await openFails(img)).message).toMatch(/unsupported incompatible feature\(s\): 0x80000/);
    patch(img, 1024 + 0x60, u32le(sb.readUInt32LE(0x60)));
    patch(img, 1024 + 0x64, u32le(sb.readUInt32LE(0x64) | 0x200));
    expect((await openFails(img)).message).toMatch(/bigalloc/);
  });

  it('a bad magic, a block size over 64 KiB, and a volume cut short are refused', async () => {
    const dir = tempDir();
    const img = volume(dir);
    patch(img, 1024 + 0x38, Uint8Array.of(0, 0));
    expect((await openFails(img)).message).toMatch(/bad magic/);
    const img2 = volume(tempDir());
    patch(img2, 1024 + 0x18, u32le(7));
    expect((await openFails(img2)).message).toMatch(/outside 1 KiB\.\.64 KiB/);
    const img3 = volume(tempDir());
    const cut = path.join(dir, 'cut.img');
    writeFileSync(cut, readBytes(img3, 0, 4 * MiB));
    expect((await openFails(cut)).message).toMatch(/do not fit in the volume/);
  });

  it('a group descriptor whose inode table lies past the end is refused, naming the group', async () => {
    const img = volume(tempDir());
    debugfs(img, ['set_bg 0 inode_table 99999999'], true);
    expect((await openFails(img)).message).toMatch(/group descriptor 0: inode table at block 99999999/);
  });

  it('an inode with a bad checksum, and one whose size no block map can reach, are reported', async () => {
    const img = volume(tempDir(), ['-b', '4096']);
    const n = ino(img, '/one');
    debugfs(img, [`sif <${n}> size 0x7fffffffffffff`], true);
    let s = await scanImage(img);
    expect(anomaly(s, 'bad-inode')).toMatch(new RegExp(`inode ${n}: size \\d+ is more than its block map can address`));
    await expect(contentOf(s.vol, s.files.find((f) => f.ref === n)!)).rejects.toBeInstanceOf(GuestError);
    const f = s.files.find((x) => x.ref === n)!;
    const inodeAt = f.meta.first;
    patch(img, inodeAt + 0x10, u32le(0x12345678));
    s = await scanImage(img);
    expect(anomaly(s, 'bad-checksum')).toMatch(new RegExp(`inode ${n} fails its checksum`));
  });

  it('an orphan list that loops back is cut and reported', async () => {
    const img = volume(tempDir());
    const n = ino(img, '/one');
    debugfs(img, [`sif <${n}> dtime ${n}`, `ssv last_orphan ${n}`], true);
    const s = await scanImage(img);
    expect(anomaly(s, 'bad-inode')).toMatch(new RegExp(`orphan list loops back to inode ${n}`));
  });

  it('blocks claimed by two files are double-owned; a file block marked free is owned-but-free', async () => {
    const img = volume(tempDir());
    const a = ino(img, '/one');
    const b = ino(img, '/d/e/deep.txt');
    const st = debugfsStat(img, [a, b]);
    const blockOfA = st.get(a)!.runs[0][1];
    debugfs(img, [`sif <${b}> block[5] ${blockOfA}`, `freeb ${st.get(b)!.runs[0][1]}`], true);
    const s = await scanImage(img);
    expect(anomaly(s, 'double-owned')).toMatch(new RegExp(`inode ${Math.min(a, b)} and inode ${Math.max(a, b)} at byte ${blockOfA * 1024}`));
    debugfs(img, [`freeb ${blockOfA}`], true);
    const s2 = await scanImage(img);
    expect(anomaly(s2, 'owned-but-free')).toMatch(/marked free/);
  });

  it('inode numbers out of range: an orphan list head past the last inode, a file handle naming inode 0 or past the end', async () => {
    const img = volume(tempDir());
    debugfs(img, ['ssv last_orphan 4000000000'], true);
    const s = await scanImage(img);
    expect(anomaly(s, 'bad-inode')).toMatch(/orphan list names inode 4000000000, which is not in use/);
    const f = s.files.find((x) => x.path === 'one')!;
    for (const ref of [0, s.vol.superblock.inodesCount + 1, -3, 1.5]) {
      await expect(contentOf(s.vol, { ...f, ref })).rejects.toThrow(/out of range/);
    }
    await expect(contentOf(s.vol, { ...f, id: `ino:${f.ref}:999` })).rejects.toThrow(/changed since it was scanned/);
  });

  it('a file block inside an inode table is double-owned, named by group and inode', async () => {
    const img = volume(tempDir());
    const n = ino(img, '/one');
    const table = Number(/Inode table at (\d+)/.exec(run('dumpe2fs', [img]))![1]);
    debugfs(img, [`sif <${n}> block[5] ${table + 1}`], true);
    const s = await scanImage(img);
    expect(anomaly(s, 'double-owned')).toMatch(new RegExp(`inode table of group 0 and inode ${n} at byte ${(table + 1) * 1024}`));
  });
});
