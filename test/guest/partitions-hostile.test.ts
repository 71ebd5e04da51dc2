/**
 * Tables no tool writes: loops, overlaps, partitions past the end, absurd
 * chains, GPT headers claiming 2^32 entries, damaged primaries and backups.
 * Each is either read with a warning (a damaged primary GPT: the backup) or
 * refused with a GuestError that says what is wrong; never a crash, never a
 * huge allocation. Built with the test encoder (test/helpers/tables.ts),
 * which partitions-encoder.test.ts checks against sfdisk.
 */
import { describe, expect, it } from 'vitest';
import { GuestError } from '../../src/guest/errors.js';
import { MAX_EBRS } from '../../src/guest/partitions/mbr.js';
import { readPartitionTable } from '../../src/guest/partitions/index.js';
import { bufferSource, type ByteSource } from '../../src/guest/source.js';
import { BASIC_DATA, LINUX_FS, mbrSector, put, resealHeader, writeGpt, type GptSpec } from '../helpers/tables.js';

const MiB = 1024 * 1024;

function disk(bytes = 64 * MiB): Uint8Array {
  return new Uint8Array(bytes);
}

/** A source over `img` that records the largest read it was asked for. */
function tracked(img: Uint8Array): ByteSource & { largest: number } {
  const inner = bufferSource(img);
  const src = {
    size: inner.size,
    largest: 0,
    read(o: number, n: number) {
      src.largest = Math.max(src.largest, n);
      return inner.read(o, n);
    },
  };
  return src;
}

async function read(img: Uint8Array) {
  const src = tracked(img);
  const t = await readPartitionTable(src);
  return { t, largest: src.largest };
}

async function refused(img: Uint8Array, src: ByteSource = bufferSource(img)): Promise<GuestError> {
  const e = await readPartitionTable(src).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(GuestError);
  return e as GuestError;
}

