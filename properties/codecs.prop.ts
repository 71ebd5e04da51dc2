/**
 * Round-trip properties of the pure codecs over random values: footers,
 * dynamic headers, locator entries, BATs and bitmaps. Each property is named
 * by its invariant.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Bat, decodeBat, encodeBat, batBytes, decodeFooter, encodeFooter, decodeHeader, encodeHeader, decodeLocatorEntry,
  encodeLocatorEntry, decodeUuid, sealFooter, sealHeader, footerChecksumOk, headerChecksumOk, vhdChecksum,
  bitmapBytes, setRange, testBit, countBits, forEachRun, runEnd, geometryForSize, geometryCapacity, decodeLocatorData,
  encodeUtf16Le, vhdTimeToIso, PLATFORM_CODES, FOOTER_CHECKSUM_OFFSET, HEADER_CHECKSUM_OFFSET,
  type DynamicHeader, type Footer, type LocatorEntry, type PlatformCode,
} from '../src/format/index.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS_CODECS ?? 300);
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.maxSafeNat());
const latin1 = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => String.fromCharCode(...b));
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const uuid = bytes(16).map((b) => decodeUuid(b, 0));
const KNOWN = new Set<number>(Object.values(PLATFORM_CODES));

/** Makes the big-endian u64 at `off` at most 2^53 - 1. */
function safe64(b: Uint8Array, off: number): void {
  b[off] = 0;
  b[off + 1] &= 0x1f;
}

const footerArb: fc.Arbitrary<Footer> = fc.record({
  cookie: fc.oneof(fc.constant('conectix'), latin1(8)),
  features: u32,
  formatVersion: u32,
  dataOffset: fc.option(u64, { nil: null }),
  timestamp: u32,
  creatorApplication: fc.oneof(fc.constantFrom('win ', 'vpc ', 'qemu', 'qem2', 'd2v\0', 'tap\0', 'vhdt'), latin1(4)),
  creatorVersion: u32,
  creatorHostOs: fc.oneof(fc.constantFrom('Wi2k', 'Mac '), latin1(4)),
  originalSize: u64,
  currentSize: u64,
  geometry: fc.record({ cylinders: u16, heads: u8, sectorsPerTrack: u8 }),
  diskType: fc.oneof(fc.constantFrom<Footer['diskType']>('fixed', 'dynamic', 'differencing'), u32.filter((n) => n < 2 || n > 4)),
  checksum: u32,
  uniqueId: uuid,
  savedState: u8,
  reserved: bytes(427),
});

const locatorArb: fc.Arbitrary<LocatorEntry> = fc.record({
  platform: fc.oneof(
    fc.constant(null),
    fc.constantFrom(...(Object.keys(PLATFORM_CODES) as PlatformCode[])),
    u32.filter((n) => n !== 0 && !KNOWN.has(n)),
  ),
  dataSpace: u32,
  dataLength: u32,
  reserved: u32,
  dataOffset: u64,
});

/** A parent name: up to 256 UTF-16 code units, none NUL (surrogates, paired or not, allowed). */
const nameArb = fc.array(fc.integer({ min: 1, max: 0xffff }), { maxLength: 256 }).map((cs) => String.fromCharCode(...cs));

const headerArb: fc.Arbitrary<DynamicHeader> = fc.record({
  cookie: fc.oneof(fc.constant('cxsparse'), latin1(8)),
  dataOffset: fc.option(u64, { nil: null }),
  tableOffset: u64,
  headerVersion: u32,
  maxTableEntries: u32,
  blockSize: u32,
  checksum: u32,
  parentUniqueId: fc.option(uuid.filter((u) => u !== '00000000-0000-0000-0000-000000000000'), { nil: null }),
  parentTimestamp: u32,
  reserved1: u32,
  parentUnicodeName: nameArb,
  locators: fc.array(locatorArb, { minLength: 8, maxLength: 8 }),
  reserved2: bytes(256),
});

