/**
 * Where a child's parent is looked for (pure): relative locators first, then
 * absolute ones (as written when POSIX, and by file name beside the child),
 * then the header's parent name; never the same path twice.
 */
import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { baseName, parentCandidates, windowsRelativeToPosix } from '../../src/chain/candidates.js';
import type { LocatorInfo } from '../../src/vhd/image.js';
import type { PlatformCode } from '../../src/format/index.js';

function loc(platform: PlatformCode, value: string | null, index = 0): LocatorInfo {
  return {
    index,
    entry: { platform, dataSpace: 512, dataLength: 2, reserved: 0, dataOffset: 4096 },
    spaceBytes: 512,
    spaceUnit: 'bytes',
    data: null,
    value: value === null ? { ok: false, reason: 'data is not valid UTF-16' } : { ok: true, path: value },
  };
}

const child = '/srv/vm/disks/child.vhd';
const dir = '/srv/vm/disks';

describe('parentCandidates', () => {
  it('Windows differencing disk (W2ku absolute + W2ru relative, full path as parent name)', () => {
    const c = parentCandidates(child, [
      loc('W2ku', 'C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd', 0),
      loc('W2ru', '.\\fat-parent.vhd', 1),
    ], 'C:\\Projects\\dfvfs\\test_data\\fat-parent.vhd');
    // The relative locator and the W2ku file name name the same file: listed once, by the first source.
    expect(c).toEqual([{ path: path.join(dir, 'fat-parent.vhd'), source: 'W2ru locator' }]);
  });

  it('orders relative locators, then absolute ones, then the parent name', () => {
    const c = parentCandidates(child, [
      loc('W2ku', 'D:\\golden\\abs.vhd', 0),
      loc('MacX', '/mnt/golden/mac.vhd', 1),
      loc('Wi2r', '..\\up\\ascii.vhd', 2),
      loc('W2ru', '.\\sub\\rel.vhd', 3),
    ], 'name.vhd');
    expect(c).toEqual([
      { path: path.join(dir, 'sub/rel.vhd'), source: 'W2ru locator' },
      { path: '/srv/vm/up/ascii.vhd', source: 'Wi2r locator' },
      { path: path.join(dir, 'abs.vhd'), source: 'W2ku locator (file name)' },
      { path: '/mnt/golden/mac.vhd', source: 'MacX locator' },
      { path: path.join(dir, 'mac.vhd'), source: 'MacX locator (file name)' },
      { path: path.join(dir, 'name.vhd'), source: 'parent name' },
    ]);
  });

  it('a POSIX absolute W2ku path is tried as written, then by file name', () => {
    expect(parentCandidates(child, [loc('W2ku', '/other/dir/base.vhd')], '')).toEqual([
      { path: '/other/dir/base.vhd', source: 'W2ku locator' },
      { path: path.join(dir, 'base.vhd'), source: 'W2ku locator (file name)' },
    ]);
  });

  it('an absolute path in a relative locator is reduced to its file name; UNC paths are absolute', () => {
    expect(parentCandidates(child, [loc('W2ru', 'C:\\x\\p.vhd'), loc('Wi2r', '\\\\server\\share\\q.vhd', 1)], '')).toEqual([
      { path: path.join(dir, 'p.vhd'), source: 'W2ru locator (file name)' },
      { path: path.join(dir, 'q.vhd'), source: 'Wi2r locator (file name)' },
    ]);
  });

  it('undecodable locators and opaque Mac aliases are skipped; the parent name still counts', () => {
    const mac: LocatorInfo = { ...loc('Mac ', null), value: { ok: true, path: null, opaque: true } };
    expect(parentCandidates(child, [loc('W2ru', null), mac], 'image.vhd')).toEqual([
      { path: path.join(dir, 'image.vhd'), source: 'parent name' },
    ]);
    expect(parentCandidates(child, [], '')).toEqual([]);
  });

  it('resolves relative to the child\'s directory, whatever the current directory', () => {
    const c = parentCandidates('rel/child.vhd', [loc('W2ru', '.\\p.vhd')], '');
    expect(c[0].path).toBe(path.resolve('rel/p.vhd'));
  });
});

describe('path helpers', () => {
  it('baseName takes the last component of Windows or POSIX paths', () => {
    expect(baseName('C:\\a\\b\\c.vhd')).toBe('c.vhd');
    expect(baseName('/a/b/c.vhd')).toBe('c.vhd');
    expect(baseName('c.vhd')).toBe('c.vhd');
    expect(baseName('a/b\\c.vhd')).toBe('c.vhd');
  });

  it('windowsRelativeToPosix turns backslashes into slashes', () => {
    expect(windowsRelativeToPosix('..\\..\\other\\x.vhd')).toBe('../../other/x.vhd');
  });
});

describe('a parent name holding a relative path (as create and relink write it)', () => {
  it('is followed from the child\'s folder first, then its file name beside the child', () => {
    const dir = path.resolve('/srv/vhd/users');
    const c = parentCandidates(path.join(dir, 'u1.vhd'), [], '../golden/base.vhd');
    expect(c).toEqual([
      { path: path.resolve('/srv/vhd/golden/base.vhd'), source: 'parent name (relative path)' },
      { path: path.join(dir, 'base.vhd'), source: 'parent name' },
    ]);
    expect(parentCandidates(path.join(dir, 'u1.vhd'), [], 'C:\\golden\\base.vhd').map((x) => x.path)).toEqual([path.join(dir, 'base.vhd')]);
  });
});
