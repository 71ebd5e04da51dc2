/**
 * Parent locator data: blktap's data-space heuristic (sectors below 512,
 * bytes when a multiple of 512, invalid otherwise) and decoding of each
 * platform's data (W2ku/W2ru UTF-16LE, Wi2k/Wi2r ASCII, MacX file URL).
 */
import { describe, expect, it } from 'vitest';
import { decodeLocatorData, encodeUtf16Le, locatorSpaceBytes, platformCode, PLATFORM_CODES } from '../../src/format/index.js';

const le = (s: string) => encodeUtf16Le(s);
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const utf8 = (s: string) => new TextEncoder().encode(s);

describe('locator data space', () => {
  it('reads Hyper-V byte counts (4096, 65536) as bytes', () => {
    expect(locatorSpaceBytes(4096)).toEqual({ bytes: 4096, unit: 'bytes' });
    expect(locatorSpaceBytes(65536)).toEqual({ bytes: 65536, unit: 'bytes' });
    expect(locatorSpaceBytes(512)).toEqual({ bytes: 512, unit: 'bytes' });
    expect(locatorSpaceBytes(1024)).toEqual({ bytes: 1024, unit: 'bytes' });
  });

  it('reads values below 512 as sector counts (the spec\'s unit)', () => {
    expect(locatorSpaceBytes(1)).toEqual({ bytes: 512, unit: 'sectors' });
    expect(locatorSpaceBytes(2)).toEqual({ bytes: 1024, unit: 'sectors' });
    expect(locatorSpaceBytes(511)).toEqual({ bytes: 511 * 512, unit: 'sectors' });
    expect(locatorSpaceBytes(0)).toEqual({ bytes: 0, unit: 'sectors' });
  });

  it('calls anything else (512 or more, not a multiple of 512) invalid', () => {
    for (const v of [513, 1000, 4095, 4097, 65535, 0xffffffff]) expect(locatorSpaceBytes(v)).toBeNull();
  });
});

describe('locator data decoding', () => {
  it('W2ku: UTF-16LE absolute Windows path', () => {
    const p = 'C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd';
    const b = le(p);
    expect(b.length).toBe(84); // the length Windows stored for this path in fat-differential.vhd
    expect([...b.subarray(0, 4)]).toEqual([0x43, 0, 0x3a, 0]);
    expect(decodeLocatorData('W2ku', b)).toEqual({ ok: true, path: p });
  });

  it('W2ru: UTF-16LE relative path, non-ASCII and astral characters included', () => {
    expect(decodeLocatorData('W2ru', le('.\\fat-parent.vhd'))).toEqual({ ok: true, path: '.\\fat-parent.vhd' });
    const p = '..\\..\\other\\Windows XP Mode base \u00e9\ud83d\ude00.vhd';
    expect(decodeLocatorData('W2ru', le(p))).toEqual({ ok: true, path: p });
  });

  it('strips trailing NUL terminators but refuses an embedded NUL or an empty path', () => {
    const padded = new Uint8Array(40);
    padded.set(le('.\\a.vhd'));
    expect(decodeLocatorData('W2ru', padded)).toEqual({ ok: true, path: '.\\a.vhd' });
    const r = decodeLocatorData('W2ru', le('a\0b.vhd'));
    expect(r.ok).toBe(false);
    expect(decodeLocatorData('W2ku', new Uint8Array(8))).toEqual({ ok: false, reason: 'path is empty' });
  });

  it('refuses invalid UTF-16: an unpaired high surrogate, a lone low surrogate', () => {
    const hi = new Uint8Array([0x41, 0, 0x00, 0xd8, 0x42, 0]); // 'A', U+D800, 'B'
    expect(decodeLocatorData('W2ku', hi)).toEqual({ ok: false, reason: 'data is not valid UTF-16' });
    const lo = new Uint8Array([0x00, 0xdc, 0x41, 0]); // U+DC00, 'A'
    expect(decodeLocatorData('W2ru', lo)).toEqual({ ok: false, reason: 'data is not valid UTF-16' });
  });

  it('refuses UTF-16 data of odd length', () => {
    const r = decodeLocatorData('W2ru', new Uint8Array([0x2e, 0, 0x5c]));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/odd length \(3 bytes\)/);
  });

  it('Wi2r/Wi2k: ASCII paths (deprecated, still written by Windows Virtual PC)', () => {
    expect(decodeLocatorData('Wi2r', ascii('..\\base.vhd'))).toEqual({ ok: true, path: '..\\base.vhd' });
    expect(decodeLocatorData('Wi2k', ascii('C:\\vm\\base.vhd\0\0'))).toEqual({ ok: true, path: 'C:\\vm\\base.vhd' });
    expect(decodeLocatorData('Wi2r', Uint8Array.of(0x61, 0xe9, 0x62)).ok).toBe(false);
  });

  it('MacX: a UTF-8 file URL with or without "localhost", percent-escapes decoded', () => {
    expect(decodeLocatorData('MacX', utf8('file://localhost/directory/parent.vhd'))).toEqual({ ok: true, path: '/directory/parent.vhd' });
    expect(decodeLocatorData('MacX', utf8('file:///srv/vm/my%20parent%C3%A9.vhd'))).toEqual({ ok: true, path: '/srv/vm/my parent\u00e9.vhd' });
    expect(decodeLocatorData('MacX', utf8('http://example.com/p.vhd')).ok).toBe(false);
    expect(decodeLocatorData('MacX', utf8('file:///bad%ZZ.vhd')).ok).toBe(false);
    expect(decodeLocatorData('MacX', Uint8Array.of(0x66, 0xff, 0xfe)).ok).toBe(false);
  });

  it('"Mac " alias records are opaque; unknown codes are refused', () => {
    expect(decodeLocatorData('Mac ', new Uint8Array([1, 2, 3]))).toEqual({ ok: true, path: null, opaque: true });
    const r = decodeLocatorData(0x12345678, new Uint8Array(4));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/0x12345678/);
  });

  it('platform codes are the ASCII of their names', () => {
    for (const [name, code] of Object.entries(PLATFORM_CODES)) {
      expect(platformCode(name as keyof typeof PLATFORM_CODES)).toBe(code);
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, code);
      expect(String.fromCharCode(...b)).toBe(name);
    }
    expect(platformCode(null)).toBe(0);
  });
});