describe('hostile MBR and EBR chains', () => {
  it('an EBR that links to itself is a loop', async () => {
    const img = disk();
    put(img, 0, mbrSector([{ type: 0x05, lba: 2048, sectors: 100000 }]));
    put(img, 2048, mbrSector([{ type: 0x83, lba: 63, sectors: 1000 }, { type: 0x05, lba: 0, sectors: 2000 }]));
    expect((await refused(img)).message).toMatch(/EBR chain loops back to sector 2048/);
  });

  it('two EBRs that link to each other are a loop', async () => {
    const img = disk();
    put(img, 0, mbrSector([{ type: 0x0f, lba: 2048, sectors: 100000 }]));
    put(img, 2048, mbrSector([{ type: 0x83, lba: 1, sectors: 1000 }, { type: 0x05, lba: 4096, sectors: 2000 }]));
    put(img, 2048 + 4096, mbrSector([{ type: 0x83, lba: 1, sectors: 1000 }, { type: 0x05, lba: 0, sectors: 2000 }]));
    expect((await refused(img)).message).toMatch(/extended partition 1: the EBR chain loops back to sector 2048/);
  });

  it('a chain longer than any tool writes is refused, not followed', async () => {
    const img = disk();
    put(img, 0, mbrSector([{ type: 0x05, lba: 2048, sectors: 120000 }]));
    for (let i = 0; i <= MAX_EBRS + 5; i++) {
      const at = 2048 + 2 * i;
      put(img, at, mbrSector([{ type: 0x83, lba: 1, sectors: 1 }, { type: 0x05, lba: 2 * (i + 1), sectors: 2 }]));
    }
    expect((await refused(img)).message).toMatch(new RegExp(`longer than ${MAX_EBRS} links`));
  });

  it('overlapping primary partitions are refused, naming both', async () => {
    const img = disk();
    put(img, 0, mbrSector([{ type: 0x07, lba: 2048, sectors: 10000 }, null, { type: 0x83, lba: 8000, sectors: 10000 }]));
    expect((await refused(img)).message).toMatch(/partition 1 \(sectors 2048-12047\) and partition 3 \(sectors 8000-17999\) overlap/);
  });

  it('overlapping logical partitions are refused', async () => {
    const img = disk();
    put(img, 0, mbrSector([{ type: 0x05, lba: 2048, sectors: 100000 }]));
    put(img, 2048, mbrSector([{ type: 0x83, lba: 63, sectors: 8000 }, { type: 0x05, lba: 4096, sectors: 9000 }]));
    put(img, 2048 + 4096, mbrSector([{ type: 0x83, lba: 63, sectors: 1000 }]));
    expect((await refused(img)).message).toMatch(/logical partition 5 .* and (the EBR at sector 6144|logical partition 6) .* overlap/);
  });

  it('a partition past the end of the disk is refused', async () => {
    const img = disk(8 * MiB);
    put(img, 0, mbrSector([{ type: 0x07, lba: 2048, sectors: 16384 }]));
    expect((await refused(img)).message).toMatch(/partition 1 \(sectors 2048-18431\) runs past the end of the disk \(16384 sectors\)/);
  });

  it('a logical partition past its extended partition is refused', async () => {
    const img = disk();
    put(img, 0, mbrSector([{ type: 0x05, lba: 2048, sectors: 4096 }]));
    put(img, 2048, mbrSector([{ type: 0x83, lba: 63, sectors: 8000 }]));
    expect((await refused(img)).message).toMatch(/logical partition 5 .* runs past the end of the extended partition/);
  });

  it('an EBR link outside the extended partition is refused', async () => {
    const img = disk();
    put(img, 0, mbrSector([{ type: 0x05, lba: 2048, sectors: 4096 }]));
    put(img, 2048, mbrSector([{ type: 0x83, lba: 63, sectors: 100 }, { type: 0x05, lba: 90000, sectors: 100 }]));
    expect((await refused(img)).message).toMatch(/links to sectors 92048-92147, outside the extended partition/);
  });

  it('a partition starting at sector 0 is refused', async () => {
    const img = disk();
    put(img, 0, mbrSector([{ type: 0x83, lba: 0, sectors: 1000 }, { type: 0x83, lba: 2048, sectors: 1000 }]));
    expect((await refused(img)).message).toMatch(/partition 1 starts at sector 0/);
  });

  it('an EBR without 55 AA ends the chain with a warning; later EBRs are not followed', async () => {
    const img = disk();
    put(img, 0, mbrSector([{ type: 0x05, lba: 2048, sectors: 100000 }]));
    put(img, 2048, mbrSector([{ type: 0x83, lba: 63, sectors: 1000 }, { type: 0x05, lba: 4096, sectors: 2000 }]));
    put(img, 2048 + 4096, mbrSector([{ type: 0x83, lba: 63, sectors: 1000 }], { signature: false }));
    const { t } = await read(img);
    expect(t.partitions.map((p) => p.index)).toEqual([5]);
    expect(t.warnings.join()).toMatch(/EBR at sector 6144 has no 55 AA signature/);
    expect(t.tables.toArray()).toEqual([[0, 512], [2048 * 512, 2049 * 512], [6144 * 512, 6145 * 512]]);
  });

  it('unused EBR entries 3 and 4 are ignored with a warning', async () => {
    const img = disk();
    put(img, 0, mbrSector([{ type: 0x05, lba: 2048, sectors: 100000 }]));
    put(img, 2048, mbrSector([{ type: 0x83, lba: 63, sectors: 1000 }, null, { type: 0x07, lba: 5000, sectors: 50 }]));
    const { t } = await read(img);
    expect(t.partitions.map((p) => [p.index, p.start / 512])).toEqual([[5, 2111]]);
    expect(t.warnings.join()).toMatch(/used entry 3; ignored/);
  });

  it('sector 0 with 55 AA but bad status bytes and no boot sector is no table at all', async () => {
    const img = disk(8 * MiB);
    put(img, 0, mbrSector([{ type: 0x07, lba: 2048, sectors: 100, status: 0x12 }]));
    const { t } = await read(img);
    expect(t).toMatchObject({ scheme: 'none', partitions: [] });
    expect(t.warnings.join()).toMatch(/neither a partition table nor a recognised file system/);
  });
});

/** A 64 MiB GPT disk with two partitions. */
function gptDisk(spec: Partial<GptSpec> = {}, bytes = 64 * MiB): Uint8Array {
  const img = disk(bytes);
  writeGpt(img, {
    entries: [
      { slot: 1, type: BASIC_DATA, guid: 'aaaaaaaa-0000-0000-0000-000000000001', first: 2048, last: 22527, name: 'data' },
      { slot: 2, type: LINUX_FS, guid: 'aaaaaaaa-0000-0000-0000-000000000002', first: 22528, last: 100000 },
    ],
    ...spec,
  });
  return img;
}

