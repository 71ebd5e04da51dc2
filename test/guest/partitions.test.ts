/**
 * Partition tables made by the real tools (sfdisk, fdisk for 4Kn GPT) read
 * back, each figure checked against two independent readers: sfdisk --json
 * and Sleuth Kit's mmls. The tables' own bytes are checked against mmls's
 * "Meta" rows.
 */
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readPartitionTable } from '../../src/guest/partitions/index.js';
import type { PartitionTable } from '../../src/guest/partitions/types.js';
import { RangeSet } from '../../src/guest/ranges.js';
import { HAVE_SFDISK, HAVE_TSK, blankImage, partition, run } from '../helpers/guest.js';
import { fileByteSource, mmls, mmlsPartitions, sfdiskPartitions } from '../helpers/tables.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const opened: Array<{ close(): void }> = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});

async function readTable(file: string): Promise<PartitionTable> {
  const src = fileByteSource(file);
  opened.push(src);
  return readPartitionTable(src);
}

function image(script: string, bytes = 64 * MiB): string {
  const f = blankImage(path.join(tempDir(), 'disk.img'), bytes);
  partition(f, script);
  return f;
}

/** Our partitions in sectors, as sfdisk reports them. */
function asSectors(t: PartitionTable) {
  return t.partitions.map((p) => ({ index: p.index, start: p.start / 512, size: p.size / 512 }));
}

/** Our view must equal sfdisk's and mmls's, partition for partition; tables must equal mmls's Meta rows (backup GPT aside). */
function crossCheck(file: string, t: PartitionTable): void {
  const sf = sfdiskPartitions(file);
  expect(asSectors(t)).toEqual(sf.partitions.map(({ index, start, size }) => ({ index, start, size })));
  if (t.scheme === 'mbr') expect(t.partitions.map((p) => p.type)).toEqual(sf.partitions.map((p) => `0x${p.type.padStart(2, '0')}`));
  if (t.scheme === 'gpt') expect(t.partitions.map((p) => p.type)).toEqual(sf.partitions.map((p) => p.type));
  if (!HAVE_TSK) return;
  const rows = mmls(file);
  const theirs = mmlsPartitions(rows).map((r) => [r.start, r.length]);
  expect(t.partitions.map((p) => [p.start / 512, p.size / 512]).sort((a, b) => a[0] - b[0])).toEqual(theirs);
  const meta = RangeSet.from(rows.filter((r) => /Table|Header/.test(r.description)).map((r) => [r.start * 512, (r.start + r.length) * 512] as const));
  const ours = t.scheme === 'gpt' ? t.tables.clip(0, t.partitions[0]?.start ?? t.tables.last) : t.tables;
  expect(ours.toArray()).toEqual(meta.toArray());
}

describe.skipIf(!HAVE_SFDISK)('MBR written by sfdisk', () => {
  it('legacy start at sector 63 (Windows XP) reads as sfdisk and mmls read it', async () => {
    const f = image('label: dos\nstart=63, size=65000, type=7, bootable\nstart=65063, size=20000, type=b\n');
    const t = await readTable(f);
    expect(t.scheme).toBe('mbr');
    expect(t.partitions[0]).toMatchObject({ index: 1, start: 63 * 512, size: 65000 * 512, type: '0x07', typeName: 'NTFS/exFAT/HPFS', bootable: true });
    expect(t.partitions[1]).toMatchObject({ index: 2, start: 65063 * 512, type: '0x0b', bootable: false });
    expect(t.warnings).toEqual([]);
    crossCheck(f, t);
  });

  it('1 MiB starts (Vista and later) read as sfdisk and mmls read them', async () => {
    const f = image('label: dos\nlabel-id: 0xdeadbeef\nstart=2048, size=40960, type=83\nstart=43008, size=2048, type=82\nstart=47104, size=8192, type=c\n');
    const t = await readTable(f);
    expect(t.diskId).toBe('0xdeadbeef');
    expect(t.partitions.map((p) => p.index)).toEqual([1, 2, 3]);
    crossCheck(f, t);
  });

  it('an extended partition with several logical partitions: numbered from 5, EBRs among the tables', async () => {
    const f = image(
      'label: dos\nstart=63, size=4000, type=83\nstart=8192, size=40960, type=5\nstart=8255, size=2048, type=83\n' +
        'start=12288, size=2048, type=82\nstart=20480, size=4096, type=7\nstart=60000, size=1000, type=c\n',
    );
    const t = await readTable(f);
    expect(t.partitions.map((p) => [p.index, p.type])).toEqual([[1, '0x83'], [3, '0x0c'], [5, '0x83'], [6, '0x82'], [7, '0x07']]);
    const ebrs = t.tables.toArray().slice(1).map(([s, e]) => [s / 512, (e - s) / 512]);
    expect(ebrs).toEqual([[8192, 1], [12287, 1], [20479, 1]]);
    crossCheck(f, t);
  });

  it('an extended partition in slot 1 with logical partitions and a primary after it', async () => {
    const f = image('label: dos\nstart=2048, size=100000, type=f\nstart=4096, size=8192, type=7\nstart=14336, size=8192, type=83\nstart=110000, size=4096, type=83\n');
    const t = await readTable(f);
    expect(t.partitions.map((p) => p.index)).toEqual([2, 5, 6]);
    crossCheck(f, t);
  });

  it('an MBR with no partitions: scheme mbr, nothing listed, sector 0 a table', async () => {
    const f = image('label: dos\n', 8 * MiB);
    const t = await readTable(f);
    expect(t).toMatchObject({ scheme: 'mbr', partitions: [] });
    expect(t.tables.toArray()).toEqual([[0, 512]]);
  });
});

