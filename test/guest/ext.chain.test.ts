/**
 * The ext reader through the chain reader: real VHDs holding ext2 volumes at
 * offset 0 (superfloppies; one with a bad footer checksum, opened leniently),
 * and a synthetic chain whose child holds exactly the sectors debugfs
 * changed. The oracles read the raw content the chain composes, and that raw
 * content is first checked against the fixtures' recorded hashes.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { copyFileSync, createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { openChain } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';
import { chainSource } from '../../src/chain/guestSource.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { RangeSet } from '../../src/guest/ranges.js';
import { chainFromImages, HAVE_DEBUGFS, HAVE_MKFS_EXT4, HAVE_TSK } from '../helpers/guest.js';
import { expectedHashes, HAVE_REAL, REAL_DIR } from '../helpers/real.js';
import { tempDir } from '../helpers/tmp.js';
import { debugfs, mkfs, sampleTree } from './extOracle.js';
import { scanSource, verifyAgainstOracles } from './extVerify.js';

const TOOLS = HAVE_MKFS_EXT4 && HAVE_DEBUGFS && HAVE_TSK;

/** Writes the chain's composed content to `out`; returns its sha256. */
async function extractRaw(reader: ChainReader, out: string): Promise<string> {
  const h = createHash('sha256');
  const ws = createWriteStream(out);
  await reader.stream((chunk) => { h.update(chunk); ws.write(Buffer.from(chunk)); });
  await new Promise<void>((resolve, reject) => ws.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return h.digest('hex');
}

const REAL = [
  { name: 'ext2.vhd', files: ['a_directory/a_file', 'a_directory/another_file', 'passwords.txt', 'a_link'], blocks: 4096, free: 3928 },
  { name: 'image.vhd', files: ['a_directory/a_file', 'a_directory/another_file', 'passwords.txt'], blocks: 100, free: 75, lenient: true },
  { name: 'dfvfs-image-51b8f82c.vhd', files: ['a_directory/a_file', 'a_directory/another_file', 'passwords.txt'], blocks: 100, free: 75 },
  { name: 'sleuthkit-image.vhd', files: ['a_directory/a_file', 'a_directory/another_file', 'passwords.txt', 'a_link'], blocks: 100, free: 74 },
];

describe.skipIf(!HAVE_REAL || !TOOLS)('ext reader on the real VHD fixtures (ext2 superfloppies)', () => {
  for (const r of REAL) {
    it(`${r.name}: an ext2 volume at offset 0, every figure as Sleuth Kit and debugfs read it`, async () => {
      const chain = await openChain(nodeFileSystem, path.join(REAL_DIR, r.name), { mode: r.lenient ? 'lenient' : 'strict' });
      try {
        const reader = new ChainReader(chain);
        const raw = path.join(tempDir('vhdtool-ext-real-'), 'volume.raw');
        expect(await extractRaw(reader, raw)).toBe(expectedHashes().get(r.name));
        const s = await scanSource(chainSource(reader));
        expect(s.vol.kind).toBe('ext2');
        expect(s.vol.clusterSize).toBe(1024);
        expect(s.vol.clusterArea).toEqual({ start: 1024, end: r.blocks * 1024 });
        expect(s.scan.free.bytes).toBe(r.free * 1024);
        expect(s.files.filter((f) => !f.directory && !f.system).map((f) => f.path).sort()).toEqual([...r.files].sort());
        await verifyAgainstOracles(raw, s);
      } finally {
        await chain.close();
      }
    });
  }

  it('image.vhd (footer checksum wrong) is refused in strict mode: the lenient open is what reads it', async () => {
    await expect(openChain(nodeFileSystem, path.join(REAL_DIR, 'image.vhd'))).rejects.toThrow(/checksum/);
  });
});

describe.skipIf(!TOOLS)('ext reader through a synthetic chain', () => {
  it('a child holding what debugfs -w changed: the composed view reads as the edited volume, and the new file lies in the child', async () => {
    const dir = tempDir('vhdtool-ext-chain-');
    const base = mkfs(path.join(dir, 'base.img'), 24 * 1024 * 1024, ['-b', '4096'], sampleTree(path.join(dir, 'src'), { bigDir: 30 }));
    const child = path.join(dir, 'child.img');
    copyFileSync(base, child);
    const host = path.join(dir, 'new.bin');
    writeFileSync(host, Buffer.alloc(200_000, 0x5a));
    debugfs(child, ['mkdir added', `write ${host} added/new.bin`, 'rm file4.bin', 'rm big/entry-with-a-longish-name-0003'], true);
    const layers = await chainFromImages(dir, [base, child]);
    const chain = await openChain(nodeFileSystem, layers[1].path);
    try {
      const s = await scanSource(chainSource(new ChainReader(chain)));
      await verifyAgainstOracles(child, s);
      const added = s.files.find((f) => f.path === 'added/new.bin')!;
      expect(added.size).toBe(200_000);
      // The sectors that differ between base and child hold the new file's data.
      const a = readFileSync(base);
      const b = readFileSync(child);
      const changed: Array<[number, number]> = [];
      for (let off = 0; off < a.length; off += 512) if (a.compare(b, off, off + 512, off, off + 512) !== 0) changed.push([off, off + 512]);
      const inChild = RangeSet.from(changed).intersectBytes(added.data);
      expect(inChild).toBeGreaterThanOrEqual(Math.floor(200_000 / 512) * 512);
      expect(inChild).toBeLessThanOrEqual(added.data.bytes);
    } finally {
      await chain.close();
    }
  });
});

