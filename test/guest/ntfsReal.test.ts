/**
 * The NTFS reader on real Windows volumes (../shared/fixtures/real), read
 * through vhdtool's chain reader: a fixed parent and its differencing child,
 * a dynamic and a fixed disk, and dissect's dynamic disk whose blocks are
 * out of order. The partition is found from the MBR here (the partition
 * module is written apart). Figures are checked against Sleuth Kit and
 * ntfsinfo on the partition's bytes extracted from the same view.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HAVE_REAL, realPath } from '../helpers/real.js';
import { tempDir } from '../helpers/tmp.js';
import { diffWithTsk, HAVE_TSK } from '../helpers/ntfsImages.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openChain } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';
import { chainSource } from '../../src/chain/guestSource.js';
import { sliceSource } from '../../src/guest/source.js';
import { NtfsVolume } from '../../src/guest/ntfs/volume.js';
import type { GuestFile } from '../../src/guest/volume.js';

async function readFixture(name: string) {
  const chain = await openChain(nodeFileSystem, realPath(name));
  try {
    const disk = chainSource(new ChainReader(chain));
    const mbr = await disk.read(0, 512);
    const dv = new DataView(mbr.buffer, mbr.byteOffset, 512);
    expect(mbr[446 + 4]).toBe(0x07);
    const start = dv.getUint32(446 + 8, true) * 512;
    const size = dv.getUint32(446 + 12, true) * 512;
    const part = await disk.read(start, size);
    const vol = await NtfsVolume.open(sliceSource(disk, start, size));
    const files: GuestFile[] = [];
    const scan = await vol.scan({ onFile: (f) => files.push(f) });
    const contents = new Map<string, Buffer>();
    for (const f of files) {
      if (f.directory || f.system) continue;
      const parts: Uint8Array[] = [];
      for await (const p of vol.readContent(f)) parts.push(p);
      contents.set(f.path, Buffer.concat(parts));
    }
    return { start, vol, scan, files, part, contents };
  } finally {
    await chain.close();
  }
}

describe.skipIf(!HAVE_REAL)('NTFS on real Windows disks', () => {
  const dir = tempDir('ntfs-real-');

  for (const name of ['ntfs-parent.vhd', 'ntfs-differential.vhd', 'ntfs-dynamic.vhd', 'ntfs-fixed.vhd', 'dissect-dynamic.vhd']) {
    it(`${name}: clean, and every file, stream and free cluster as Sleuth Kit and ntfsinfo see them`, async () => {
      const r = await readFixture(name);
      expect(r.start).toBe(128 * 512);
      expect(r.scan.state).toEqual({ state: 'clean', reasons: [] });
      expect(r.scan.anomalies).toEqual([]);
      expect(r.scan.free.bytes + r.scan.metadata.bytes + r.scan.fileData.bytes).toBe(r.vol.size);
      if (!HAVE_TSK) return;
      const img = path.join(dir, `${name}.part`);
      writeFileSync(img, r.part);
      expect(diffWithTsk(img, r.scan, r.files, r.vol.clusterSize)).toEqual([]);
    });
  }

  it('the differencing child shows the files Windows added over its parent', async () => {
    const parent = await readFixture('ntfs-parent.vhd');
    const child = await readFixture('ntfs-differential.vhd');
    const before = new Set(parent.files.map((f) => f.path));
    const added = child.files.map((f) => f.path).filter((p) => !before.has(p)).sort();
    expect(added).toEqual(['System Volume Information/IndexerVolumeGuid', 'a_directory', 'a_directory/a_file', 'a_directory/another_file', 'a_link', 'passwords.txt']);
    expect(child.contents.get('passwords.txt')?.length).toBe(126);
    expect(child.contents.get('a_directory/a_file')?.toString()).toMatch(/\S/);
    expect(child.vol.label).toBe('TestVolume');
  });
});
