/**
 * The ext reader on images mkfs.ext4 -d made, across the layouts that change
 * where things are (block sizes, 64bit, flex_bg, uninit_bg, meta_bg,
 * sparse_super2, ext2/ext3 indirect maps, inline data), every figure checked
 * against dumpe2fs, debugfs and Sleuth Kit.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { mkdirSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { HAVE_DEBUGFS, HAVE_MKFS_EXT4, HAVE_TSK } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { debugfs, debugfsStat, dumpe2fsFree, dumpe2fsHeader, blklsFree, mkfs, sampleTree } from './extOracle.js';
import { contentOf, scanImage, verifyAgainstOracles } from './extVerify.js';
import { RangeSet } from '../../src/guest/ranges.js';
import { READERS, PROBE_BYTES } from '../../src/guest/readers.js';
import { readBytes } from './extOracle.js';

const TOOLS = HAVE_MKFS_EXT4 && HAVE_DEBUGFS && HAVE_TSK;
const MiB = 1024 * 1024;

interface Layout {
  name: string;
  bytes: number;
  args: string[];
  kind: 'ext2' | 'ext3' | 'ext4';
  /** Sleuth Kit reads it (it gives up on 64 KiB blocks). */
  tsk?: boolean;
  /** Run e2fsck -fy after mkfs: 'fix' (mkfs -d leaves quota usage stale), 'htree' (-D: index big directories). */
  fsck?: 'fix' | 'htree';
}

const LAYOUTS: Layout[] = [
  { name: 'ext4, 4 KiB blocks, 64bit, flex_bg, metadata_csum (mkfs defaults)', bytes: 48 * MiB, args: [], kind: 'ext4' },
  { name: 'ext4, 1 KiB blocks, 8 groups, BLOCK_UNINIT groups holding backups, htree directories', bytes: 64 * MiB, args: ['-b', '1024'], kind: 'ext4', fsck: 'htree' },
  { name: 'ext4, 32-bit descriptors (^64bit), no flex_bg, uninit_bg (CRC-16 descriptors)', bytes: 40 * MiB, args: ['-b', '1024', '-O', '^64bit,^flex_bg,^metadata_csum,uninit_bg'], kind: 'ext4' },
  { name: 'ext4, meta_bg without resize inode', bytes: 40 * MiB, args: ['-b', '1024', '-O', 'meta_bg,^resize_inode'], kind: 'ext4' },
  { name: 'ext4, sparse_super2, 2 KiB blocks', bytes: 40 * MiB, args: ['-b', '2048', '-O', 'sparse_super2'], kind: 'ext4' },
  { name: 'ext4, inline_data (small files and directories in the inode)', bytes: 32 * MiB, args: ['-O', 'inline_data'], kind: 'ext4' },
  { name: 'ext4, quota and project quota (system inodes), orphan_file', bytes: 32 * MiB, args: ['-O', 'quota,project,orphan_file'], kind: 'ext4', fsck: 'fix' },
  { name: 'ext4, casefold and encrypt enabled, 128 MiB with metadata_csum_seed', bytes: 128 * MiB, args: ['-O', 'casefold,encrypt,metadata_csum_seed'], kind: 'ext4' },
  { name: 'ext4, 64 KiB blocks', bytes: 128 * MiB, args: ['-b', '65536'], kind: 'ext4', tsk: false },
  { name: 'ext3 (journal, indirect blocks), 1 KiB blocks, htree directories', bytes: 40 * MiB, args: ['-t', 'ext3', '-b', '1024'], kind: 'ext3', fsck: 'htree' },
  { name: 'ext2 (indirect blocks), 4 KiB blocks, 128-byte inodes', bytes: 40 * MiB, args: ['-t', 'ext2', '-I', '128'], kind: 'ext2' },
  { name: 'ext4 without extents (^extent: indirect maps), 1 KiB blocks', bytes: 40 * MiB, args: ['-b', '1024', '-O', '^extent,^64bit'], kind: 'ext4' },
];

