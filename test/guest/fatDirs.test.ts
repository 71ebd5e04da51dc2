/**
 * Directory slots decoded by hand-built examples: what mtools cannot be
 * asked to write in a test (names outside the basic plane, NT case bits,
 * 0x05 for 0xE5, the end marker) and how a long name runs across windows.
 */
import { describe, expect, it } from 'vitest';
import { DirParser, shortName, shortNameChecksum, type DirEntry } from '../../src/guest/fat/dirs.js';
import { decodeOemName } from '../../src/guest/fat/bpb.js';

const OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/** Slots for `long` (UTF-16) over the short name `short11`, as a VFAT driver writes them. */
function slots(long: string, short11: string, attr = 0x20, cluster = 5, size = 100, nt = 0): Uint8Array {
  const units = [...Array(long.length).keys()].map((i) => long.charCodeAt(i));
  const n = Math.ceil((units.length + 1) / 13);
  const out = new Uint8Array((n + 1) * 32);
  const s = out.subarray(n * 32);
  s.set(Buffer.from(short11, 'latin1'));
  s[11] = attr;
  s[12] = nt;
  s[26] = cluster & 0xff;
  s[27] = cluster >> 8;
  s[28] = size & 0xff;
  s[29] = (size >> 8) & 0xff;
  const sum = shortNameChecksum(s, 0);
  for (let k = 0; k < n; k++) {
    const seq = n - k;
    const e = out.subarray(k * 32);
    e[0] = seq | (k === 0 ? 0x40 : 0);
    e[11] = 0x0f;
    e[13] = sum;
    for (let i = 0; i < 13; i++) {
      const j = (seq - 1) * 13 + i;
      const u = j < units.length ? units[j] : j === units.length ? 0 : 0xffff;
      e[OFFSETS[i]] = u & 0xff;
      e[OFFSETS[i] + 1] = u >> 8;
    }
  }
  return out;
}

function parse(bytes: Uint8Array, window = bytes.length): DirEntry[] {
  const p = new DirParser(false);
  const out: DirEntry[] = [];
  for (let o = 0; o < bytes.length; o += window) p.feed(bytes.subarray(o, o + window), 1000 + o, (e) => out.push(e));
  return out;
}

describe('FAT directory slots', () => {
  it('a long name with accents and a character outside the basic plane (a surrogate pair), over three slots', () => {
    const name = 'Ünïcödé 😀 name, quite long.txt';
    const e = parse(slots(name, 'UNICOD~1TXT'));
    expect(e).toHaveLength(1);
    expect(e[0].name).toBe(name);
    expect(e[0].shortName).toBe('UNICOD~1.TXT');
    expect(e[0].slots).toEqual([1000, 1032, 1064, 1096]);
    expect(e[0].nameProblem).toBeNull();
  });

  it('a long name read across window boundaries (one slot a window) is still whole', () => {
    const name = 'A name long enough for three slots.data';
    expect(parse(slots(name, 'ANAMEL~1DAT'), 32)[0].name).toBe(name);
  });

  it('8.3 names: NT lower-case bits, 0x05 standing for 0xE5, code page 437, no extension', () => {
    const b = new Uint8Array(32);
    b.set(Buffer.from('README  TXT', 'latin1'));
    b[12] = 0x08 | 0x10;
    expect(shortName(b, 0)).toBe('readme.txt');
    b.set(Buffer.from('\x05BC     DAT', 'latin1'));
    b[12] = 0;
    expect(shortName(b, 0)).toBe('σBC.DAT');
    b.set(Buffer.from('\x80NOEXT     ', 'latin1'));
    expect(shortName(b, 0)).toBe('ÇNOEXT');
    expect(decodeOemName(Uint8Array.of(0x9b, 0xe1, 0xff))).toBe('¢ß\u00a0');
  });

  it('deleted entries are skipped, dot entries too, the label is kept apart, and 0x00 ends the directory', () => {
    const parts = [
      slots('.', '.          ', 0x10),
      slots('..', '..         ', 0x10),
      slots('gone file.txt', 'GONEFI~1TXT'),
      slots('kept', 'KEPT       '),
      slots('after the end', 'AFTERT~1   '),
    ];
    for (let o = 0; o < parts[2].length; o += 32) parts[2][o] = 0xe5;
    const label = new Uint8Array(32);
    label.set(Buffer.from('MY VOLUME  ', 'latin1'));
    label[11] = 0x08;
    const bytes = Buffer.concat([parts[0].subarray(32), parts[1].subarray(32), parts[2], label, parts[3], new Uint8Array(32), parts[4]]);
    const p = new DirParser(false);
    const out: DirEntry[] = [];
    expect(p.feed(bytes, 0, (e) => out.push(e))).toBe(false);
    expect(out.map((e) => e.name)).toEqual(['kept']);
    expect(p.labels).toEqual(['MY VOLUME']);
    expect(p.feed(bytes, 0, (e) => out.push(e))).toBe(false);
  });

  it('a long name missing a slot gives the 8.3 name and says why; slots without their first are ignored', () => {
    const b = slots('A name long enough for three slots.data', 'ANAMEL~1DAT');
    const missing = Buffer.concat([b.subarray(0, 32), b.subarray(64)]);
    const e = parse(missing);
    expect(e[0].name).toBe('ANAMEL~1.DAT');
    expect(e[0].nameProblem).toMatch(/^long-name slot 2 where 3 was expected; used the 8.3 name/);
    const noStart = parse(b.subarray(32));
    expect(noStart[0].name).toBe('ANAMEL~1.DAT');
    expect(noStart[0].nameProblem).toBeNull();
  });

  it('a name holding "/" cannot split a path: it is written with "_" and reported', () => {
    const e = parse(slots('a/b', 'AB~1       '));
    expect(e[0].name).toBe('a_b');
    expect(e[0].nameProblem).toMatch(/holds '\/'/);
  });

  it('FAT32 entries take the high word of the first cluster; FAT12/16 entries ignore it', () => {
    const b = slots('x', 'X          ');
    b[32 + 20] = 0x01;
    expect(parse(b)[0].firstCluster).toBe(5);
    const p = new DirParser(true);
    const out: DirEntry[] = [];
    p.feed(b, 0, (e) => out.push(e));
    expect(out[0].firstCluster).toBe(0x10005);
  });
});
