/**
 * A template, an updated template and a user's disk, made by the real tools
 * (mkfs.ext4 -d and debugfs; mkfs.fat and mtools), with changes that are
 * disjoint, conflicting, in place (same inode or directory entry, same
 * clusters: bytes rewritten in the image) and renamed. `expected` is what
 * was constructed: the conflicts a template check must find, no more.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { patternBytes } from '../../src/synth/random.js';
import { blankImage, run } from './guest.js';
import { extFirstByte, fatFirstByte, ntfsFirstByte, poke } from './diffOracle.js';
import { tempDir } from './tmp.js';

process.env.MTOOLS_SKIP_CHECK = '1';

const MiB = 1024 * 1024;

/** One file system's editing tools, on an image (or a volume at a byte offset of one). */
export interface FsTools {
  kind: 'ext4' | 'fat' | 'ntfs';
  /** The path as the file system stores it (FAT 8.3 names are upper case). */
  name(p: string): string;
  mkdir(img: string, dir: string): void;
  put(img: string, p: string, data: Uint8Array): void;
  del(img: string, p: string): void;
  rmdir(img: string, dir: string): void;
  /** A rename that keeps the file's identity where the file system has one (ext: the inode). */
  rename(img: string, from: string, to: string): void;
  /** Rewrites the first bytes of a file in place (same clusters, same size). */
  pokeFile(img: string, p: string, bytes: Uint8Array): void;
}

let seq = 0;
let generation = 0x5eed0000;
const nextGeneration = () => ++generation;
function scratchFile(data: Uint8Array): string {
  const dir = path.join(tempDir(), `f${seq++}`);
  mkdirSync(dir);
  const f = path.join(dir, 'data');
  writeFileSync(f, data);
  return f;
}

export const extTools: FsTools = {
  kind: 'ext4',
  name: (p) => p,
  mkdir: (img, d) => { run('debugfs', ['-w', '-R', `mkdir /${d}`, img]); },
  // A new inode gets a generation of its own, as the kernel gives it (debugfs leaves 0): a reused inode number is another file.
  put: (img, p, data) => { run('debugfs', ['-w', '-f', '-', img], `write ${scratchFile(data)} /${p}\nsif /${p} generation ${nextGeneration()}\n`); },
  del: (img, p) => { run('debugfs', ['-w', '-R', `rm /${p}`, img]); },
  rmdir: (img, d) => { run('debugfs', ['-w', '-R', `rmdir /${d}`, img]); },
  // ln + unlink: a new name for the same inode, the old one removed (debugfs reads the commands from standard input).
  rename: (img, from, to) => { run('debugfs', ['-w', '-f', '-', img], `ln /${from} /${to}\nunlink /${from}\n`); },
  pokeFile: (img, p, bytes) => poke(img, extFirstByte(img, `/${p}`, 1024), bytes),
};

export const fatTools: FsTools = {
  kind: 'fat',
  name: (p) => p.toUpperCase(),
  mkdir: (img, d) => { run('mmd', ['-i', img, `::/${d.toUpperCase()}`]); },
  put: (img, p, data) => { run('mcopy', ['-i', img, scratchFile(data), `::/${p.toUpperCase()}`]); },
  del: (img, p) => { run('mdel', ['-i', img, `::/${p.toUpperCase()}`]); },
  rmdir: (img, d) => { run('mrd', ['-i', img, `::/${d.toUpperCase()}`]); },
  rename: (img, from, to) => { run('mren', ['-i', img, `::/${from.toUpperCase()}`, `::/${to.toUpperCase()}`]); },
  pokeFile: (img, p, bytes) => poke(img, fatFirstByte(img, p.toUpperCase()), bytes),
};

/**
 * Runs shell commands on an NTFS image mounted with ntfs-3g (FUSE; `$M` is the
 * mount point), in the foreground, and waits until ntfs-3g has written
 * everything and exited.
 */
export function ntfsShell(img: string, script: string, env: Record<string, string> = {}): void {
  const mnt = path.join(tempDir(), 'mnt');
  mkdirSync(mnt);
  const sh = [
    `ntfs-3g -o no_detach,streams_interface=windows "$IMG" "$M" & pid=$!`,
    'for i in $(seq 400); do mountpoint -q "$M" && break; sleep 0.01; done',
    'mountpoint -q "$M" || { kill $pid; exit 9; }',
    `( set -e; ${script} ); rc=$?`,
    'umount "$M"; wait $pid; exit $rc',
  ].join('\n');
  const r = spawnSync('sh', ['-c', sh, 'sh'], { encoding: 'utf8', env: { ...process.env, ...env, IMG: img, M: mnt } });
  if (r.status !== 0) throw new Error(`on ${img} mounted: ${script} exited ${r.status}: ${r.stderr}`);
}

