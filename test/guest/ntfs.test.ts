/**
 * The NTFS reader on volumes mkntfs made, checked against ntfs-3g's own
 * tools (ntfscluster, ntfsinfo) and Sleuth Kit (fls, istat, blkls, fsstat).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/guest.js';
import { tempDir } from '../helpers/tmp.js';
import { contentOf, diffWithTsk, HAVE_MKNTFS, HAVE_TSK, mkntfs, scanImage } from '../helpers/ntfsImages.js';
import { ntfsReader } from '../../src/guest/ntfs/index.js';
import { READERS } from '../../src/guest/readers.js';

/** ntfscluster's totals: free, user data and metadata bytes. */
function ntfsclusterTotals(img: string): { free: number; data: number; meta: number; volume: number } {
  const out = run('ntfscluster', [img]);
  const get = (k: string) => Number(new RegExp(`${k}\\s*:\\s*(\\d+)`).exec(out)?.[1]);
  return { free: get('bytes of free space'), data: get('bytes of user data'), meta: get('bytes of metadata'), volume: get('bytes per volume') };
}

/** Where $Volume's $VOLUME_INFORMATION flags lie in a fresh mkntfs image (walked here by hand, not by the reader). */
function volumeFlagsOffset(b: Buffer, mirror = false): number {
  const cs = b.readUInt16LE(0x0b) * b[0x0d];
  const rec = Number(b.readBigUInt64LE(mirror ? 0x38 : 0x30)) * cs + 3 * 1024;
  let p = rec + b.readUInt16LE(rec + 20);
  while (b.readUInt32LE(p) !== 0x70) p += b.readUInt32LE(p + 4);
  const at = p + b.readUInt16LE(p + 20) + 10;
  if (at % 512 >= 510) throw new Error('the flags lie under a fixup');
  return at;
}

describe.skipIf(!HAVE_MKNTFS)('NTFS volumes made by mkntfs and ntfscp', () => {
  const dir = tempDir('ntfs-');
  const payload = randomBytes(300_001);
  const small = Buffer.from('a small file, resident in its MFT record\n');
  writeFileSync(path.join(dir, 'payload.bin'), payload);
  writeFileSync(path.join(dir, 'small.txt'), small);

  it('is registered and probed by its boot sector', async () => {
    expect(READERS).toContain(ntfsReader);
    const img = mkntfs(path.join(dir, 'probe.img'), 8 << 20);
    const head = new Uint8Array(readFileSync(img).subarray(0, 128 * 1024));
    expect(ntfsReader.probe(head, 8 << 20)).toBe(true);
    head[3] = 0x41;
    expect(ntfsReader.probe(head, 8 << 20)).toBe(false);
  });

  for (const cs of [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 2097152]) {
    const full = cs === 512 || cs === 4096 || cs === 65536;
    it(`reads a volume with ${cs}-byte clusters as ntfscluster${full ? ', fsstat, fls, istat, ntfsinfo and blkls' : ''} do`, async () => {
      const img = mkntfs(path.join(dir, `c${cs}.img`), cs > 65536 ? 48 << 20 : 16 << 20, cs, ['-L', `Vol${cs}`]);
      run('ntfscp', ['-q', img, path.join(dir, 'payload.bin'), 'payload.bin']);
      run('ntfscp', ['-q', img, path.join(dir, 'small.txt'), 'small.txt']);
      const { vol, scan, files } = await scanImage(img);
      expect(vol.clusterSize).toBe(cs);
      expect(vol.label).toBe(`Vol${cs}`);
      expect(scan.state).toEqual({ state: 'clean', reasons: [] });
      const t = ntfsclusterTotals(img);
      expect(vol.clusterArea.end).toBe(t.volume);
      expect(scan.free.bytes).toBe(t.free);
      expect(scan.fileData.bytes).toBe(t.data);
      expect(scan.metadata.bytes).toBe(t.meta + (vol.size - t.volume));
      expect(scan.anomalies).toEqual([]);
      // The three classes partition the volume.
      expect(scan.free.bytes + scan.metadata.bytes + scan.fileData.bytes).toBe(vol.size);
      const byPath = new Map(files.map((f) => [f.path, f]));
      expect(byPath.get('payload.bin')?.size).toBe(payload.length);
      expect(await contentOf(vol, byPath.get('payload.bin')!)).toEqual(payload);
      expect(await contentOf(vol, byPath.get('small.txt')!)).toEqual(small);
      expect(byPath.get('small.txt')!.data.isEmpty).toBe(true);
      if (HAVE_TSK && full) {
        const fsstat = run('fsstat', [img]);
        expect(fsstat).toContain(`Cluster Size: ${cs}`);
        expect(fsstat).toContain(`First Cluster of MFT: ${vol.geometry.mftLcn}`);
        expect(fsstat).toContain(`Volume Name: Vol${cs}`);
        expect(diffWithTsk(img, scan, files, cs)).toEqual([]);
      }
    });
  }

  it('reads a 4Kn volume (4096-byte sectors, 4 KiB MFT records, fixups still every 512 bytes) as ntfscluster and Sleuth Kit do', async () => {
    const img = mkntfs(path.join(dir, '4kn.img'), 16 << 20, 4096, ['-s', '4096']);
    run('ntfscp', ['-q', img, path.join(dir, 'payload.bin'), 'payload.bin']);
    const { vol, scan, files } = await scanImage(img);
    expect(vol.geometry.bytesPerSector).toBe(4096);
    expect(vol.geometry.recordSize).toBe(4096);
    const t = ntfsclusterTotals(img);
    expect([scan.free.bytes, scan.fileData.bytes, scan.metadata.bytes]).toEqual([t.free, t.data, t.meta + vol.size - t.volume]);
    expect(await contentOf(vol, files.find((f) => f.path === 'payload.bin')!)).toEqual(payload);
    if (HAVE_TSK) expect(diffWithTsk(img, scan, files, 4096)).toEqual([]);
  });

  it('reports a dirty volume as ntfsinfo sees its flag, and a clean one once ntfsfix -d clears it', async () => {
    const img = mkntfs(path.join(dir, 'dirty.img'), 8 << 20, 4096);
    const bytes = readFileSync(img);
    bytes[volumeFlagsOffset(bytes)] |= 1;
    bytes[volumeFlagsOffset(bytes, true)] |= 1;
    writeFileSync(img, bytes);
    expect(run('ntfsinfo', ['-m', '-f', img])).toMatch(/Volume Flags: 0x0001/);
    const { scan } = await scanImage(img);
    expect(scan.state.state).toBe('dirty');
    expect(scan.state.reasons).toEqual(['$Volume is marked dirty (chkdsk is due)']);
    run('ntfsfix', ['-d', img]);
    expect(run('ntfsinfo', ['-m', img])).toMatch(/Volume Flags: 0x0000/);
    expect((await scanImage(img)).scan.state).toEqual({ state: 'clean', reasons: [] });
  });

  it('gives the backup boot sector and the slack past the last cluster to metadata, never to free', async () => {
    const img = mkntfs(path.join(dir, 'odd.img'), (16 << 20) + 7 * 512, 4096);
    const { vol, scan } = await scanImage(img);
    expect(vol.clusterArea.end % 4096).toBe(0);
    expect(vol.clusterArea.end).toBeLessThan(vol.size - 512);
    expect(scan.metadata.covers(vol.clusterArea.end, vol.size)).toBe(true);
    expect(scan.free.last).toBeLessThanOrEqual(vol.clusterArea.end);
    expect(run('ntfsinfo', ['-m', img])).toContain(`Volume Size in Clusters: ${vol.geometry.clusterCount}`);
  });
});
