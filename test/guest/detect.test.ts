/**
 * Volume detection: readers are asked in order and the first whose probe
 * claims the volume opens it; what no reader claims is named by its
 * signature. Fake readers test the protocol; images made by the real tools
 * (mkfs.*, mkswap, cryptsetup, sfdisk) test the names, checked against
 * util-linux blkid -p where it knows the type.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { detect, isUnknown, openVolume } from '../../src/guest/detect.js';
import { GuestError } from '../../src/guest/errors.js';
import { PROBE_BYTES, type VolumeReader } from '../../src/guest/readers.js';
import { SIGNATURE_BYTES, recognise } from '../../src/guest/signatures.js';
import { bufferSource, type ByteSource } from '../../src/guest/source.js';
import type { Volume } from '../../src/guest/volume.js';
import { HAVE_MKFS_EXT4, HAVE_MKFS_FAT, HAVE_MKNTFS, HAVE_SFDISK, blankImage, partition, run } from '../helpers/guest.js';
import { fileByteSource, mbrSector, writeGpt, LINUX_FS } from '../helpers/tables.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const has = (cmd: string, arg = '--version') => spawnSync(cmd, [arg], { stdio: 'ignore' }).error === undefined;
const HAVE_BLKID = has('blkid');

function blkidType(file: string): string {
  return spawnSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', file], { encoding: 'utf8' }).stdout.trim();
}

/** A fake reader that claims volumes whose first byte is `marker`, and records what it was given. */
function fake(name: string, marker: number, calls: string[], fail = false): VolumeReader {
  return {
    name,
    probe(head, size) {
      calls.push(`${name}.probe(${head.length}, ${size})`);
      return head[0] === marker;
    },
    open(src: ByteSource) {
      calls.push(`${name}.open(${src.size})`);
      if (fail) return Promise.reject(new GuestError(`${name}: broken`));
      return Promise.resolve({ kind: 'ext4', size: src.size, name } as unknown as Volume);
    },
  };
}

describe('detection with fake readers', () => {
  it('asks readers in order; the first that claims the volume opens it', async () => {
    const calls: string[] = [];
    const img = new Uint8Array(300 * 1024).fill(7, 0, 1);
    const v = await openVolume(bufferSource(img), [fake('a', 1, calls), fake('b', 7, calls), fake('c', 7, calls)]);
    expect(v).toMatchObject({ name: 'b' });
    expect(calls).toEqual([`a.probe(${PROBE_BYTES}, ${img.length})`, `b.probe(${PROBE_BYTES}, ${img.length})`, `b.open(${img.length})`]);
  });

  it('a volume smaller than PROBE_BYTES is probed whole', async () => {
    const calls: string[] = [];
    await openVolume(bufferSource(new Uint8Array(5000)), [fake('a', 1, calls)]);
    expect(calls).toEqual(['a.probe(5000, 5000)']);
  });

  it('a claimed volume that cannot be opened is an error, not an unknown volume', async () => {
    const calls: string[] = [];
    const img = new Uint8Array(4096).fill(9, 0, 1);
    await expect(openVolume(bufferSource(img), [fake('x', 9, calls, true)])).rejects.toThrow(/x: broken/);
  });

  it('nothing claims it and nothing is recognised: an UnknownVolume named "unrecognised"', async () => {
    const v = await openVolume(bufferSource(new Uint8Array(8192)), []);
    expect(v).toEqual({ kind: 'unknown', size: 8192, name: 'unrecognised' });
    expect(isUnknown(v)).toBe(true);
  });

  it('recognise looks no further than PROBE_BYTES', () => {
    expect(SIGNATURE_BYTES).toBeLessThanOrEqual(PROBE_BYTES);
  });
});

/** Names by signature alone (no readers), so the figures do not move when readers are added. */
async function nameOf(src: ByteSource): Promise<string> {
  const v = await openVolume(src, []);
  if (!isUnknown(v)) throw new Error('a reader claimed it');
  return v.name;
}