describe.skipIf(!HAVE_SFDISK)('GPT written by sfdisk', () => {
  it('partitions, names, GUIDs and both tables', async () => {
    const f = image(
      'label: gpt\nlabel-id: 01234567-89AB-CDEF-0123-456789ABCDEF\n' +
        'start=2048, size=20480, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system", uuid=AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE\n' +
        'start=22528, size=32768, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="Données"\n' +
        'start=55296, size=8192, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F\n',
    );
    const t = await readTable(f);
    expect(t.scheme).toBe('gpt');
    expect(t.diskId).toBe('01234567-89ab-cdef-0123-456789abcdef');
    expect(t.partitions[0]).toMatchObject({ index: 1, typeName: 'EFI System', name: 'EFI system', guid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee' });
    expect(t.partitions[1]).toMatchObject({ index: 2, typeName: 'Microsoft basic data', name: 'Données' });
    expect(t.partitions[2]).toMatchObject({ index: 3, typeName: 'Linux swap' });
    expect(t.partitions[2].name).toBeUndefined();
    const disk = 64 * MiB;
    expect(t.tables.toArray()).toEqual([[0, 34 * 512], [disk - 33 * 512, disk]]);
    expect(t.warnings).toEqual([]);
    crossCheck(f, t);
  });

  it('a gap in the entry array: partitions keep their slot numbers', async () => {
    const f = image('label: gpt\n1: start=2048, size=2048, type=L\n4: start=8192, size=2048, type=L\n');
    const t = await readTable(f);
    expect(t.partitions.map((p) => p.index)).toEqual([1, 4]);
    crossCheck(f, t);
  });

  it('GPT on 4096-byte logical blocks (fdisk -b 4096): found at byte 4096, figures as fdisk and mmls -b 4096 give them', async () => {
    const f = blankImage(path.join(tempDir(), 'k4.img'), 16 * MiB);
    run('sh', ['-c', `printf 'g\\nn\\n1\\n\\n+4M\\nn\\n2\\n\\n\\nw\\n' | fdisk -b 4096 "$1" >/dev/null`, 'sh', f]);
    const t = await readTable(f);
    expect(t.scheme).toBe('gpt');
    expect(t.blockSize).toBe(4096);
    const fdisk = run('fdisk', ['-b', '4096', '-l', '-o', 'Device,Start,Sectors', f])
      .split('\n')
      .filter((l) => l.startsWith(f))
      .map((l) => l.trim().split(/\s+/).slice(1).map(Number));
    expect(t.partitions.map((p) => [p.start / 4096, p.size / 4096])).toEqual(fdisk);
    expect(fdisk.length).toBe(2);
    if (HAVE_TSK) {
      const rows = mmls(f, 4096);
      expect(t.partitions.map((p) => [p.start / 4096, p.size / 4096])).toEqual(mmlsPartitions(rows).map((r) => [r.start, r.length]));
    }
    expect(t.tables.first).toBe(0);
    expect(t.tables.toArray()[0][1]).toBe(6 * 4096);
    expect(t.tables.last).toBe(16 * MiB);
  });
});
