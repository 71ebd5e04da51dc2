/**
 * Round trips of the pure codecs on hand-built values: decode(encode(x)) == x
 * for footers, headers, locator entries, BATs and bitmaps, plus the edge cases
 * each codec documents (511-byte footers, all-ones offsets, values past 2^53,
 * UTF-16BE parent names with surrogates, unknown codes kept as numbers).
 */
import { describe, expect, it } from 'vitest';
import { FormatError, VhdToolError } from '../../src/errors.js';
import {
  Bat, batBytes, bitmapBytes, decodeBat, decodeFooter, decodeHeader, decodeLocatorEntry, encodeBat, encodeFooter,
  encodeHeader, encodeLocatorEntry, footerChecksumOk, headerChecksumOk, sealFooter, sealHeader, computeFooterChecksum,
  decodeUtf16BeName, encodeUtf16BeName, setBit, clearBit, testBit, setRange, countBits, anyBitSet, allBitsSet, forEachRun,
  sectorsPerBlock, vhdChecksum, FOOTER_CHECKSUM_OFFSET, HEADER_CHECKSUM_OFFSET, UNUSED_LOCATOR,
  type DynamicHeader, type Footer, type LocatorEntry, type Uuid,
} from '../../src/format/index.js';

function footer(over: Partial<Footer> = {}): Footer {
  const reserved = new Uint8Array(427);
  return {
    cookie: 'conectix',
    features: 2,
    formatVersion: 0x10000,
    dataOffset: 512,
    timestamp: 655986203,
    creatorApplication: 'win ',
    creatorVersion: 0xa0000,
    creatorHostOs: 'Wi2k',
    originalSize: 4194304,
    currentSize: 4194304,
    geometry: { cylinders: 120, heads: 4, sectorsPerTrack: 17 },
    diskType: 'differencing',
    checksum: 0x12345678,
    uniqueId: 'f84f1636-cd9e-9041-a69e-dcc2380e416a' as Uuid,
    savedState: 0,
    reserved,
    ...over,
  };
}

function locator(over: Partial<LocatorEntry> = {}): LocatorEntry {
  return { platform: 'W2ku', dataSpace: 4096, dataLength: 84, reserved: 0, dataOffset: 4096, ...over };
}

function header(over: Partial<DynamicHeader> = {}): DynamicHeader {
  const reserved2 = new Uint8Array(256);
  return {
    cookie: 'cxsparse',
    dataOffset: null,
    tableOffset: 8192,
    headerVersion: 0x10000,
    maxTableEntries: 2,
    blockSize: 2097152,
    checksum: 0xdeadbeef,
    parentUniqueId: '5fa21a55-f394-aa4d-9958-1951a67d5540' as Uuid,
    parentTimestamp: 0,
    reserved1: 0,
    parentUnicodeName: 'C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd',
    locators: [
      locator(),
      locator({ platform: 'W2ru', dataSpace: 65536, dataLength: 32, dataOffset: 12288 }),
      ...Array.from({ length: 6 }, () => ({ ...UNUSED_LOCATOR })),
    ],
    reserved2,
    ...over,
  };
}

