/**
 * The NTFS reader on trees the ntfs-3g driver wrote through FUSE:
 * directories, deletions, hard links, named streams, sparse files, a file
 * fragmented into an attribute list and extension records, a fragmented
 * $MFT, a dirty flag and a hibernation file. Checked against Sleuth Kit and
 * ntfs-3g's own tools. Skipped without /dev/fuse (or when not root).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, linkSync } from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/guest.js';
import { RangeSet } from '../../src/guest/ranges.js';
import { tempDir } from '../helpers/tmp.js';
import { contentOf, diffWithTsk, HAVE_FUSE, HAVE_TSK, mkntfs, recordOf, scanImage, withMounted, withMountedOptions } from '../helpers/ntfsImages.js';

/** Fills the volume with 2 KiB files, frees every other one, then writes `big` into the holes until the volume is full. */
function fragment(mnt: string): number {
  mkdirSync(path.join(mnt, 'fill'));
  let n = 0;
  try {
    for (;; n++) writeFileSync(path.join(mnt, 'fill', String(n)), randomBytes(2048));
  } catch { /* full */ }
  for (let i = 0; i < n; i += 2) rmSync(path.join(mnt, 'fill', String(i)));
  const fd = openSync(path.join(mnt, 'big'), 'w');
  try {
    for (;;) writeSync(fd, randomBytes(4096));
  } catch { /* full */ } finally {
    closeSync(fd);
  }
  // New records after the holes were filled make the $MFT grow in fragments.
  for (let i = 1; i < n; i += 4) rmSync(path.join(mnt, 'fill', String(i)));
  try {
    for (let k = 0; k < 1500; k++) writeFileSync(path.join(mnt, 'fill', `t${k}`), 'x');
  } catch { /* full */ }
  return n;
}

/** What ntfs-3g says when it mounts `img` read-write (it refuses a hibernated volume and falls back to read-only). */
function ntfs3gMountMessage(img: string): string {
  const mnt = tempDir('ntfs-hib-');
  const r = spawnSync('ntfs-3g', [img, mnt], { encoding: 'utf8' });
  if (r.status === 0) spawnSync('umount', [mnt]);
  return r.stderr;
}

