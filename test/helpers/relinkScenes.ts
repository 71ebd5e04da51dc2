/**
 * Wrong parents with the right UUID, on file systems made by their own tools:
 * a template T, a user's child C over T that writes a file into free
 * clusters, and another disk T' with T's UUID whose writer used the same free
 * clusters (or inodes, or MFT records) for something else. C over T' is what
 * relinking C to T' would give the guest; C over T is what it had.
 *
 * The oracles are the file systems' own checkers run on raw images: the
 * user's image (C over T) and `composedImage` (C's changed sectors laid over
 * T', byte for byte what the chain C -> T' reads).
 */
import { copyFileSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthLayer, type BuiltLayer, type SynthWrite } from '../../src/synth/build.js';
import { patternBytes } from '../../src/synth/random.js';
import type { Uuid } from '../../src/format/index.js';
import { blankImage, run } from './guest.js';
import { mkntfs, withMounted } from './ntfsImages.js';

const MiB = 1024 * 1024;

export const HAVE_FSCK_FAT = spawnSync('fsck.fat', ['--help'], { stdio: 'ignore' }).error === undefined;
export const HAVE_E2FSCK = spawnSync('e2fsck', ['-V'], { stdio: 'ignore' }).error === undefined;
export const HAVE_NTFSCLONE = spawnSync('ntfsclone', ['--version'], { stdio: 'ignore' }).error === undefined;

export interface Scene {
  dir: string;
  /** Raw images: the template, the user's disk (template + the user's file), the other disk (template + another writer's changes). */
  template: string;
  user: string;
  other: string;
}

const put = (dir: string, name: string, data: Uint8Array) => {
  const p = path.join(dir, name);
  writeFileSync(p, data);
  return p;
};

/** FAT16: the user writes X.BIN into the root; the other writer puts Y.BIN in DATA, in the same free clusters. */
export function fatScene(dir: string): Scene {
  const template = blankImage(path.join(dir, 'template.img'), 16 * MiB);
  run('mkfs.fat', ['-F', '16', '-i', '0c0c0001', '-n', 'TEMPLATE', template]);
  run('mmd', ['-i', template, '::/DATA']);
  run('mcopy', ['-i', template, put(dir, 'old.txt', Buffer.from('old\r\n'.repeat(100))), '::/DATA/OLD.TXT']);
  const user = path.join(dir, 'user.img');
  copyFileSync(template, user);
  run('mcopy', ['-i', user, put(dir, 'x.bin', patternBytes(100 * 1024, 1)), '::/X.BIN']);
  const other = path.join(dir, 'other.img');
  copyFileSync(template, other);
  run('mcopy', ['-i', other, put(dir, 'y.bin', patternBytes(100 * 1024, 2)), '::/DATA/Y.BIN']);
  return { dir, template, user, other };
}

/** ext4: the user writes /x.bin (inode 13); the other writer puts three files in /data (inodes 13-15). */
export function extScene(dir: string, userCommands: string[] = []): Scene {
  const tree = path.join(dir, 'tree');
  mkdirSync(path.join(tree, 'data'), { recursive: true });
  writeFileSync(path.join(tree, 'data', 'old.txt'), 'old\n'.repeat(2000));
  const template = blankImage(path.join(dir, 'template.img'), 16 * MiB);
  run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', tree, '-U', '0c0c0c0c-0000-4000-8000-000000000002', '-E', 'root_owner=0:0', template]);
  const user = path.join(dir, 'user.img');
  copyFileSync(template, user);
  run('debugfs', ['-w', '-f', '-', user], [`write ${put(dir, 'x.bin', patternBytes(100 * 1024, 1))} /x.bin`, ...userCommands].join('\n') + '\n');
  const other = path.join(dir, 'other.img');
  copyFileSync(template, other);
  run('debugfs', ['-w', '-f', '-', other], [0, 1, 2].map((i) => `write ${put(dir, `y${i}.bin`, patternBytes(100 * 1024, 2 + i))} /data/y${i}.bin`).join('\n') + '\n');
  return { dir, template, user, other };
}

/** NTFS (ntfs-3g): the user writes x.bin; the other writer rewrites data/old.txt larger, into the same free clusters and more. */
export async function ntfsScene(dir: string): Promise<Scene> {
  const template = mkntfs(path.join(dir, 'template.img'), 16 * MiB);
  await withMounted(template, (m) => {
    mkdirSync(path.join(m, 'data'));
    writeFileSync(path.join(m, 'data', 'old.txt'), 'old\n'.repeat(2000));
  });
  const user = path.join(dir, 'user.img');
  copyFileSync(template, user);
  await withMounted(user, (m) => writeFileSync(path.join(m, 'x.bin'), patternBytes(100 * 1024, 1)));
  const other = path.join(dir, 'other.img');
  copyFileSync(template, other);
  await withMounted(other, (m) => writeFileSync(path.join(m, 'data', 'old.txt'), patternBytes(300 * 1024, 7)));
  return { dir, template, user, other };
}

/** Runs of 512-byte sectors where `after` differs from `before`. */
export function sectorDiff(before: Uint8Array, after: Uint8Array): SynthWrite[] {
  const out: SynthWrite[] = [];
  const same = (s: number) => {
    for (let i = s * 512; i < s * 512 + 512; i++) if (before[i] !== after[i]) return false;
    return true;
  };
  for (let s = 0; s < after.length / 512;) {
    if (same(s)) { s++; continue; }
    let e = s + 1;
    while (e < after.length / 512 && !same(e)) e++;
    out.push({ sector: s, data: after.slice(s * 512, e * 512) });
    s = e;
  }
  return out;
}

const bytes = (f: string) => new Uint8Array(readFileSync(f));

/** A dynamic disk holding a raw image; `uniqueId` to give it another disk's identity. Its file times are set to `time`. */
export async function diskOf(img: string, file: string, time: Date, uniqueId?: Uuid): Promise<BuiltLayer> {
  const b = bytes(img);
  const d = await writeSynthLayer(nodeFileSystem, file, { type: 'dynamic', virtualSize: b.length, writes: [{ sector: 0, data: b }], uniqueId }, null);
  utimesSync(file, time, time);
  return d;
}

/** The user's child over the template's disk: exactly the sectors the user changed (`writes` to override them). */
export async function childOf(scene: Scene, parent: BuiltLayer, file: string, writes?: SynthWrite[]): Promise<string> {
  const t = bytes(scene.template);
  await writeSynthLayer(nodeFileSystem, file, { type: 'differencing', virtualSize: t.length, writes: writes ?? sectorDiff(t, bytes(scene.user)) }, parent);
  return file;
}

/** What the chain child -> other shows the guest: the user's changed sectors laid over the other disk. */
export function composedImage(scene: Scene, out: string): string {
  const img = bytes(scene.other);
  for (const w of sectorDiff(bytes(scene.template), bytes(scene.user))) img.set(w.data, w.sector * 512);
  writeFileSync(out, img);
  return out;
}

/** A file system checker's verdict on a raw image: its exit status and what it printed. */
export function fsck(kind: 'fat' | 'ext' | 'ntfs', img: string): { status: number | null; output: string } {
  const r = kind === 'fat' ? spawnSync('fsck.fat', ['-n', img], { encoding: 'utf8' })
    : kind === 'ext' ? spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' })
      : spawnSync('ntfsclone', ['--save-image', '-O', '/dev/null', img], { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}