describe('footer codec', () => {
  it('decode(encode(f)) == f for a differencing footer', () => {
    const f = footer();
    const b = encodeFooter(f);
    expect(b.length).toBe(512);
    expect(decodeFooter(b)).toEqual(f);
  });

  it('keeps the all-ones data offset of a fixed disk as null and writes 8 bytes of 0xFF', () => {
    const f = footer({ diskType: 'fixed', dataOffset: null });
    const b = encodeFooter(f);
    expect([...b.subarray(16, 24)]).toEqual(new Array(8).fill(0xff));
    expect(decodeFooter(b)).toEqual(f);
  });

  it('keeps unknown disk types as numbers, NUL creator codes, saved state and the reserved bytes (tapdisk hidden byte)', () => {
    const reserved = new Uint8Array(427);
    reserved[0] = 1; // blktap "hidden"
    reserved[426] = 0x5a;
    const f = footer({ diskType: 5, creatorApplication: 'd2v\0', creatorHostOs: 'Mac ', savedState: 1, reserved });
    const d = decodeFooter(encodeFooter(f));
    expect(d).toEqual(f);
    expect(d.diskType).toBe(5);
    expect(d.creatorApplication).toBe('d2v\0');
  });

  it('places fields at the spec offsets (big-endian)', () => {
    const b = encodeFooter(footer({ currentSize: 0x0102030405, timestamp: 0x01234567 }));
    expect(new TextDecoder().decode(b.subarray(0, 8))).toBe('conectix');
    expect([...b.subarray(24, 28)]).toEqual([0x01, 0x23, 0x45, 0x67]);
    expect([...b.subarray(48, 56)]).toEqual([0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05]);
    expect([...b.subarray(56, 60)]).toEqual([0, 120, 4, 17]);
    expect([...b.subarray(60, 64)]).toEqual([0, 0, 0, 4]);
    expect([...b.subarray(68, 72)]).toEqual([0xf8, 0x4f, 0x16, 0x36]);
  });

  it('decodes a 511-byte footer (Virtual PC before 2004) as if padded with a zero byte', () => {
    const f = sealFooter(footer());
    const b = encodeFooter(f);
    const d = decodeFooter(b.subarray(0, 511));
    expect(d).toEqual({ ...f, reserved: f.reserved });
    expect(footerChecksumOk(d)).toBe(true);
  });

  it('refuses a buffer that is neither 511 nor 512 bytes with a TRUNCATED FormatError', () => {
    for (const n of [0, 100, 510, 513, 1024]) {
      let err: unknown;
      try { decodeFooter(new Uint8Array(n)); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(FormatError);
      expect((err as VhdToolError).code).toBe('TRUNCATED');
    }
  });

  it('refuses sizes past 2^53 with a FormatError naming the field', () => {
    const b = encodeFooter(footer());
    b.set([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], 48);
    expect(() => decodeFooter(b)).toThrow(FormatError);
    expect(() => decodeFooter(b)).toThrow(/current size/);
    const c = encodeFooter(footer());
    c.set([0x00, 0x20, 0, 0, 0, 0, 0, 0], 16); // 2^53 exactly: not safe
    expect(() => decodeFooter(c)).toThrow(/data offset/);
  });

  it('sealFooter computes the one\'s complement byte sum with the checksum field skipped', () => {
    const f = sealFooter(footer());
    const b = encodeFooter(f);
    let sum = 0;
    for (let i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += b[i];
    expect(f.checksum).toBe((~sum) >>> 0);
    expect(footerChecksumOk(f)).toBe(true);
    expect(footerChecksumOk({ ...f, timestamp: f.timestamp + 1 })).toBe(false);
    expect(computeFooterChecksum({ ...f, checksum: 0 })).toBe(f.checksum);
  });
});

describe('checksum', () => {
  it('is the one\'s complement of the byte sum, skipping 4 bytes at the checksum offset', () => {
    expect(vhdChecksum(new Uint8Array(8).fill(1), 4)).toBe(0xfffffffb);
    expect(vhdChecksum(new Uint8Array(0), 0)).toBe(0xffffffff);
    const b = new Uint8Array(512).fill(0xff);
    expect(vhdChecksum(b, 64)).toBe((~(508 * 255)) >>> 0);
    // Bytes inside the checksum field never count.
    const c = new Uint8Array(16);
    c.set([9, 9, 9, 9], FOOTER_CHECKSUM_OFFSET % 16);
    expect(vhdChecksum(c, FOOTER_CHECKSUM_OFFSET % 16)).toBe(0xffffffff);
  });
});

describe('header codec', () => {
  it('decode(encode(h)) == h for a Windows-style differencing header', () => {
    const h = header();
    const b = encodeHeader(h);
    expect(b.length).toBe(1024);
    expect(decodeHeader(b)).toEqual(h);
  });

  it('maps the all-zero parent UUID to null and back', () => {
    const h = header({ parentUniqueId: null, parentUnicodeName: '', locators: Array.from({ length: 8 }, () => ({ ...UNUSED_LOCATOR })) });
    const b = encodeHeader(h);
    expect([...b.subarray(40, 56)]).toEqual(new Array(16).fill(0));
    expect(decodeHeader(b)).toEqual(h);
  });

  it('stores the parent name as UTF-16 big-endian, keeping surrogate pairs and unpaired surrogates', () => {
    const name = 'disk-\u00e9\u4e2d\ud83d\ude00-\ud800x.vhd';
    const h = header({ parentUnicodeName: name });
    const b = encodeHeader(h);
    expect([...b.subarray(64, 68)]).toEqual([0, 0x64, 0, 0x69]);
    expect(decodeHeader(b).parentUnicodeName).toBe(name);
    expect(decodeUtf16BeName(encodeUtf16BeName(name))).toBe(name);
  });

  it('holds a 256-code-unit parent name exactly and refuses a longer one', () => {
    const max = 'a'.repeat(256);
    expect(decodeHeader(encodeHeader(header({ parentUnicodeName: max }))).parentUnicodeName).toBe(max);
    expect(() => encodeUtf16BeName('a'.repeat(257))).toThrow(RangeError);
  });

  it('keeps a non-all-ones data offset, the reserved fields and an unknown locator code', () => {
    const reserved2 = new Uint8Array(256);
    reserved2[0] = 7;
    reserved2[255] = 9;
    const h = header({
      dataOffset: 4096, reserved1: 0xabcdef01, reserved2,
      locators: [locator({ platform: 0x12345678, reserved: 3 }), ...Array.from({ length: 7 }, () => ({ ...UNUSED_LOCATOR }))],
    });
    expect(decodeHeader(encodeHeader(h))).toEqual(h);
  });

  it('sealHeader makes the checksum valid and any change invalidates it', () => {
    const h = sealHeader(header());
    const b = encodeHeader(h);
    let sum = 0;
    for (let i = 0; i < 1024; i++) if (i < HEADER_CHECKSUM_OFFSET || i >= HEADER_CHECKSUM_OFFSET + 4) sum += b[i];
    expect(h.checksum).toBe((~sum) >>> 0);
    expect(headerChecksumOk(h)).toBe(true);
    expect(headerChecksumOk({ ...h, maxTableEntries: 3 })).toBe(false);
  });

  it('refuses a buffer that is not 1024 bytes, and offsets past 2^53, with FormatErrors', () => {
    expect(() => decodeHeader(new Uint8Array(512))).toThrow(FormatError);
    const b = encodeHeader(header());
    b.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 16);
    expect(() => decodeHeader(b)).toThrow(/table offset/);
    const c = encodeHeader(header());
    c.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], 8);
    expect(() => decodeHeader(c)).toThrow(/data offset/);
    const d = encodeHeader(header());
    d.set([0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0], 576 + 16);
    expect(() => decodeHeader(d)).toThrow(FormatError);
  });

  it('refuses to encode a header without exactly 8 locator entries', () => {
    expect(() => encodeHeader(header({ locators: [locator()] }))).toThrow(RangeError);
  });
});