export const ntfsTools: FsTools = {
  kind: 'ntfs',
  name: (p) => p,
  mkdir: (img, d) => ntfsShell(img, 'mkdir "$M/$D"', { D: d }),
  put: (img, p, data) => ntfsShell(img, 'cp "$F" "$M/$P"', { F: scratchFile(data), P: p }),
  del: (img, p) => ntfsShell(img, 'rm "$M/$P"', { P: p }),
  rmdir: (img, d) => ntfsShell(img, 'rmdir "$M/$D"', { D: d }),
  rename: (img, from, to) => ntfsShell(img, 'mv "$M/$A" "$M/$B"', { A: from, B: to }),
  pokeFile: (img, p, bytes) => poke(img, ntfsFirstByte(img, p, 4096), bytes),
};

/** A fresh file system of `bytes` on a new image, with the template's files. */
export function makeTemplate(t: FsTools, img: string, bytes = 16 * MiB): void {
  blankImage(img, bytes);
  if (t.kind === 'ext4') run('mkfs.ext4', ['-q', '-F', '-b', '1024', '-U', '0c0c0c0c-0000-4000-8000-0000000000d1', '-E', 'root_owner=0:0', img]);
  else if (t.kind === 'fat') run('mkfs.fat', ['-F', '16', '-i', '0c0c00d1', '-n', 'TEMPLATE', img]);
  else run('mkntfs', ['-F', '-Q', '-q', '-c', '4096', '-s', '512', '-L', 'TEMPLATE', img]);
  for (const d of ['etc', 'apps', 'docs', 'big', 'old']) t.mkdir(img, d);
  t.put(img, 'etc/config.txt', Buffer.from('template v1\n'.repeat(50)));
  t.put(img, 'apps/tool.bin', patternBytes(300 * 1024, 1));
  t.put(img, 'apps/lib.bin', patternBytes(200 * 1024, 2));
  t.put(img, 'docs/readme.txt', Buffer.from('read me\n'.repeat(400)));
  t.put(img, 'docs/manual.txt', Buffer.from('manual\n'.repeat(900)));
  t.put(img, 'big/blob.bin', patternBytes(2 * MiB, 3));
  t.put(img, 'old/a.txt', Buffer.from('old\n'));
}

export interface Scene {
  dir: string;
  tools: FsTools;
  template: string;
  updated: string;
  user: string;
  /** The conflicts constructed (paths as the file system stores them), and the changes both made alike. */
  expected: {
    conflicts: Array<{ path: string; update: string; user: string; reason: string; directory?: string }>;
    sameChanges: string[];
  };
}

/** The update and the user's changes; see the module comment. */
export function makeScene(t: FsTools): Scene {
  const dir = tempDir();
  const template = path.join(dir, 'template.img');
  makeTemplate(t, template);
  const updated = path.join(dir, 'updated.img');
  copyFileSync(template, updated);
  t.pokeFile(updated, 'apps/tool.bin', Buffer.from('UPDATED TOOL'));
  t.del(updated, 'apps/lib.bin');
  t.put(updated, 'apps/pkg.bin', patternBytes(100 * 1024, 4));
  t.del(updated, 'old/a.txt');
  t.rmdir(updated, 'old');
  t.pokeFile(updated, 'docs/manual.txt', Buffer.from('UPDATE'));
  t.del(updated, 'docs/readme.txt');
  t.put(updated, 'etc/same.txt', Buffer.from('same on both sides\n'));
  t.put(updated, 'etc/clash.txt', Buffer.from('the update\'s\n'));

  const user = path.join(dir, 'user.img');
  copyFileSync(template, user);
  t.pokeFile(user, 'apps/lib.bin', Buffer.from('USER LIB'));
  t.put(user, 'old/mine.txt', Buffer.from('mine\n'));
  t.pokeFile(user, 'docs/manual.txt', Buffer.from('USER!!'));
  t.del(user, 'docs/readme.txt');
  t.put(user, 'etc/same.txt', Buffer.from('same on both sides\n'));
  t.put(user, 'etc/clash.txt', Buffer.from('the user\'s, longer\n'));
  t.mkdir(user, 'home');
  t.put(user, 'home/doc.bin', patternBytes(150 * 1024, 5));
  t.rename(user, 'etc/config.txt', 'etc/settings.txt');
  const n = t.name;
  return {
    dir, tools: t, template, updated, user,
    expected: {
      conflicts: [
        { path: n('apps/lib.bin'), update: 'deleted', user: 'modified', reason: 'both-changed' },
        { path: n('docs/manual.txt'), update: 'modified', user: 'modified', reason: 'both-changed' },
        { path: n('etc/clash.txt'), update: 'added', user: 'added', reason: 'both-added' },
        { path: n('old/mine.txt'), update: 'deleted', user: 'added', reason: 'directory-deleted-by-update', directory: n('old') },
      ],
      sameChanges: [n('docs/readme.txt'), n('etc/same.txt')],
    },
  };
}