describe.skipIf(!HAVE_FUSE || !HAVE_TSK)('NTFS trees written by ntfs-3g', () => {
  const dir = tempDir('ntfs-trees-');

  it('reads directories, deletions, hard links, named streams and sparse files as Sleuth Kit and ntfsinfo do', async () => {
    const img = mkntfs(path.join(dir, 'tree.img'), 24 << 20, 1024);
    const blob = randomBytes(70_000);
    await withMounted(img, (m) => {
      mkdirSync(path.join(m, 'docs/deep/er'), { recursive: true });
      mkdirSync(path.join(m, 'Temp'));
      writeFileSync(path.join(m, 'docs/deep/er/blob.bin'), blob);
      writeFileSync(path.join(m, 'docs/deep/er/blob.bin:stream.one'), randomBytes(5000));
      writeFileSync(path.join(m, 'docs/deep/er/blob.bin:tiny'), 'resident stream');
      linkSync(path.join(m, 'docs/deep/er/blob.bin'), path.join(m, 'Temp/hardlink.bin'));
      for (let i = 0; i < 120; i++) writeFileSync(path.join(m, 'Temp', `f${i}.dat`), randomBytes(100 + 37 * i));
      for (let i = 0; i < 120; i += 3) rmSync(path.join(m, 'Temp', `f${i}.dat`));
      const fd = openSync(path.join(m, 'sparse.bin'), 'w');
      writeSync(fd, Buffer.from('head'), 0, 4, 0);
      writeSync(fd, Buffer.from('tail'), 0, 4, 5_000_000);
      closeSync(fd);
      writeFileSync(path.join(m, 'ünïcødé ✓.txt'), 'names are UTF-16');
    });
    const { vol, scan, files } = await scanImage(img);
    expect(scan.anomalies).toEqual([]);
    expect(diffWithTsk(img, scan, files, 1024)).toEqual([]);
    const by = new Map(files.map((f) => [f.path, f]));
    const blobFile = by.get('docs/deep/er/blob.bin')!;
    expect(blobFile, 'a hard-linked file has one entry, under its first name').toBeDefined();
    expect(by.has('Temp/hardlink.bin')).toBe(false);
    expect(await contentOf(vol, blobFile)).toEqual(blob);
    expect((await contentOf(vol, by.get('docs/deep/er/blob.bin:tiny')!)).toString()).toBe('resident stream');
    expect(by.get('docs/deep/er/blob.bin:stream.one')!.data.bytes).toBe(5120);
    const sparse = by.get('sparse.bin')!;
    const content = await contentOf(vol, sparse);
    expect(content.length).toBe(5_000_004);
    expect(content.subarray(0, 4).toString()).toBe('head');
    expect(content.subarray(5_000_000).toString()).toBe('tail');
    expect(content.subarray(4, 5_000_000).every((b) => b === 0)).toBe(true);
    expect(sparse.data.bytes).toBeLessThan(10_000);
    expect(by.get('ünïcødé ✓.txt')?.size).toBe(16);
    // icat agrees on content.
    expect(spawnSync('icat', [img, String(recordOf(blobFile))], { maxBuffer: 64 << 20 }).stdout).toEqual(blob);
    // The reverse map (cluster -> file) agrees with ifind and ntfscluster, at each user file's first and last cluster.
    for (const f of files.filter((x) => !x.system && !x.directory && !x.data.isEmpty).slice(0, 12)) {
      for (const c of [f.data.first / 1024, f.data.last / 1024 - 1]) {
        expect(run('ifind', ['-d', String(c), img]).trim().split('-')[0], `${f.path} cluster ${c}`).toBe(String(recordOf(f)));
        expect(run('ntfscluster', ['-c', String(c), img])).toContain(`Inode ${recordOf(f)} /`);
      }
    }
    // Every cluster belongs to exactly one class.
    expect(scan.free.intersectBytes(scan.fileData) + scan.free.intersectBytes(scan.metadata) + scan.metadata.intersectBytes(scan.fileData)).toBe(0);
    expect(scan.free.bytes + scan.metadata.bytes + scan.fileData.bytes).toBe(vol.size);
    expect(scan.files).toBe(files.filter((f) => !f.directory && !f.path.includes(':')).length);
    // With the filesTouching hint, onFile gets exactly the files (and streams) whose data touches those ranges,
    // as they are without it; the scan's maps do not change.
    const touching = RangeSet.from([
      [by.get('docs/deep/er/blob.bin:stream.one')!.data.first, by.get('docs/deep/er/blob.bin:stream.one')!.data.first + 1],
      [by.get('Temp/f119.dat')!.data.last - 1, by.get('Temp/f119.dat')!.data.last + 4096],
    ]);
    const hinted: typeof files = [];
    const again = await vol.scan({ onFile: (f) => hinted.push(f), filesTouching: touching });
    const want = files.filter((f) => f.data.intersectBytes(touching) > 0);
    expect(want.length).toBeGreaterThanOrEqual(2);
    expect(hinted).toEqual(want);
    expect(again.fileData.toArray()).toEqual(scan.fileData.toArray());
    expect(again.metadata.toArray()).toEqual(scan.metadata.toArray());
  });

  it('follows attribute lists into extension records and reads a fragmented $MFT', async () => {
    const img = mkntfs(path.join(dir, 'frag.img'), 6 << 20, 512);
    await withMounted(img, (m) => { fragment(m); });
    const { vol, scan, files } = await scanImage(img);
    const info = run('ntfsinfo', ['-v', '-i', '0', img]);
    expect((info.match(/^\t\t\t0x/gm) ?? []).length, 'the $MFT is fragmented').toBeGreaterThan(10);
    const big = files.find((f) => f.path === 'big')!;
    expect(run('istat', [img, String(recordOf(big))])).toContain('$ATTRIBUTE_LIST');
    expect(big.meta.count, 'the extension records are the file\'s metadata').toBeGreaterThan(1);
    expect(scan.anomalies).toEqual([]);
    // Sleuth Kit and ntfsinfo on the fragmented file, its directory and the system files (the 2,000 small files are left out for time).
    expect(diffWithTsk(img, scan, files, 512, (f) => f.system || f.directory || f.path === 'big')).toEqual([]);
    const t = run('ntfscluster', [img]);
    // ntfscluster counts every non-resident attribute of a user record as user data (directory indexes, attribute lists);
    // the scan files those under metadata.
    const mft = files.find((f) => f.path === '$MFT')!.data;
    const user = files.filter((f) => !f.system);
    const indexes = user.reduce((s, f) => s + (f.directory ? f.data.bytes : f.meta.subtract(mft).bytes), 0);
    expect(scan.fileData.bytes + indexes).toBe(Number(/bytes of user data\s*:\s*(\d+)/.exec(t)?.[1]));
    expect(indexes).toBeGreaterThan(0);
    expect(scan.free.bytes).toBe(Number(/bytes of free space\s*:\s*(\d+)/.exec(t)?.[1]));
    const icat = spawnSync('icat', [img, String(recordOf(big))], { maxBuffer: 64 << 20 }).stdout;
    expect(await contentOf(vol, big)).toEqual(icat);
    // The same volume with one of big's extension records naming a stale sequence of its base.
    const ext = files.filter((f) => f.path === 'big')[0].meta.subtract(vol.recordRanges(recordOf(big)));
    const bytes = readFileSync(img);
    const at = ext.toArray().map(([s]) => s).find((s) => bytes.toString('latin1', s, s + 4) === 'FILE')!;
    bytes.writeUInt16LE(bytes.readUInt16LE(at + 38) + 1, at + 38);
    const stale = await scanImage(new Uint8Array(bytes));
    expect(stale.scan.anomalies.find((a) => a.kind === 'bad-sequence')?.message).toMatch(new RegExp(`extension of record ${recordOf(big)} with sequence`));
    await expect(contentOf(stale.vol, stale.files.find((f) => f.path === 'big')!)).rejects.toThrow(/belongs to record/);
  });

  it('maps compressed files to the clusters their runlists hold, and decompresses them (LZNT1) as icat does', async () => {
    const img = mkntfs(path.join(dir, 'compressed.img'), 16 << 20, 4096);
    const texts = new Map<string, Buffer>([
      ['z/text.txt', Buffer.from('compressible text, compressible text; '.repeat(12_000))],
      ['z/mixed.bin', Buffer.concat([Buffer.from('abc'.repeat(30_000)), randomBytes(70_000), Buffer.alloc(200_000), Buffer.from('end')])],
      ['z/random.bin', randomBytes(150_000)],
      ['z/small.txt', Buffer.from('x'.repeat(5000))],
    ]);
    await withMountedOptions(img, 'compression', (m) => {
      mkdirSync(path.join(m, 'z'));
      spawnSync('setfattr', ['-n', 'system.ntfs_attrib_be', '-v', '0x00000800', path.join(m, 'z')]);
      for (const [p, b] of texts) writeFileSync(path.join(m, p), b);
    });
    const { vol, scan, files } = await scanImage(img);
    expect(scan.anomalies).toEqual([]);
    expect(diffWithTsk(img, scan, files, 4096)).toEqual([]);
    const text = files.find((f) => f.path === 'z/text.txt')!;
    expect(text.data.bytes, 'a compressed file holds fewer clusters than its size').toBeLessThan(text.size / 4);
    for (const [p, b] of texts) {
      const f = files.find((x) => x.path === p)!;
      const got = await contentOf(vol, f);
      expect(got.equals(b), p).toBe(true);
      expect(got.equals(spawnSync('icat', [img, String(recordOf(f))], { maxBuffer: 64 << 20 }).stdout), p).toBe(true);
    }
  });

  it('reports a hibernated volume (hiberfil.sys starting "hibr" or "HIBR") that ntfs-3g refuses to mount', async () => {
    for (const sig of ['hibr', 'HIBR']) {
      const img = mkntfs(path.join(dir, `hib-${sig}.img`), 8 << 20, 4096);
      await withMounted(img, (m) => {
        const head = Buffer.alloc(8192);
        head.write(sig, 0, 'latin1');
        writeFileSync(path.join(m, 'hiberfil.sys'), head);
      });
      const { scan } = await scanImage(img);
      expect(scan.state.state).toBe('hibernated');
      expect(scan.state.reasons[0]).toContain(sig);
      expect(ntfs3gMountMessage(img)).toMatch(/Windows is hibernated/);
    }
    const img = mkntfs(path.join(dir, 'hib-zero.img'), 8 << 20, 4096);
    await withMounted(img, (m) => { writeFileSync(path.join(m, 'hiberfil.sys'), Buffer.alloc(8192)); });
    expect((await scanImage(img)).scan.state.state).toBe('clean');
    expect(ntfs3gMountMessage(img)).not.toMatch(/hibernated/);
  });
});