describe('locator entry codec', () => {
  const cases: LocatorEntry[] = [
    locator(),
    locator({ platform: 'W2ru', dataSpace: 1, dataLength: 32, dataOffset: 0x1fffffffffffff }),
    locator({ platform: 'Wi2k', dataSpace: 0xffffffff, dataLength: 0xffffffff, reserved: 0xffffffff }),
    locator({ platform: 'Wi2r' }),
    locator({ platform: 'Mac ' }),
    locator({ platform: 'MacX', dataOffset: 0x40000 }),
    locator({ platform: 0x41424344 }),
    { ...UNUSED_LOCATOR },
  ];
  it.each(cases.map((c, i) => [i, c] as const))('entry %i: decode(encode(l)) == l', (_, l) => {
    const b = new Uint8Array(24 + 8);
    encodeLocatorEntry(l, b, 8);
    expect(decodeLocatorEntry(b, 8)).toEqual(l);
  });

  it('writes the platform code, space, length, reserved and offset big-endian at 0/4/8/12/16', () => {
    const b = new Uint8Array(24);
    encodeLocatorEntry(locator({ platform: 'W2ru', dataSpace: 0x10000, dataLength: 0x22, reserved: 0, dataOffset: 0x3000 }), b, 0);
    expect(new TextDecoder().decode(b.subarray(0, 4))).toBe('W2ru');
    expect([...b.subarray(4, 24)]).toEqual([0, 1, 0, 0, 0, 0, 0, 0x22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x30, 0]);
  });
});

