/**
 * The real fixtures (Windows diskpart, FreeBSD mkimg, qemu, node-vhd's
 * Windows GPT disk) read through vhdtool's chain reader, each table checked
 * against sfdisk --json and Sleuth Kit's mmls run on the same guest bytes.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChainReader } from '../../src/chain/reader.js';
import { chainSource } from '../../src/chain/guestSource.js';
import { openChain } from '../../src/chain/openChain.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { readPartitionTable } from '../../src/guest/partitions/index.js';
import type { PartitionTable } from '../../src/guest/partitions/types.js';
import { HAVE_SFDISK, HAVE_TSK } from '../helpers/guest.js';
import { HAVE_REAL, realPath } from '../helpers/real.js';
import { mmls, mmlsPartitions, sfdiskPartitions } from '../helpers/tables.js';
import { tempDir } from '../helpers/tmp.js';

const HAVE_BLKID = spawnSync('blkid', ['--version'], { stdio: 'ignore' }).error === undefined;

async function tableOf(name: string): Promise<PartitionTable> {
  const chain = await openChain(nodeFileSystem, realPath(name));
  try {
    return await readPartitionTable(chainSource(new ChainReader(chain)));
  } finally {
    await chain.close();
  }
}

/**
 * The fixture's guest bytes where partition tables live (its first and last
 * MiB; none of these disks has an EBR chain) in a sparse raw file of the
 * disk's size, for the oracles.
 */
async function raw(name: string): Promise<string> {
  const f = path.join(tempDir(), `${path.basename(name)}.raw`);
  const chain = await openChain(nodeFileSystem, realPath(name));
  const fd = openSync(f, 'w');
  try {
    const reader = new ChainReader(chain);
    const n = Math.min(1024 * 1024, reader.size);
    ftruncateSync(fd, reader.size);
    writeSync(fd, await reader.read(0, n), 0, n, 0);
    writeSync(fd, await reader.read(reader.size - n, n), 0, n, reader.size - n);
  } finally {
    closeSync(fd);
    await chain.close();
  }
  return f;
}

const CASES: Array<[string, 'mbr' | 'gpt' | 'none', number]> = [
  ['ntfs-parent.vhd', 'mbr', 1],
  ['ntfs-differential.vhd', 'mbr', 1],
  ['fat-parent.vhd', 'mbr', 1],
  ['fat-differential.vhd', 'mbr', 1],
  ['dissect-fixed.vhd', 'mbr', 1],
  ['node-vhd-fixed.vhd', 'mbr', 1],
  ['img-63x255-512-mbr.vhd', 'mbr', 1],
  ['vhd.hexpat.vhd', 'mbr', 0],
  ['img-1x1-512-gpt.vhd', 'gpt', 2],
  ['img-63x255-4096-gpt.vhd', 'gpt', 2],
  ['node-vhd-dynamic.vhd.gz', 'gpt', 4],
  ['encrypt-cloud-image-dynamic.vhd', 'gpt', 0],
  ['ext2.vhd', 'none', 1],
  ['sleuthkit-image.vhd', 'none', 1],
  ['minimal.vhd', 'none', 0],
];

describe.skipIf(!HAVE_REAL)('real fixtures', () => {
  for (const [name, scheme, count] of CASES) {
    it(`${name}: ${scheme}, ${count} partition(s), as sfdisk and mmls read it`, async () => {
      const t = await tableOf(name);
      expect(t.scheme).toBe(scheme);
      expect(t.partitions.length).toBe(count);
      expect(t.warnings).toEqual([]);
      const file = await raw(name);
      if (scheme !== 'none' && HAVE_SFDISK) {
        const sf = sfdiskPartitions(file);
        expect(sf.label).toBe(scheme === 'mbr' ? 'dos' : 'gpt');
        expect(t.partitions.map((p) => [p.index, p.start / 512, p.size / 512])).toEqual(sf.partitions.map((p) => [p.index, p.start, p.size]));
      }
      if (count > 0 && scheme !== 'none' && HAVE_TSK) {
        const theirs = mmlsPartitions(mmls(file)).map((r) => [r.start, r.length]);
        expect(t.partitions.map((p) => [p.start / 512, p.size / 512])).toEqual(theirs);
      }
      if (scheme === 'none' && count === 1 && HAVE_BLKID) {
        const r = spawnSync('blkid', ['-p', '-o', 'value', '-s', 'PTTYPE', file], { encoding: 'utf8' });
        expect(r.stdout.trim()).toBe('');
      }
    });
  }

  it('img-63x255-4096-gpt.vhd is a 512-byte-sector GPT aligned to 4 KiB (mkimg -P 4096), not a 4Kn disk', async () => {
    const t = await tableOf('img-63x255-4096-gpt.vhd');
    expect(t.blockSize).toBe(512);
    expect(t.partitions.map((p) => [p.start, p.start % 4096])).toEqual([[8 * 512, 0], [8200 * 512, 0]]);
    expect(t.partitions.map((p) => p.typeName)).toEqual(['FreeBSD UFS', 'FreeBSD swap']);
    expect(t.tables.toArray()).toEqual([[0, 3 * 512], [8225280 - 2 * 512, 8225280]]);
  });

  it('node-vhd-dynamic.vhd.gz: the Windows GPT (MSR and three basic-data partitions) with names and types', async () => {
    const t = await tableOf('node-vhd-dynamic.vhd.gz');
    expect(t.partitions.map((p) => p.typeName)).toEqual(['Microsoft reserved', 'Microsoft basic data', 'Microsoft basic data', 'Microsoft basic data']);
    expect(t.partitions[0].name).toBe('Microsoft reserved partition');
  });

  it('ntfs-parent.vhd: Windows diskpart\'s 64 KiB start', async () => {
    const t = await tableOf('ntfs-parent.vhd');
    expect(t.partitions[0]).toMatchObject({ index: 1, start: 128 * 512, size: 6016 * 512, type: '0x07' });
  });
});
