/**
 * Issue 17, item 3: every file vhdtool replaces keeps its owner, group, mode
 * and extended attributes (the SELinux label libvirt sets, user.*
 * attributes), given to the temporary before the rename, and a file whose
 * attributes cannot be carried over is refused before anything is written.
 * Checked as root with another owner; getfattr and stat are the oracles.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VhdToolError } from '../../src/errors.js';
import { nodeFileSystem, type FileAttributes, type FileSystem } from '../../src/io/fsys.js';
import { compact } from '../../src/ops/compact.js';
import { maintain } from '../../src/ops/maintain.js';
import { escapePath, parseDump, readXattrs, writeXattrs } from '../../src/io/xattr.js';
import { hasBuild, ROOT, runCli } from '../reliability/helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const IS_ROOT = process.getuid?.() === 0;
const HAVE_ATTR = spawnSync('getfattr', ['--version']).status === 0 && spawnSync('setfattr', ['--version']).status === 0;
/** An SELinux label as the kernel stores it: text with a trailing NUL (given to setfattr in hex). */
const LABEL = `0x${Buffer.from('system_u:object_r:svirt_image_t:s0:c12,c34\0').toString('hex')}`;

function sample(): { dir: string; base: string; child: string } {
  const dir = tempDir();
  for (const f of ['base.vhd', 'child.vhd']) copyFileSync(path.join(ROOT, 'fixtures', 'sample', f), path.join(dir, f));
  return { dir, base: path.join(dir, 'base.vhd'), child: path.join(dir, 'child.vhd') };
}