describe('codec round trips', () => {
  it('decode(encode(footer)) equals the footer, for any footer the format can hold', () => {
    fc.assert(fc.property(footerArb, (f) => {
      expect(decodeFooter(encodeFooter(f))).toEqual(f);
    }), { numRuns: RUNS });
  });

  it('encode(decode(bytes)) equals the bytes, for any 512 bytes whose size fields fit 2^53', () => {
    const raw = bytes(512).map((b) => {
      // Keep the 64-bit fields decodable: below 2^53, or all ones for the data offset.
      if (b[17] & 1) b.fill(0xff, 16, 24);
      else safe64(b, 16);
      safe64(b, 40);
      safe64(b, 48);
      return b;
    });
    fc.assert(fc.property(raw, (b) => {
      expect(encodeFooter(decodeFooter(b))).toEqual(b);
    }), { numRuns: RUNS });
  });

  it('a sealed footer always has a valid checksum, and changing any byte outside the checksum field breaks it', () => {
    fc.assert(fc.property(footerArb, fc.integer({ min: 0, max: 511 }), fc.integer({ min: 1, max: 255 }), (f, at, delta) => {
      const sealed = sealFooter(f);
      expect(footerChecksumOk(sealed)).toBe(true);
      const b = encodeFooter(sealed);
      expect(vhdChecksum(b, FOOTER_CHECKSUM_OFFSET)).toBe(sealed.checksum);
      if (at >= 64 && at < 68) return;
      b[at] = (b[at] + delta) & 0xff;
      expect(vhdChecksum(b, FOOTER_CHECKSUM_OFFSET)).not.toBe(sealed.checksum);
    }), { numRuns: RUNS });
  });

  it('decode(encode(header)) equals the header, for any header the format can hold', () => {
    fc.assert(fc.property(headerArb, (h) => {
      expect(decodeHeader(encodeHeader(h))).toEqual(h);
    }), { numRuns: RUNS });
  });

  it('decoding a header is idempotent through encoding: decode(encode(decode(b))) equals decode(b)', () => {
    const raw = bytes(1024).map((b) => {
      safe64(b, 16); // table offset
      if (b[9] & 1) b.fill(0xff, 8, 16); // data offset: all ones, or below 2^53
      else safe64(b, 8);
      for (let i = 0; i < 8; i++) safe64(b, 576 + i * 24 + 16);
      return b;
    });
    fc.assert(fc.property(raw, (b) => {
      const d = decodeHeader(b);
      expect(decodeHeader(encodeHeader(d))).toEqual(d);
      expect(headerChecksumOk(sealHeader(d))).toBe(true);
      expect(vhdChecksum(encodeHeader(sealHeader(d)), HEADER_CHECKSUM_OFFSET)).toBe(sealHeader(d).checksum);
    }), { numRuns: RUNS });
  });

  it('decode(encode(locator entry)) equals the entry, at any offset in a buffer', () => {
    fc.assert(fc.property(locatorArb, fc.integer({ min: 0, max: 100 }), (l, off) => {
      const b = new Uint8Array(off + 24);
      encodeLocatorEntry(l, b, off);
      expect(decodeLocatorEntry(b, off)).toEqual(l);
    }), { numRuns: RUNS });
  });

  it('W2ku/W2ru locator data: any well-formed UTF-16 path without NUL decodes to itself', () => {
    const path = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 }).filter((s) => !s.includes('\0'));
    fc.assert(fc.property(path, fc.constantFrom<PlatformCode>('W2ku', 'W2ru'), fc.integer({ min: 0, max: 8 }), (p, code, pad) => {
      const data = new Uint8Array(p.length * 2 + pad * 2);
      data.set(encodeUtf16Le(p));
      expect(decodeLocatorData(code, data)).toEqual({ ok: true, path: p });
    }), { numRuns: RUNS });
  });

  it('decodeBat(encodeBat(bat)) has the same entries, unused ones read as null, padded with 0xFF to a sector', () => {
    const entries = fc.array(fc.option(fc.integer({ min: 0, max: 0xfffffffe }), { nil: null }), { maxLength: 700 });
    fc.assert(fc.property(entries, fc.integer({ min: 0, max: 300 }), (es, extra) => {
      const bat = Bat.empty(es.length);
      es.forEach((s, i) => bat.set(i, s));
      const b = encodeBat(bat, es.length + extra);
      expect(b.length).toBe(batBytes(es.length + extra));
      expect(b.length % 512).toBe(0);
      const d = decodeBat(b, es.length + extra);
      const got = Array.from({ length: es.length + extra }, (_, i) => d.get(i));
      expect(got).toEqual([...es, ...new Array(extra).fill(null)]);
      expect(d.countAllocated()).toBe(es.filter((s) => s !== null).length);
      expect(b.subarray((es.length + extra) * 4).every((x) => x === 0xff)).toBe(true);
    }), { numRuns: RUNS });
  });

  it('a bitmap holds exactly the sectors written to it, most significant bit first', () => {
    const arb = fc.integer({ min: 1, max: 4096 }).chain((n) => fc.tuple(
      fc.constant(n),
      fc.array(fc.tuple(fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 1, max: 600 })), { maxLength: 12 }),
    ));
    fc.assert(fc.property(arb, ([n, ranges]) => {
      const bm = new Uint8Array(bitmapBytes(n * 512));
      const want = new Uint8Array(n);
      for (const [s, c0] of ranges) {
        const c = Math.min(c0, n - s);
        setRange(bm, s, c);
        want.fill(1, s, s + c);
      }
      const viaTestBit = new Uint8Array(n);
      const viaMsbFirst = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        viaTestBit[i] = testBit(bm, i) ? 1 : 0;
        viaMsbFirst[i] = (bm[i >> 3] >> (7 - (i & 7))) & 1;
      }
      expect(Buffer.from(viaTestBit).equals(Buffer.from(want))).toBe(true);
      expect(Buffer.from(viaMsbFirst).equals(Buffer.from(want))).toBe(true);
      expect(countBits(bm, n)).toBe(want.reduce((a, x) => a + x, 0));
      const back = new Uint8Array(n);
      forEachRun(bm, 0, n, (s, c, set) => { if (set) back.fill(1, s, s + c); });
      expect(Buffer.from(back).equals(Buffer.from(want))).toBe(true);
      // Bits past the end of the range stay clear (the padding of the sector).
      for (let i = n; i < bm.length * 8; i++) if (testBit(bm, i)) throw new Error(`bit ${i} set past ${n}`);
    }), { numRuns: RUNS });
  });

  it('runEnd is where the run of equal bits starting at any bit ends, within any range (brute force agrees)', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 4096 }),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 600 })), { maxLength: 12 }),
      fc.nat(), fc.nat(),
      (n, ranges, a, b) => {
        const bm = new Uint8Array(bitmapBytes(n * 512));
        for (const [s0, c0] of ranges) {
          const s = s0 % n;
          setRange(bm, s, Math.min(c0, n - s));
        }
        const i = a % n;
        const end = i + 1 + (b % (n - i));
        let want = i + 1;
        while (want < end && testBit(bm, want) === testBit(bm, i)) want++;
        expect(runEnd(bm, i, end)).toBe(want);
      }), { numRuns: RUNS * 4 });
  });

  it('the CHS geometry never describes more than the disk size', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2040 * 1024 * 1024 * 2 }), (sectors) => {
      const size = sectors * 512;
      const g = geometryForSize(size);
      expect(geometryCapacity(g)).toBeLessThanOrEqual(size);
      expect(g.cylinders).toBeLessThanOrEqual(65535);
      expect(g.heads).toBeLessThanOrEqual(16);
      expect([17, 31, 63, 255]).toContain(g.sectorsPerTrack);
    }), { numRuns: RUNS });
  });
});

describe('VHD time stamps', () => {
  it('every u32 VHD time renders as the UTC instant Date gives for it, to the second', () => {
    fc.assert(fc.property(fc.oneof(u32, fc.constantFrom(0, 59, 86399, 86400, 0xffffffff)), (t) => {
      expect(vhdTimeToIso(t)).toBe(new Date(946684800000 + t * 1000).toISOString().replace('.000Z', 'Z'));
    }), { numRuns: RUNS * 10 });
  });
});
