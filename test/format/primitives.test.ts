/**
 * Geometry (the spec's CHS algorithm) against values real producers wrote,
 * VHD time stamps (2000 epoch), UUIDs as stored.
 */
import { describe, expect, it } from 'vitest';
import {
  geometryForSize, geometryCapacity, isMaxGeometry, MAX_GEOMETRY, vhdTimeToDate, vhdTimeToIso, dateToVhdTime,
  decodeUuid, encodeUuid, isUuid, parseUuid, newUuid, NULL_UUID, type Uuid,
} from '../../src/format/index.js';
import { HAVE_REAL } from '../helpers/real.js';
import { manifest } from '../helpers/manifest.js';

describe('geometryForSize (spec appendix algorithm)', () => {
  // Sizes and the geometry the producer stored (MANIFEST.md per-file details).
  const known: Array<[number, string, string]> = [
    [4194304, '120/4/17', 'Windows diskpart 4 MiB (fat-parent, ntfs-*)'],
    [104448, '3/4/17', 'qemu 102 KiB (image.vhd)'],
    [4212736, '121/4/17', 'qemu (ext2.vhd)'],
    [10485760, '301/4/17', 'Windows 10 MiB (dissect, node-vhd-fixed)'],
    [3145728, '90/4/17', 'Windows 3 MiB (vhd.hexpat)'],
    [1079296, '31/4/17', 'qemu 1M request (minimal.vhd)'],
    [2123776, '61/4/17', 'qemu (original-size-mismatch)'],
    [4352000, '125/4/17', 'mkimg (img-1x1-512-gpt.vhd)'],
    [5242880, '150/4/17', 'mkimg (img-1x1-512-gpt.vhdf)'],
    [536870912, '1040/16/63', 'Windows 512 MiB (node-vhd-dynamic)'],
    [2147483648, '4161/16/63', 'Windows 2 GiB (node-vhd-dynamic-dc5d815f)'],
    [136365211648, '65278/16/255', 'Hyper-V 2012 R2 127 GiB'],
  ];
  it.each(known)('%i bytes -> %s (%s)', (size, chs) => {
    const g = geometryForSize(size);
    expect(`${g.cylinders}/${g.heads}/${g.sectorsPerTrack}`).toBe(chs);
  });

  it('takes each branch of the algorithm at its boundary', () => {
    // 17 sectors/track while cylinders x heads < heads x 1024.
    expect(geometryForSize(4 * 1024 * 17 * 512 - 512)).toEqual({ cylinders: 1023, heads: 4, sectorsPerTrack: 17 });
    // heads climb above 4 with 17 sectors/track (85000 sectors: 5000 cylinders x heads -> 5 heads).
    expect(geometryForSize(85000 * 512)).toEqual({ cylinders: 1000, heads: 5, sectorsPerTrack: 17 });
    // 16 heads x 17 spt would reach 1024 cylinders: switch to 31 sectors/track, 16 heads.
    expect(geometryForSize(16 * 1024 * 17 * 512)).toEqual({ cylinders: 561, heads: 16, sectorsPerTrack: 31 });
    // 31 spt full too: 63 sectors/track.
    expect(geometryForSize(16 * 1024 * 31 * 512)).toEqual({ cylinders: 503, heads: 16, sectorsPerTrack: 63 });
    // From 65535 x 16 x 63 sectors on: 255 sectors/track.
    const s255 = 65535 * 16 * 63;
    expect(geometryForSize((s255 - 1) * 512).sectorsPerTrack).toBe(63);
    expect(geometryForSize(s255 * 512)).toEqual({ cylinders: 16191, heads: 16, sectorsPerTrack: 255 });
    // Capped at the maximum geometry.
    expect(geometryForSize(65535 * 16 * 255 * 512)).toEqual(MAX_GEOMETRY);
    expect(geometryForSize(2040 * 1024 ** 3)).toEqual(MAX_GEOMETRY);
    expect(isMaxGeometry(geometryForSize(2040 * 1024 ** 3))).toBe(true);
  });

  it('never describes more than the size (rounded down), and tiny disks get 0 cylinders', () => {
    for (const size of [512, 1024, 17 * 4 * 512, 1 << 20, 3 << 20, 1 << 30, 100 * 1024 ** 3, 127 * 1024 ** 3]) {
      expect(geometryCapacity(geometryForSize(size))).toBeLessThanOrEqual(size);
    }
    expect(geometryForSize(512)).toEqual({ cylinders: 0, heads: 4, sectorsPerTrack: 17 });
    expect(geometryCapacity({ cylinders: 120, heads: 4, sectorsPerTrack: 17 })).toBe(4177920);
  });

  it.skipIf(!HAVE_REAL)('agrees with the geometry stored in every real fixture whose producer used the spec algorithm', () => {
    let compared = 0;
    for (const m of manifest().values()) {
      // Skipped: forced max geometry (qemu force_size "qem2", Disk2VHD) and mkimg's explicit 63x255 test geometries.
      if (isMaxGeometry(m.geometry) || m.geometry.heads === 255) continue;
      expect(geometryForSize(m.currentSize), m.name).toEqual(m.geometry);
      compared++;
    }
    expect(compared).toBe(25);
  });
});

