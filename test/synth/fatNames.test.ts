/**
 * The sample's FAT writer: 8.3 names as fatgen103's worked examples give
 * them, numeric tails on collisions, the long-name slots and their checksum
 * as vhdtool's FAT reader (written apart) decodes them.
 */
import { describe, expect, it } from 'vitest';
import { DirParser, type DirEntry } from '../../src/guest/fat/dirs.js';
import { longNameSlots, shortEntry, shortNameChecksum, shortNameFor } from '../../src/synth/fatNames.js';

const none = new Set<string>();

describe('shortNameFor', () => {
  it('gives fatgen103\'s examples their 8.3 names', () => {
    expect(shortNameFor('The quick brown.fox', none).raw).toBe('THEQUI~1FOX');
    expect(shortNameFor('program files', none).raw).toBe('PROGRA~1   ');
    expect(shortNameFor('TextFile.Mine.txt', none).raw).toBe('TEXTFI~1TXT');
    expect(shortNameFor('ver +1.2.text', none).raw).toBe('VER_12~1TEX');
    expect(shortNameFor('.bashrc.swp', none).raw).toBe('BASHRC~1SWP');
  });

  it('keeps a name that is its own 8.3 form, without a long name; a lower-case one gets a long name but no tail', () => {
    expect(shortNameFor('CONFIG.SYS', none)).toEqual({ raw: 'CONFIG  SYS', needsLongName: false });
    expect(shortNameFor('settings.ini', none)).toEqual({ raw: 'SETTINGSINI', needsLongName: true });
  });

  it('takes the next free numeric tail, and refuses a plain 8.3 name the folder holds', () => {
    const taken = new Set(['HOLIDA~1JPG', 'HOLIDA~2JPG']);
    expect(shortNameFor('holiday photo 03.jpg', taken).raw).toBe('HOLIDA~3JPG');
    expect(() => shortNameFor('config.sys', new Set(['CONFIG  SYS']))).toThrow(/already holds CONFIG.SYS/);
    expect(() => shortNameFor('a/b', none)).toThrow(/not a FAT file name/);
  });
});

describe('long-name slots', () => {
  it('decode, with the short entry after them, to the long name in vhdtool\'s reader', () => {
    for (const name of ['Résumé.txt', 'Quarterly report 2026-Q3.txt', 'exactly13char', 'a name of twenty-six chars']) {
      const short = shortNameFor(name, none);
      const slots = [...longNameSlots(name, short.raw), shortEntry({ raw: short.raw, attributes: 0x20, firstCluster: 5, size: 9, created: new Date(Date.UTC(2026, 0, 2)), written: new Date(Date.UTC(2026, 0, 2)) })];
      const dir = new Uint8Array(Buffer.concat(slots));
      const entries: DirEntry[] = [];
      new DirParser(false).feed(dir, 0, (x) => entries.push(x));
      expect(entries).toHaveLength(1);
      const e = entries[0];
      expect(e.name, name).toBe(name);
      expect(e.nameProblem).toBeNull();
      expect(slots[0][13]).toBe(shortNameChecksum(short.raw));
    }
  });
});