describe.skipIf(!TOOLS)('ext reader against e2fsprogs and Sleuth Kit', () => {
  for (const l of LAYOUTS) {
    it(l.name, async () => {
      const dir = tempDir('vhdtool-ext-');
      const img = mkfs(path.join(dir, 'fs.img'), l.bytes, l.args, sampleTree(path.join(dir, 'src')));
      if (l.fsck) spawnSync('e2fsck', [l.fsck === 'htree' ? '-fyD' : '-fy', img]);
      if (l.fsck === 'htree') expect(debugfsStat(img, [Number(/Inode: (\d+)/.exec(debugfs(img, ['stat /big']))![1])]).values().next().value!.flags & 0x1000).toBe(0x1000);
      const s = await scanImage(img);
      expect(s.vol.kind).toBe(l.kind);
      expect(s.scan.state).toEqual({ state: 'clean', reasons: [] });
      expect(s.files.some((f) => f.path === 'docs/deep/er/nested.dat')).toBe(true);
      const f5 = s.files.find((f) => f.path === 'file5.bin')!;
      const acl = debugfsStat(img, [f5.ref]).get(f5.ref)!.fileAcl;
      expect(acl).toBeGreaterThan(0);
      expect(f5.meta.covers(acl * s.vol.clusterSize, (acl + 1) * s.vol.clusterSize)).toBe(true);
      await verifyAgainstOracles(img, s, { tsk: l.tsk ?? true });
    });
  }

  it('names the layout features that matter in its preconditions (BLOCK_UNINIT groups, meta_bg, sparse_super2 are really there)', () => {
    const dir = tempDir('vhdtool-ext-');
    const a = mkfs(path.join(dir, 'a.img'), 64 * MiB, ['-b', '1024']);
    const groups = debugfs(a, ['stats']);
    expect(groups).toMatch(/Group\s+1:[^\n]*\n[^\n]*\n\s*\[[^\]]*Block not init/);
    const b = mkfs(path.join(dir, 'b.img'), 40 * MiB, ['-b', '1024', '-O', 'meta_bg,^resize_inode']);
    expect(dumpe2fsHeader(b).get('Filesystem features')).toContain('meta_bg');
    const c = mkfs(path.join(dir, 'c.img'), 40 * MiB, ['-b', '2048', '-O', 'sparse_super2']);
    expect(dumpe2fsHeader(c).get('Filesystem features')).toContain('sparse_super2');
  });

  it('without BLOCK_UNINIT groups, the free map also equals Sleuth Kit blkls', async () => {
    const dir = tempDir('vhdtool-ext-');
    const img = mkfs(path.join(dir, 'fs.img'), 24 * MiB, ['-t', 'ext3', '-b', '1024'], sampleTree(path.join(dir, 'src'), { bigDir: 20 }));
    const s = await scanImage(img);
    const bs = s.vol.clusterSize;
    const tsk = RangeSet.from(blklsFree(img).map((b) => [b * bs, (b + 1) * bs] as [number, number]));
    expect(s.scan.free.toArray()).toEqual(tsk.toArray());
  });

  it('a deep extent tree (depth 2), a double and a triple indirect block, and a large sparse file map right', async () => {
    const dir = tempDir('vhdtool-ext-');
    const src = path.join(dir, 'src');
    mkdirSync(src);
    // 400 islands on 1 KiB blocks: more extents than 4 leaves of 84 hold -> depth 2.
    const fd = openSync(path.join(src, 'islands'), 'w');
    for (let i = 0; i < 400; i++) writeSync(fd, Buffer.alloc(1024, i & 0xff), 0, 1024, i * 4096);
    closeSync(fd);
    // Past 12 + 256 + 65536 blocks of 1 KiB: the triple indirect block.
    const far = openSync(path.join(src, 'tind'), 'w');
    writeSync(far, Buffer.from('dind'), 0, 4, 300 * 1024);
    writeSync(far, Buffer.from('tind'), 0, 4, 70 * MiB);
    closeSync(far);
    writeFileSync(path.join(src, 'small'), 'x');
    const ext4 = mkfs(path.join(dir, 'ext4.img'), 16 * MiB, ['-b', '1024'], src);
    const s4 = await scanImage(ext4);
    const st = debugfsStat(ext4, [s4.files.find((f) => f.path === 'islands')!.ref]);
    expect(st.values().next().value!.tree.length).toBeGreaterThan(5);
    await verifyAgainstOracles(ext4, s4);
    const ext2 = mkfs(path.join(dir, 'ext2.img'), 16 * MiB, ['-t', 'ext2', '-b', '1024'], src);
    const s2 = await scanImage(ext2);
    const tind = s2.files.find((f) => f.path === 'tind')!;
    expect(debugfs(ext2, ['stat /tind'])).toMatch(/\(TIND\):\d+/);
    expect(tind.meta.bytes).toBeGreaterThan(5 * 1024);
    await verifyAgainstOracles(ext2, s2);
    const content = await contentOf(s2.vol, tind);
    expect(content.length).toBe(70 * MiB + 4);
    expect(content.subarray(70 * MiB).toString()).toBe('tind');
    expect(content.subarray(300 * 1024, 300 * 1024 + 4).toString()).toBe('dind');
  });

  it('debugfs -w edits (write, mkdir, rm, ln, fallocate: uninitialised extents) are seen exactly', async () => {
    const dir = tempDir('vhdtool-ext-');
    const img = mkfs(path.join(dir, 'fs.img'), 32 * MiB, [], sampleTree(path.join(dir, 'src'), { bigDir: 40 }));
    const host = path.join(dir, 'host.bin');
    writeFileSync(host, Buffer.alloc(300_000, 7));
    debugfs(img, [
      'mkdir new', `write ${host} new/written.bin`, 'rm file3.bin', 'rm docs/readme.txt', 'ln file5.bin new/link-to-5',
      'sif file5.bin links_count 2', 'fallocate file7.bin 60 90', `write ${host} new/second.bin`,
      'fallocate new/second.bin 500 540', 'rmdir "empty dir"',
    ], true);
    const s = await scanImage(img);
    const second = s.files.find((f) => f.path === 'new/second.bin')!;
    const st = debugfsStat(img, [second.ref]).get(second.ref)!;
    expect(st.runs.some((r) => r[3])).toBe(true);
    expect(s.files.some((f) => f.path === 'file3.bin')).toBe(false);
    await verifyAgainstOracles(img, s);
    // Uninitialised extents are allocated (file data) but read as zeros.
    const c = await contentOf(s.vol, s.files.find((f) => f.path === 'file7.bin')!);
    expect(c.length).toBe(7 * 7000 + 13);
  });

  it('is probed by content through READERS, and its label is read', async () => {
    const dir = tempDir('vhdtool-ext-');
    const img = mkfs(path.join(dir, 'fs.img'), 8 * MiB, ['-b', '4096', '-L', 'my-label']);
    const head = new Uint8Array(readBytes(img, 0, PROBE_BYTES));
    const readers = READERS.filter((r) => r.probe(head, 8 * MiB));
    expect(readers.map((r) => r.name)).toEqual(['ext']);
    const s = await scanImage(img);
    expect(s.vol.label).toBe('my-label');
    expect(s.vol.clusterArea).toEqual({ start: 0, end: 8 * MiB });
    const zeros = new Uint8Array(PROBE_BYTES);
    expect(READERS.find((r) => r.name === 'ext')!.probe(zeros, 8 * MiB)).toBe(false);
  });

  it('1 KiB blocks: the boot block before block 1 is metadata outside the cluster area', async () => {
    const dir = tempDir('vhdtool-ext-');
    const img = mkfs(path.join(dir, 'fs.img'), 8 * MiB, ['-b', '1024']);
    const s = await scanImage(img);
    expect(s.vol.clusterArea).toEqual({ start: 1024, end: 8 * MiB });
    expect(s.scan.metadata.covers(0, 1024)).toBe(true);
    expect(dumpe2fsFree(img).length).toBeGreaterThan(0);
  });

  it('the file system\'s own inodes are system files with names (journal, resize inode, quotas, orphan file), their blocks metadata', async () => {
    const dir = tempDir('vhdtool-ext-');
    const img = mkfs(path.join(dir, 'fs.img'), 32 * MiB, ['-O', 'quota,project,orphan_file']);
    const s = await scanImage(img);
    const sys = s.files.filter((f) => f.system).map((f) => f.path).sort();
    expect(sys).toEqual(['<group quota>', '<journal>', '<orphan file>', '<project quota>', '<resize inode>', '<user quota>']);
    for (const f of s.files.filter((x) => x.system)) {
      expect(s.scan.fileData.intersectBytes(f.data)).toBe(0);
      expect(s.scan.metadata.intersectBytes(f.data)).toBe(f.data.bytes);
    }
    const h = dumpe2fsHeader(img);
    expect(s.files.find((f) => f.path === '<journal>')!.data.bytes).toBe(Number(h.get('Total journal blocks')) * Number(h.get('Block size')));
  });

  it('an aborted signal stops the scan with INTERRUPTED, before or during it', async () => {
    const dir = tempDir('vhdtool-ext-');
    const img = mkfs(path.join(dir, 'fs.img'), 16 * MiB, [], sampleTree(path.join(dir, 'src'), { bigDir: 20 }));
    const s = await scanImage(img);
    const ac = new AbortController();
    ac.abort();
    await expect(s.vol.scan({ signal: ac.signal })).rejects.toMatchObject({ code: 'INTERRUPTED' });
    const late = new AbortController();
    let seen = 0;
    await expect(s.vol.scan({ signal: late.signal, onFile: () => { if (++seen === 1) late.abort(); } })).rejects.toMatchObject({ code: 'INTERRUPTED' });
  });
});