const LAST = 64 * MiB - 512;

describe('damaged and hostile GPT', () => {
  it('reads an intact table without warnings (the encoder is sound)', async () => {
    const { t } = await read(gptDisk());
    expect(t.warnings).toEqual([]);
    expect(t.partitions.map((p) => [p.index, p.start / 512, p.size / 512, p.name])).toEqual([[1, 2048, 20480, 'data'], [2, 22528, 77473, undefined]]);
  });

  it('a damaged primary header: the backup is read, with a warning, and both copies stay among the tables', async () => {
    const good = (await read(gptDisk())).t;
    const img = gptDisk();
    img[512 + 40] ^= 0x01; // first usable LBA, without fixing the CRC
    const { t } = await read(img);
    expect(t.partitions).toEqual(good.partitions);
    expect(t.warnings.join()).toMatch(/primary header at LBA 1 is damaged \(header CRC32 is .*\); read from the backup at LBA 131071/);
    expect(t.tables.toArray()).toEqual(good.tables.toArray());
  });

  it('a damaged primary entry array: the backup is read', async () => {
    const img = gptDisk();
    img[2 * 512 + 60] ^= 0xff; // inside entry 1's name
    const { t } = await read(img);
    expect(t.partitions[0].name).toBe('data');
    expect(t.warnings.join()).toMatch(/entry array's CRC32 is .*the header says/);
  });

  it('a damaged backup only: the primary is read, with a warning naming the backup', async () => {
    const img = gptDisk();
    img[LAST + 8] ^= 0x01;
    const { t } = await read(img);
    expect(t.partitions.length).toBe(2);
    expect(t.warnings.join()).toMatch(/backup header at LBA 131071 is damaged/);
    expect(t.tables.last).toBe(64 * MiB);
  });

  it('both headers damaged: refused, naming both problems', async () => {
    const img = gptDisk();
    img[512 + 40] ^= 0x01;
    img[(131071 - 32) * 512 + 60] ^= 0xff; // the backup's entry array
    const e = await refused(img);
    expect(e.message).toMatch(/neither header can be used .*primary header at LBA 1: header CRC32 .*backup at LBA 131071: its entry array's CRC32/);
  });

  it('a protective MBR with no GPT anywhere is refused', async () => {
    const img = disk(8 * MiB);
    put(img, 0, mbrSector([{ type: 0xee, lba: 1, sectors: 16383 }]));
    expect((await refused(img)).message).toMatch(/protective MBR .* no GPT header/);
  });

  for (const [what, count, size, pattern] of [
    ['2^32 - 1 entries', 0xffffffff, 128, /4294967295 entries of 128 bytes .* exceed/],
    ['entry size 0', 128, 0, /entry size 0 is not 128 x 2\^n/],
    ['a huge entry size', 128, 0x80000000, /entry size 2147483648 is not 128 x 2\^n/],
    ['an entry size not 128 x 2^n', 128, 384, /entry size 384/],
  ] as const) {
    it(`headers claiming ${what} are refused before any large read`, async () => {
      const img = gptDisk();
      for (const at of [512, LAST]) {
        new DataView(img.buffer).setUint32(at + 80, count, true);
        new DataView(img.buffer).setUint32(at + 84, size, true);
        resealHeader(img, at);
      }
      const src = tracked(img);
      const e = await refused(img, src);
      expect(e.message).toMatch(pattern);
      expect(src.largest).toBeLessThanOrEqual(128 * 1024);
    });
  }

  it('a hostile primary (2^32 entries) with a sound backup: the backup is read', async () => {
    const img = gptDisk();
    new DataView(img.buffer).setUint32(512 + 80, 0xffffffff, true);
    resealHeader(img, 512);
    const { t, largest } = await read(img);
    expect(t.partitions.length).toBe(2);
    expect(largest).toBeLessThanOrEqual(128 * 1024);
    expect(t.warnings.join()).toMatch(/4294967295 entries/);
  });

  it('a partition past the end of the disk is refused', async () => {
    const img = gptDisk({ entries: [{ slot: 1, type: LINUX_FS, guid: '00000000-0000-0000-0000-00000000000a', first: 2048, last: 200000 }] });
    expect((await refused(img)).message).toMatch(/partition 1 \(LBAs 2048-200000\) runs past the end of the disk \(131072 blocks of 512 bytes\)/);
  });

  it('overlapping GPT partitions are refused', async () => {
    const img = gptDisk({
      entries: [
        { slot: 1, type: LINUX_FS, guid: '00000000-0000-0000-0000-00000000000a', first: 2048, last: 5000 },
        { slot: 3, type: LINUX_FS, guid: '00000000-0000-0000-0000-00000000000b', first: 4000, last: 9000 },
      ],
    });
    expect((await refused(img)).message).toMatch(/partition 1 \(LBAs 2048-5000\) and partition 3 \(LBAs 4000-9000\) overlap/);
  });

  it('a partition over the entry array is refused', async () => {
    const img = gptDisk({ entries: [{ slot: 1, type: LINUX_FS, guid: '00000000-0000-0000-0000-00000000000a', first: 20, last: 5000 }] });
    expect((await refused(img)).message).toMatch(/the partition table \(LBAs 0-33\) and partition 1 \(LBAs 20-5000\) overlap/);
  });

  it('a header whose entry array overlaps its usable area is damaged: the other copy is read', async () => {
    const img = gptDisk();
    new DataView(img.buffer).setBigUint64(512 + 40, 10n, true);
    resealHeader(img, 512);
    const { t } = await read(img);
    expect(t.partitions.length).toBe(2);
    expect(t.warnings.join()).toMatch(/entry array \(LBAs 2-33\) overlaps the usable area \(LBAs 10-131038\)/);
  });

  it('a partition outside the usable area but clear of the tables is read, with a warning', async () => {
    const img = gptDisk({ lastUsable: 100000, entries: [{ slot: 1, type: LINUX_FS, guid: '00000000-0000-0000-0000-00000000000a', first: 2048, last: 120000 }] });
    const { t } = await read(img);
    expect(t.partitions.length).toBe(1);
    expect(t.warnings.join()).toMatch(/lies outside the usable area/);
  });

  it('a hybrid MBR is noted; the GPT is read', async () => {
    const img = gptDisk();
    put(img, 0, mbrSector([{ type: 0xee, lba: 1, sectors: 2047 }, { type: 0x07, lba: 2048, sectors: 20480 }]));
    const { t } = await read(img);
    expect(t.scheme).toBe('gpt');
    expect(t.warnings.join()).toMatch(/hybrid MBR: sector 0 also lists partition\(s\) 2 \(0x07\)/);
  });

  it('a GPT without a protective MBR is read, with a warning', async () => {
    const img = gptDisk();
    img.fill(0, 0, 512);
    const { t } = await read(img);
    expect(t.scheme).toBe('gpt');
    expect(t.partitions.length).toBe(2);
    expect(t.warnings.join()).toMatch(/no protective MBR/);
  });

  it('a stale GPT header on an MBR disk is ignored, with a warning (as Linux does)', async () => {
    const img = gptDisk();
    put(img, 0, mbrSector([{ type: 0x83, lba: 2048, sectors: 4096 }]));
    const { t } = await read(img);
    expect(t.scheme).toBe('mbr');
    expect(t.warnings.join()).toMatch(/GPT header at LBA 1 is ignored/);
  });

  it('a disk enlarged after partitioning (backup not at the last LBA) reads, with a warning', async () => {
    const small = gptDisk({}, 64 * MiB);
    const img = disk(80 * MiB);
    img.set(small);
    const { t } = await read(img);
    expect(t.partitions.length).toBe(2);
    expect(t.warnings.join()).toMatch(/backup header is at LBA 131071, not at the disk's last LBA 163839/);
    expect(t.tables.last).toBe(64 * MiB);
  });
});

describe('CRC-32', () => {
  it('the portable CRC-32 (for Node before 20.15) gives the check value and agrees with the native one', async () => {
    const { crc32, portableCrc32 } = await import('../../src/guest/partitions/crc32.js');
    const check = new TextEncoder().encode('123456789');
    expect(portableCrc32(check)).toBe(0xcbf43926);
    expect(crc32(check)).toBe(0xcbf43926);
    const data = Uint8Array.from({ length: 70000 }, (_, i) => (i * 2654435761) >>> 24);
    expect(portableCrc32(data)).toBe(crc32(data));
  });
});