describe('BAT codec', () => {
  it('decode(encode(bat)) == bat, with 0xFFFFFFFF read as null', () => {
    const bat = Bat.empty(5);
    bat.set(0, 3);
    bat.set(2, 0xfffffffe);
    bat.set(4, 0x1017);
    const b = encodeBat(bat);
    expect(b.length).toBe(512);
    const d = decodeBat(b, 5);
    expect([0, 1, 2, 3, 4].map((i) => d.get(i))).toEqual([3, null, 0xfffffffe, null, 0x1017]);
    expect(d.countAllocated()).toBe(3);
    expect([...d.allocated()]).toEqual([0, 2, 4]);
    expect(encodeBat(d)).toEqual(b);
  });

  it('stores entries big-endian and pads to a sector with 0xFF (also for entries past the table)', () => {
    const bat = Bat.empty(2);
    bat.set(1, 0x0102030a);
    const b = encodeBat(bat, 200);
    expect(b.length).toBe(1024);
    expect([...b.subarray(0, 8)]).toEqual([0xff, 0xff, 0xff, 0xff, 1, 2, 3, 0x0a]);
    expect(b.subarray(8).every((x) => x === 0xff)).toBe(true);
    expect(batBytes(128)).toBe(512);
    expect(batBytes(129)).toBe(1024);
    expect(batBytes(65024)).toBe(260096);
  });

  it('refuses sector offsets that do not fit a 32-bit entry', () => {
    const bat = Bat.empty(1);
    expect(() => bat.set(0, 0xffffffff)).toThrow(RangeError);
    expect(() => bat.set(0, -1)).toThrow(RangeError);
    expect(() => bat.set(0, 1.5)).toThrow(RangeError);
    bat.set(0, null);
    expect(bat.get(0)).toBeNull();
    expect(bat.get(7)).toBeNull();
  });
});

describe('bitmaps', () => {
  it('are most-significant-bit first: sector 0 is 0x80 of byte 0', () => {
    const bm = new Uint8Array(4);
    setBit(bm, 0);
    setBit(bm, 7);
    setBit(bm, 9);
    expect([...bm]).toEqual([0x81, 0x40, 0, 0]);
    expect(testBit(bm, 0) && testBit(bm, 7) && testBit(bm, 9)).toBe(true);
    expect(testBit(bm, 1) || testBit(bm, 8)).toBe(false);
    clearBit(bm, 7);
    expect(bm[0]).toBe(0x80);
  });

  it('size from the block size, padded to a sector', () => {
    expect(sectorsPerBlock(2 * 1024 * 1024)).toBe(4096);
    expect(bitmapBytes(2 * 1024 * 1024)).toBe(512);
    expect(bitmapBytes(512 * 1024)).toBe(512);
    expect(bitmapBytes(4096)).toBe(512);
    expect(bitmapBytes(512)).toBe(512);
    expect(bitmapBytes(4 * 1024 * 1024)).toBe(1024);
    expect(bitmapBytes(0x80000000)).toBe(524288);
  });

  it('round trip: the set of sectors written equals the set read back by testBit, countBits and forEachRun', () => {
    let seed = 12345;
    const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
    for (let round = 0; round < 50; round++) {
      const n = 1 + (rnd() % 4096);
      const want = new Set<number>();
      const bm = new Uint8Array(bitmapBytes(n * 512));
      for (let k = rnd() % 20; k > 0; k--) {
        const start = rnd() % n;
        const count = 1 + (rnd() % Math.min(300, n - start));
        setRange(bm, start, count);
        for (let i = start; i < start + count; i++) want.add(i);
      }
      const got = new Set<number>();
      for (let i = 0; i < n; i++) if (testBit(bm, i)) got.add(i);
      expect(got).toEqual(want);
      expect(countBits(bm, n)).toBe(want.size);
      expect(anyBitSet(bm, n)).toBe(want.size > 0);
      const fromRuns = new Set<number>();
      let next = 0;
      let contiguous = true;
      let lastSet: boolean | null = null;
      let alternating = true;
      forEachRun(bm, 0, n, (s, c, set) => {
        if (s !== next) contiguous = false;
        if (lastSet === set) alternating = false;
        lastSet = set;
        next = s + c;
        if (set) for (let i = s; i < s + c; i++) fromRuns.add(i);
      });
      expect(contiguous && alternating).toBe(true);
      expect(next).toBe(n);
      expect(fromRuns).toEqual(want);
      const a = rnd() % n;
      const len = Math.min(n - a, 1 + (rnd() % 64));
      let all = true;
      for (let i = a; i < a + len; i++) if (!want.has(i)) all = false;
      expect(allBitsSet(bm, a, len)).toBe(all);
    }
  });

  it('forEachRun reports adjacent runs alternately and never merges set with clear', () => {
    const bm = new Uint8Array(512);
    setRange(bm, 3, 10);
    setRange(bm, 16, 16);
    const runs: Array<[number, number, boolean]> = [];
    forEachRun(bm, 0, 40, (s, c, v) => runs.push([s, c, v]));
    expect(runs).toEqual([[0, 3, false], [3, 10, true], [13, 3, false], [16, 16, true], [32, 8, false]]);
  });
});