function setfattr(file: string, name: string, value: string): void {
  const r = spawnSync('setfattr', ['-n', name, '-v', value, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

/** The attributes as getfattr and stat(1) print them (the oracle, independent of vhdtool's parsing). */
function oracle(file: string): { owner: string; xattrs: string } {
  const owner = spawnSync('stat', ['-c', '%u:%g %a', file], { encoding: 'utf8' }).stdout.trim();
  const x = spawnSync('getfattr', ['--absolute-names', '-d', '-m', '-', '-e', 'hex', file], { encoding: 'utf8' }).stdout;
  return { owner, xattrs: x.split('\n').filter((l) => l && !l.startsWith('#')).sort().join('\n') };
}

/** A disk owned by someone else, mode 0640 (setgid too, to see it survive the chown), a label and a user attribute. */
function dress(file: string): void {
  chownSync(file, 1234, 2345);
  chmodSync(file, 0o2640);
  setfattr(file, 'user.vm', 'web-01');
  setfattr(file, 'security.selinux', LABEL);
}

const temps = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.tmp') || n.endsWith('.lock'));

describe.skipIf(!IS_ROOT || !HAVE_ATTR)('a replaced file keeps owner, group, mode and extended attributes', () => {
  it('the xattr dump round-trips names with "=", newlines and non-ASCII bytes, and values with NUL bytes', async () => {
    const dir = tempDir();
    const a = path.join(dir, 'a b=\n.vhd');
    const b = path.join(dir, 'b\u00e9.vhd');
    for (const f of [a, b]) copyFileSync(path.join(ROOT, 'fixtures', 'sample', 'base.vhd'), f);
    for (const [n, v] of [['user.a=b', 'x'], ['user.x\ny', '0x00ff00'], ['user.\u00e9t\u00e9', 'v'], ['user.empty', '']]) {
      spawnSync('setfattr', ['-n', n, ...(v ? ['-v', v] : []), a]);
    }
    const got = await readXattrs(a);
    expect(got.map((x) => x.name)).toEqual(['user.a\\075b', 'user.empty', 'user.x\\012y', 'user.\u00c3\u00a9t\u00c3\u00a9']);
    await writeXattrs(b, got);
    expect(oracle(b).xattrs).toBe(oracle(a).xattrs);
    expect(escapePath('/a b/c')).toBe('/a\\040b/c');
    expect(parseDump('# file: x\nuser.q=0xAB\n\n')).toEqual([{ name: 'user.q', hex: 'ab' }]);
  });

  it('compact in place keeps another owner, the setgid bit, the SELinux label and a user attribute', async () => {
    const s = sample();
    dress(s.child);
    const before = oracle(s.child);
    expect(before.owner).toBe('1234:2345 2640');
    const r = await compact(s.child, { threads: 0 });
    expect(r.changed).toBe(true);
    expect(statSync(s.child).size).toBe(r.newSize);
    expect(oracle(s.child)).toEqual(before);
    expect(temps(s.dir)).toEqual([]);
  });

  it("maintain's shortening (the leaf coalesced in place) keeps them too", async () => {
    const s = sample();
    dress(s.child);
    const before = oracle(s.child);
    const r = await maintain([s.dir], { maxDepth: 0, threads: 0, minReclaim: 1 << 30 });
    expect(r.exitCode).toBe(0);
    expect(r.summary.layersCoalesced).toBe(1);
    expect(oracle(s.child)).toEqual(before);
  });

  it('the temporary has them before it is renamed over the disk (a crash never publishes a wrong owner or mode)', async () => {
    const s = sample();
    dress(s.child);
    const want = oracle(s.child);
    const seen: Array<{ owner: string; xattrs: string }> = [];
    const fs: FileSystem = {
      ...nodeFileSystem,
      async rename(from, to) {
        seen.push(oracle(from));
        return nodeFileSystem.rename(from, to);
      },
    };
    await compact(s.child, { fs, threads: 0 });
    expect(seen).toEqual([want]);
  });

  it('an attribute the new file does not get is refused before a byte is written: exit 6, the disk unchanged', async () => {
    const s = sample();
    dress(s.child);
    const bytes = readFileSync(s.child);
    let writes = 0;
    // A file system that silently drops user.* attributes on new files.
    const fs: FileSystem = {
      ...nodeFileSystem,
      async createExclusive(p, mode) {
        const f = await nodeFileSystem.createExclusive(p, mode);
        const write = f.write.bind(f);
        if (p.endsWith('.tmp')) f.write = async (...a) => { writes++; return write(...a); };
        return f;
      },
      setAttributes(p, a: FileAttributes) {
        return nodeFileSystem.setAttributes(p, { ...a, xattrs: a.xattrs.filter((x) => !x.name.startsWith('user.')) });
      },
    };
    const e = await compact(s.child, { fs, threads: 0 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VhdToolError);
    expect((e as VhdToolError).code).toBe('REFUSED');
    expect((e as VhdToolError).exitCode).toBe(6);
    expect((e as VhdToolError).message).toContain('extended attribute user.vm');
    expect(writes).toBe(0);
    expect(readFileSync(s.child).equals(bytes)).toBe(true);
    expect(temps(s.dir)).toEqual([]);
  });

  it.skipIf(!hasBuild())('a user who may not give the new file its owner is refused (exit 7), the disk unchanged', async () => {
    const s = sample();
    chmodSync(s.dir, 0o777);
    chownSync(s.child, 1234, 1234);
    chmodSync(s.child, 0o666);
    const bytes = readFileSync(s.child);
    const r = await runCli(['compact', s.child, '--threads', '0'], { uid: 1235, gid: 1235, measure: false, timeoutMs: 30_000 });
    expect(r.code).toBe(7);
    expect(r.stderr.trim()).toBe(`vhdtool: ${s.child}: the new file cannot be given the owner 1234:1234, mode 0666 and extended attributes of the original (permission denied); nothing was changed`);
    expect(readFileSync(s.child).equals(bytes)).toBe(true);
    expect(statSync(s.child).uid).toBe(1234);
    expect(temps(s.dir)).toEqual([]);
  });
});

describe.skipIf(!IS_ROOT || !HAVE_ATTR || !hasBuild() || spawnSync('/usr/bin/python3', ['-c', 'import os; os.listxattr']).status !== 0)('a host without the attr tools', () => {
  /** A PATH holding node and python3 only (or node alone): getfattr and setfattr are not there. */
  function bareBin(withPython: boolean): string {
    const bin = path.join(tempDir(), 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, path.join(bin, 'node'));
    if (withPython) symlinkSync('/usr/bin/python3', path.join(bin, 'python3'));
    return bin;
  }

  it('python3 carries the attributes over instead (names with spaces and binary values included)', () => {
    const s = sample();
    setfattr(s.child, 'user.vm name', '0x68656c6c6f');
    setfattr(s.child, 'user.bin', '0x00ff10');
    setfattr(s.child, 'security.selinux', LABEL);
    chownSync(s.child, 1234, 2345);
    const before = oracle(s.child);
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vhdtool.js'), 'compact', s.child], { env: { PATH: bareBin(true) }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/reclaimed/);
    expect(oracle(s.child)).toEqual(before);
  });

  it('with neither, a disk is refused before anything is written (exit 6), naming what to install', () => {
    const s = sample();
    setfattr(s.child, 'user.x', '0x01');
    const bytes = readFileSync(s.child);
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'vhdtool.js'), 'compact', s.child], { env: { PATH: bareBin(false) }, encoding: 'utf8' });
    expect(r.status).toBe(6);
    expect(r.stderr).toMatch(/install the attr package/);
    expect(readFileSync(s.child).equals(bytes)).toBe(true);
    expect(readdirSync(s.dir).sort()).toEqual(['base.vhd', 'child.vhd']);
  });
});
