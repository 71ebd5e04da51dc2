/**
 * Volume state: what makes an ext volume's maps untrustworthy until a mount or
 * e2fsck has run (needs_recovery, a journal holding transactions, not cleanly
 * unmounted, errors, orphans, multi-mount protection), set with debugfs -w
 * and dumpe2fs as the oracle of what was set.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { writeFileSync } from 'node:fs';
import { HAVE_DEBUGFS, HAVE_MKFS_EXT4, run } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { debugfs, dumpe2fsFree, dumpe2fsHeader, e2fsckClean, mkfs, patch, u32le } from './extOracle.js';
import { scanImage } from './extVerify.js';
import { RangeSet } from '../../src/guest/ranges.js';
import { ExtVolume } from '../../src/guest/ext/volume.js';
import { GuestError } from '../../src/guest/errors.js';
import { withImageSource } from './extVerify.js';

const TOOLS = HAVE_MKFS_EXT4 && HAVE_DEBUGFS;
const MiB = 1024 * 1024;

function small(dir: string, args: string[] = []): string {
  const src = path.join(dir, 'src');
  run('mkdir', ['-p', src]);
  writeFileSync(path.join(src, 'a.txt'), 'a'.repeat(5000));
  writeFileSync(path.join(src, 'b.txt'), 'b'.repeat(9000));
  return mkfs(path.join(dir, 'fs.img'), 16 * MiB, ['-b', '4096', ...args], src);
}

function freeOf(img: string, bs: number): Array<[number, number]> {
  return RangeSet.from(dumpe2fsFree(img).map(([a, b]) => [a * bs, b * bs] as [number, number])).toArray();
}

describe.skipIf(!TOOLS)('ext volume state', () => {
  it('a fresh volume is clean', async () => {
    const s = await scanImage(small(tempDir()));
    expect(s.scan.state).toEqual({ state: 'clean', reasons: [] });
  });

  it('needs_recovery set -> needs-recovery (the maps are still read and reported)', async () => {
    const img = small(tempDir());
    debugfs(img, ['feature needs_recovery'], true);
    expect(dumpe2fsHeader(img).get('Filesystem features')).toContain('needs_recovery');
    const s = await scanImage(img);
    expect(s.scan.state.state).toBe('needs-recovery');
    expect(s.scan.state.reasons.join(' ')).toMatch(/needs_recovery/);
    expect(s.scan.free.toArray()).toEqual(freeOf(img, 4096));
  });

  it('a journal holding a transaction (debugfs jo/jw/jc) -> needs-recovery, naming where its log starts', async () => {
    const img = small(tempDir());
    debugfs(img, ['jo', 'jw -b 300,301 /etc/hostname', 'jc'], true);
    expect(dumpe2fsHeader(img).get('Journal start')).not.toBe('0');
    const s = await scanImage(img);
    expect(s.scan.state.state).toBe('needs-recovery');
    expect(s.scan.state.reasons.join(' ')).toMatch(/journal holds transactions not yet replayed \(its log starts at block \d+\)/);
  });

  it('not cleanly unmounted (s_state 0) -> dirty; errors recorded (ERROR_FS) -> dirty with that reason', async () => {
    const img = small(tempDir());
    debugfs(img, ['ssv state 0'], true);
    expect(dumpe2fsHeader(img).get('Filesystem state')).toBe('not clean');
    let s = await scanImage(img);
    expect(s.scan.state.state).toBe('dirty');
    expect(s.scan.state.reasons.join(' ')).toMatch(/not cleanly unmounted/);
    debugfs(img, ['ssv state 3'], true);
    expect(dumpe2fsHeader(img).get('Filesystem state')).toBe('clean with errors');
    s = await scanImage(img);
    expect(s.scan.state.state).toBe('dirty');
    expect(s.scan.state.reasons.join(' ')).toMatch(/ERROR_FS/);
    expect(s.scan.state.reasons.join(' ')).not.toMatch(/not cleanly unmounted/);
  });

  it('an orphan list (a deleted file still open) -> dirty; its inode is named $OrphanFiles/OrphanFile-N (as Sleuth Kit names it) and is no anomaly', async () => {
    const img = small(tempDir());
    const ino = Number(/Inode: (\d+)/.exec(debugfs(img, ['stat /b.txt']))![1]);
    debugfs(img, ['unlink /b.txt', `sif <${ino}> links_count 0`, `ssv last_orphan ${ino}`], true);
    const s = await scanImage(img);
    expect(s.scan.state.state).toBe('dirty');
    expect(s.scan.state.reasons.join(' ')).toMatch(new RegExp(`orphan list is not empty \\(first inode ${ino}\\)`));
    const f = s.files.find((x) => x.ref === ino)!;
    expect(f.path).toBe(`$OrphanFiles/OrphanFile-${ino}`);
    expect(f.data.bytes).toBe(12288);
    expect(s.scan.fileData.covers(f.data.first, f.data.last)).toBe(true);
    expect(s.scan.anomalies.filter((a) => a.kind === 'orphan')).toEqual([]);
  });

  it('an inode in use that no directory names (debugfs unlink) is an orphan anomaly, its blocks still file data', async () => {
    const img = small(tempDir());
    const ino = Number(/Inode: (\d+)/.exec(debugfs(img, ['stat /a.txt']))![1]);
    debugfs(img, ['unlink /a.txt'], true);
    expect(e2fsckClean(img).output).toMatch(new RegExp(`Unattached inode ${ino}`));
    const s = await scanImage(img);
    expect(s.scan.state.state).toBe('clean');
    const orphan = s.scan.anomalies.find((a) => a.kind === 'orphan')!;
    expect(orphan.message).toContain(`inode ${ino}`);
    expect(s.files.find((x) => x.ref === ino)!.path).toBe(`$OrphanFiles/OrphanFile-${ino}`);
  });

  it('multi-mount protection: clean MMP is clean, an MMP block in use makes the volume dirty', async () => {
    const img = small(tempDir(), ['-O', 'mmp']);
    let s = await scanImage(img);
    expect(s.scan.state.state).toBe('clean');
    const mmp = Number(dumpe2fsHeader(img).get('MMP block number'));
    expect(s.scan.metadata.covers(mmp * 4096, (mmp + 1) * 4096)).toBe(true);
    patch(img, mmp * 4096 + 4, u32le(0x1234));
    s = await scanImage(img);
    expect(s.scan.state.state).toBe('dirty');
    expect(s.scan.state.reasons.join(' ')).toMatch(/multi-mount protection says it is in use/);
  });

  it('an external journal is noted (its state cannot be checked); an external journal device is refused', async () => {
    const dir = tempDir();
    const img = small(dir);
    debugfs(img, ['ssv journal_inum 0', 'ssv journal_uuid 11111111-2222-3333-4444-555555555555', 'ssv journal_dev 0x0801'], true);
    const s = await scanImage(img);
    const note = s.scan.anomalies.find((a) => a.kind === 'external-journal')!;
    expect(note.message).toContain('11111111222233334444555555555555');
    const jd = path.join(dir, 'journal.img');
    run('mke2fs', ['-q', '-F', '-O', 'journal_dev', '-b', '4096', jd, '4M']);
    await expect(withImageSource(jd, (src) => ExtVolume.open(src))).rejects.toThrow(/external journal device, not a file system/);
    await expect(withImageSource(jd, (src) => ExtVolume.open(src))).rejects.toBeInstanceOf(GuestError);
  });
});