async function nameOfFile(file: string): Promise<string> {
  const src = fileByteSource(file);
  try {
    return await nameOf(src);
  } finally {
    src.close();
  }
}

function made(bytes: number, cmd: string, args: string[], input?: string): string {
  const f = blankImage(path.join(tempDir(), 'vol.img'), bytes);
  run(cmd, [...args, f], input);
  return f;
}

const TOOL_CASES: Array<[string, boolean, () => string, string, string]> = [
  ['FAT12', HAVE_MKFS_FAT, () => made(8 * MiB, 'mkfs.fat', ['-F', '12']), 'FAT12', 'vfat'],
  ['FAT16', HAVE_MKFS_FAT, () => made(32 * MiB, 'mkfs.fat', ['-F', '16']), 'FAT16', 'vfat'],
  ['FAT32', HAVE_MKFS_FAT, () => made(40 * MiB, 'mkfs.fat', ['-F', '32', '-s', '1']), 'FAT32', 'vfat'],
  ['NTFS', HAVE_MKNTFS, () => made(8 * MiB, 'mkntfs', ['-F', '-q']), 'NTFS', 'ntfs'],
  ['ext2', HAVE_MKFS_EXT4, () => made(8 * MiB, 'mkfs.ext4', ['-q', '-t', 'ext2']), 'ext2', 'ext2'],
  ['ext3', HAVE_MKFS_EXT4, () => made(16 * MiB, 'mkfs.ext4', ['-q', '-t', 'ext3']), 'ext3', 'ext3'],
  ['ext4', HAVE_MKFS_EXT4, () => made(16 * MiB, 'mkfs.ext4', ['-q']), 'ext4', 'ext4'],
  ['swap', has('mkswap'), () => made(4 * MiB, 'mkswap', []), 'Linux swap', 'swap'],
  ['exFAT', has('mkfs.exfat'), () => made(8 * MiB, 'mkfs.exfat', []), 'exFAT', 'exfat'],
  ['XFS', has('mkfs.xfs', '-V'), () => made(300 * MiB, 'mkfs.xfs', ['-q', '-K']), 'XFS', 'xfs'],
  ['btrfs', has('mkfs.btrfs'), () => made(128 * MiB, 'mkfs.btrfs', ['-q']), 'btrfs', 'btrfs'],
  [
    'LUKS2',
    has('cryptsetup'),
    () => made(20 * MiB, 'cryptsetup', ['luksFormat', '-q', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', '-'], 'pw'),
    'LUKS2',
    'crypto_LUKS',
  ],
  [
    'LUKS1',
    has('cryptsetup'),
    () => made(20 * MiB, 'cryptsetup', ['luksFormat', '-q', '--type', 'luks1', '--pbkdf-force-iterations', '1000', '--key-file', '-'], 'pw'),
    'LUKS1',
    'crypto_LUKS',
  ],
];

describe('names of volumes made by the real tools (no readers)', () => {
  for (const [what, have, make, name, blkid] of TOOL_CASES) {
    it.skipIf(!have)(`${what} is named "${name}" (blkid: ${blkid})`, async () => {
      const f = make();
      expect(await nameOfFile(f)).toBe(name);
      if (HAVE_BLKID) expect(blkidType(f)).toBe(blkid);
    });
  }

  it.skipIf(!HAVE_SFDISK)('an MBR inside a partition is named as a nested table, never read as partitions', async () => {
    const f = blankImage(path.join(tempDir(), 'nested.img'), 8 * MiB);
    partition(f, 'label: dos\nstart=2048, size=4096, type=83\n');
    expect(await nameOfFile(f)).toBe('MBR partition table (nested in the partition)');
  });

  it('a GPT inside a partition is named as a nested table', async () => {
    const img = new Uint8Array(8 * MiB);
    writeGpt(img, { entries: [{ slot: 1, type: LINUX_FS, guid: '00000000-0000-0000-0000-000000000001', first: 2048, last: 4095 }] });
    expect(await nameOf(bufferSource(img))).toBe('GPT partition table (nested in the partition)');
  });
});

/** `bytes` written at `at` in a volume of `size` bytes. */
function withBytes(size: number, ...parts: Array<[number, ArrayLike<number> | string]>): Uint8Array {
  const img = new Uint8Array(size);
  for (const [at, b] of parts) img.set(typeof b === 'string' ? Array.from(b, (c) => c.charCodeAt(0)) : b, at);
  return img;
}

describe('names of what no tool here makes (signatures from the formats\' documentation)', () => {
  const le32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
  const cases: Array<[string, Uint8Array]> = [
    ['BitLocker', withBytes(65536, [0, [0xeb, 0x58, 0x90]], [3, '-FVE-FS-'], [510, [0x55, 0xaa]])],
    ['ReFS', withBytes(65536, [3, 'ReFS\0\0\0\0'])],
    ['LVM2 physical volume', withBytes(65536, [512, 'LABELONE'], [512 + 24, 'LVM2 001'])],
    ['Linux RAID member (md)', withBytes(65536, [4096, le32(0xa92b4efc)])],
    ['ZFS', withBytes(256 * 1024, [16384, [1, 1, 0, 0]], [16384 + 60, 'pool_guid'])],
    ['HFS+', withBytes(65536, [1024, 'H+'], [1026, [0, 4]])],
    ['APFS', withBytes(65536, [32, 'NXSB'])],
    ['ISO 9660', withBytes(65536, [32769, 'CD001'])],
    ['BSD disklabel', withBytes(65536, [512, le32(0x82564557)])],
    ['UFS', withBytes(128 * 1024, [65536 + 1372, le32(0x19540119)])],
    ['Linux swap (hibernation image)', withBytes(65536, [4086, 'S1SUSPEND'])],
  ];
  for (const [name, img] of cases) {
    it(`${name}`, async () => {
      expect(await nameOf(bufferSource(img))).toBe(name);
    });
  }

  it.skipIf(!HAVE_MKFS_FAT)('BitLocker To Go (a FAT boot sector over ciphertext, marked by BitLocker\'s GUID at 424) is never handed to a reader', async () => {
    const f = made(40 * MiB, 'mkfs.fat', ['-F', '32', '-s', '1']);
    const src = fileByteSource(f);
    try {
      const head = await src.read(0, PROBE_BYTES);
      const fatReader: VolumeReader = { name: 'fat', probe: (h) => recognise(h)?.family === 'fat', open: () => Promise.reject(new Error('opened')) };
      expect(detect(head, src.size, [fatReader]).reader).toBe(fatReader);
      head.set([0x3b, 0xd6, 0x67, 0x49, 0x29, 0x2e, 0xd8, 0x4a, 0x83, 0x99, 0xf6, 0xa3, 0x39, 0xe3, 0xd0, 0x01], 424);
      expect(detect(head, src.size, [fatReader])).toEqual({ reader: null, name: 'BitLocker' });
      expect(recognise(head)).toEqual({ family: 'other', name: 'BitLocker' });
    } finally {
      src.close();
    }
  });

  it('a table sector whose boot code starts with a jump but has no BIOS parameter block is a table, not FAT', () => {
    const mbr = mbrSector([{ type: 0x0c, lba: 2048, sectors: 100 }]);
    expect(recognise(mbr)).toEqual({ family: 'table', name: 'MBR partition table' });
    mbr.set([0xeb, 0x3c, 0x90], 0);
    expect(recognise(mbr)?.family).toBe('table');
  });

  it('detect passes the probe the head and the size', () => {
    const seen: number[] = [];
    const r: VolumeReader = { name: 'r', probe: (h, s) => (seen.push(h.length, s), false), open: () => Promise.reject(new Error('no')) };
    expect(detect(new Uint8Array(100), 12345, [r])).toEqual({ reader: null, name: 'unrecognised' });
    expect(seen).toEqual([100, 12345]);
  });
});
