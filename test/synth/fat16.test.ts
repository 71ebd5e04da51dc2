/**
 * The sample's FAT16 writer beyond what the sample itself does: a folder
 * that grows past one cluster, a file rewritten shorter and one emptied, an
 * empty file, a deleted slot run reused; checked by fsck.fat and mtools.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Fat16Volume, fat16Layout } from '../../src/synth/fat16.js';
import { patternBytes } from '../../src/synth/random.js';
import { HAVE_MTOOLS } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { HAVE_FSCK_FAT, fsckFat } from '../guest/fatTools.js';

const when = new Date(Date.UTC(2026, 4, 6, 7, 8, 9));
const mtools = (cmd: string, args: string[], img: string) => {
  const r = spawnSync(cmd, ['-i', img, ...args], { env: { ...process.env, LC_ALL: 'C.UTF-8', MTOOLS_SKIP_CHECK: '1' }, maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r.stdout;
};

describe('fat16Layout', () => {
  it('follows fatgen103 and aligns the clusters', () => {
    const l = fat16Layout(15 * 1024 * 1024, 4);
    expect(l).toMatchObject({ reservedSectors: 4, fatSectors: 30, rootStart: 64, dataStart: 96, clusters: 7656 });
    expect(() => fat16Layout(4 * 1024 * 1024, 4)).toThrow(/not a FAT16 volume/);
  });
});

describe.skipIf(!HAVE_FSCK_FAT || !HAVE_MTOOLS)('Fat16Volume', () => {
  it('writes what fsck.fat finds clean and mtools reads back, through folder growth, rewrites and deletes', () => {
    const vol = Fat16Volume.format({ bytes: 8 * 1024 * 1024, sectorsPerCluster: 1, hiddenSectors: 0, volumeId: 1, label: 'TEST' }, when);
    vol.mount();
    vol.mkdir('Many files', when);
    const want = new Map<string, Uint8Array>();
    // 70 names of 29-30 characters, 3 long-name slots and the short entry each: with . and .. the
    // folder needs 282 slots, 18 clusters of 512 bytes (the later entry reuses a deleted run).
    for (let i = 0; i < 70; i++) {
      const p = `Many files/a file with a long name ${i}.txt`;
      want.set(p, patternBytes(100 + i * 37, i + 1));
      vol.writeFile(p, want.get(p)!, when);
    }
    for (let i = 0; i < 70; i += 3) {
      vol.deleteFile(`Many files/a file with a long name ${i}.txt`);
      want.delete(`Many files/a file with a long name ${i}.txt`);
    }
    vol.writeFile('Many files/reuses a deleted run.bin', patternBytes(1500, 99), when);
    want.set('Many files/reuses a deleted run.bin', patternBytes(1500, 99));
    vol.writeFile('big.bin', patternBytes(9000, 7), when);
    vol.rewriteFile('big.bin', patternBytes(700, 8), when);
    want.set('big.bin', patternBytes(700, 8));
    vol.writeFile('EMPTY.TXT', new Uint8Array(0), when);
    want.set('EMPTY.TXT', new Uint8Array(0));
    vol.writeFile('emptied.txt', patternBytes(2000, 9), when);
    vol.rewriteFile('emptied.txt', new Uint8Array(0), when);
    want.set('emptied.txt', new Uint8Array(0));
    vol.unmount();
    const img = path.join(tempDir(), 'fat.img');
    writeFileSync(img, vol.bytes);

    const r = fsckFat(img);
    expect(r.status, r.output).toBe(0);
    expect(r.output.trim().split('\n').length, r.output).toBe(2);
    const used = [...want.values()].reduce((n, d) => n + Math.ceil(d.length / 512), 0) + Math.ceil((2 + 70 * 4) / 16);
    expect(r.usedClusters).toBe(used);
    const listed = mtools('mdir', ['-/', '-b', '-a', '::'], img).toString().split('\n').filter((l) => l.startsWith('::/') && !l.endsWith('/')).map((l) => l.slice(3));
    expect(listed.sort()).toEqual([...want.keys()].sort());
    for (const [p, d] of want) expect(mtools('mcopy', ['-n', `::/${p}`, '-'], img).equals(Buffer.from(d)), p).toBe(true);
  });

  it('records exactly the sectors a session writes', () => {
    const vol = Fat16Volume.format({ bytes: 12 * 1024 * 1024, sectorsPerCluster: 4, hiddenSectors: 0, volumeId: 1, label: '' }, when);
    const l = vol.layout;
    expect(vol.takeWritten()).toEqual([{ sector: 0, count: l.dataStart }]);
    vol.writeFile('A.BIN', patternBytes(3000, 1), when);
    // FAT sector 0 in both copies, the root's first sector, and the file's two clusters (2 and 3).
    expect(vol.takeWritten()).toEqual([
      { sector: l.reservedSectors, count: 1 },
      { sector: l.reservedSectors + l.fatSectors, count: 1 },
      { sector: l.rootStart, count: 1 },
      { sector: l.dataStart, count: 8 },
    ]);
    vol.deleteFile('A.BIN');
    expect(vol.takeWritten()).toEqual([
      { sector: l.reservedSectors, count: 1 },
      { sector: l.reservedSectors + l.fatSectors, count: 1 },
      { sector: l.rootStart, count: 1 },
    ]);
    expect(vol.takeWritten()).toEqual([]);
  });
});