describe('VHD time stamps', () => {
  it('count seconds from 2000-01-01T00:00:00Z', () => {
    expect(vhdTimeToDate(0).toISOString()).toBe('2000-01-01T00:00:00.000Z');
    expect(vhdTimeToIso(0)).toBe('2000-01-01T00:00:00Z');
    // Values and UTC renderings recorded in MANIFEST.md.
    expect(vhdTimeToIso(655986198)).toBe('2020-10-14T10:23:18Z');
    expect(vhdTimeToIso(19088743)).toBe('2000-08-08T22:25:43Z');
    expect(vhdTimeToIso(509185783)).toBe('2016-02-19T08:29:43Z');
    expect(vhdTimeToIso(0xffffffff)).toBe('2136-02-07T06:28:15Z');
  });

  it('convert back from dates, truncating to whole seconds and clamping to the u32 range', () => {
    expect(dateToVhdTime(new Date('2020-10-14T10:23:18.999Z'))).toBe(655986198);
    expect(dateToVhdTime(new Date(Date.UTC(2000, 0, 1)))).toBe(0);
    expect(dateToVhdTime(new Date('1999-12-31T23:59:59Z'))).toBe(0);
    expect(dateToVhdTime(new Date('2200-01-01T00:00:00Z'))).toBe(0xffffffff);
    expect(dateToVhdTime(new Date(946684800000 + 1234 * 1000))).toBe(1234);
  });
});

describe('UUIDs', () => {
  it('decode 16 bytes in file order as lowercase 8-4-4-4-12 hex (no Windows byte swap)', () => {
    const b = Uint8Array.from({ length: 20 }, (_, i) => (i * 17) & 0xff);
    expect(decodeUuid(b, 2)).toBe('22334455-6677-8899-aabb-ccddeeff1021');
  });

  it('encode(decode(bytes)) == bytes and decode(encode(u)) == u', () => {
    const u = '5fa21a55-f394-aa4d-9958-1951a67d5540' as Uuid;
    const b = new Uint8Array(16);
    encodeUuid(u, b, 0);
    expect([...b.subarray(0, 4)]).toEqual([0x5f, 0xa2, 0x1a, 0x55]);
    expect(decodeUuid(b, 0)).toBe(u);
    const c = new Uint8Array(16);
    encodeUuid(decodeUuid(b, 0), c, 0);
    expect(c).toEqual(b);
  });

  it('parse accepts any case and normalises to lowercase; rejects malformed text', () => {
    expect(parseUuid('5FA21A55-F394-AA4D-9958-1951A67D5540')).toBe('5fa21a55-f394-aa4d-9958-1951a67d5540');
    expect(parseUuid('5fa21a55f394aa4d99581951a67d5540')).toBeNull();
    expect(parseUuid('5fa21a55-f394-aa4d-9958-1951a67d554')).toBeNull();
    expect(parseUuid('zfa21a55-f394-aa4d-9958-1951a67d5540')).toBeNull();
    expect(isUuid(NULL_UUID)).toBe(true);
  });

  it('newUuid gives distinct random version-4 UUIDs', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const u = newUuid();
      expect(isUuid(u)).toBe(true);
      expect(u[14]).toBe('4');
      expect('89ab').toContain(u[19]);
      seen.add(u);
    }
    expect(seen.size).toBe(100);
  });
});
