/**
 * compact on the real Windows children and the Disk2VHD disk: the content
 * hashes in logical-sha256.txt hold after compaction; qemu-img and libvhdi
 * read the compacted dynamic disk the same.
 */
import { copyFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compact } from '../../src/ops/compact.js';
import { info } from '../../src/ops/info.js';
import { contentHash } from '../helpers/hash.js';
import { expectedHashes, HAVE_REAL, realPath } from '../helpers/real.js';
import { HAVE_PYVHDI, HAVE_QEMU, libvhdiHash, qemuHash } from '../helpers/peers.js';
import { nonMinimal } from '../helpers/minimal.js';
import { tempDir } from '../helpers/tmp.js';

const hashes = expectedHashes();

function copyPair(child: string, parent: string): string {
  const dir = tempDir();
  copyFileSync(realPath(parent), path.join(dir, parent));
  copyFileSync(realPath(child), path.join(dir, child));
  return dir;
}

describe.skipIf(!HAVE_REAL)('compact on real files', () => {
  for (const [child, parent] of [['fat-differential.vhd', 'fat-parent.vhd'], ['ntfs-differential.vhd', 'ntfs-parent.vhd']]) {
    it(`${child}: content hash unchanged, UUID kept, minimal, dry run exact`, async () => {
      const dir = copyPair(child, parent);
      const p = path.join(dir, child);
      const uuid = (await info(p)).uuid;
      expect(await contentHash(p)).toBe(hashes.get(child));
      const before = statSync(p).size;
      const dry = await compact(p, { dryRun: true, threads: 1 });
      const r = await compact(p, { threads: 1 });
      expect(await contentHash(p)).toBe(hashes.get(child));
      expect((await info(p)).uuid).toBe(uuid);
      expect(before - statSync(p).size).toBe(dry.reclaimableBytes);
      expect(r.reclaimedBytes).toBe(dry.reclaimableBytes);
      expect(await nonMinimal(p)).toEqual([]);
      // Windows' data-in-child that equals the parent is really dropped on the NTFS child.
      if (child.startsWith('ntfs')) expect(r.sectors.sameAsParent + r.sectors.zeroOverZero).toBeGreaterThan(0);
    });
  }

  it('d2v-zerofilled.vhd (Disk2VHD, all 126 blocks allocated, all zero) ends with no allocated block and the same content', async () => {
    const dir = tempDir();
    const p = path.join(dir, 'd2v.vhd');
    copyFileSync(realPath('d2v-zerofilled.vhd.bz2'), p);
    const r = await compact(p, { threads: 2 });
    expect(r.blocks.before).toBe(126);
    expect(r.blocks.after).toBe(0);
    expect(r.blocks.zero).toBe(126);
    expect((await info(p)).allocatedBlocks).toBe(0);
    expect(await contentHash(p)).toBe(hashes.get('d2v-zerofilled.vhd.bz2'));
    if (HAVE_QEMU) expect(qemuHash(p)).toBe(hashes.get('d2v-zerofilled.vhd.bz2'));
    if (HAVE_PYVHDI) expect(libvhdiHash(p).sha256).toBe(hashes.get('d2v-zerofilled.vhd.bz2'));
  });

  it('dissect-dynamic.vhd (Windows, blocks out of order) and img-63x255-4096-gpt.vhd (a mostly zero block) compact and read the same in qemu-img and libvhdi', async () => {
    for (const name of ['dissect-dynamic.vhd', 'img-63x255-4096-gpt.vhd', 'ntfs-dynamic.vhd']) {
      const dir = tempDir();
      const p = path.join(dir, name);
      copyFileSync(realPath(name), p);
      await compact(p, { threads: 1 });
      expect(await contentHash(p)).toBe(hashes.get(name));
      expect(await nonMinimal(p)).toEqual([]);
      if (HAVE_QEMU) expect(qemuHash(p)).toBe(hashes.get(name));
      if (HAVE_PYVHDI) expect(libvhdiHash(p).sha256).toBe(hashes.get(name));
    }
  });
});
