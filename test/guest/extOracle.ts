/**
 * The independent readers the ext tests compare against: e2fsprogs
 * (mkfs.ext4 -d, debugfs, dumpe2fs, e2fsck) and Sleuth Kit (fls, istat, icat,
 * blkls), each run on a raw image and its output parsed.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, writeSync, readSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { run } from '../helpers/guest.js';

/** Builds an ext image of `bytes` with mkfs (`args` such as ['-t', 'ext2', '-b', '1024', '-O', '^64bit']), populated from `from`. */
export function mkfs(img: string, bytes: number, args: string[], from?: string): string {
  const r = spawnSync('mkfs.ext4', ['-q', '-F', ...args, ...(from ? ['-d', from] : []), img, `${Math.floor(bytes / 1024)}k`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mkfs.ext4 ${args.join(' ')}: ${r.stderr}`);
  return img;
}

/** Runs debugfs commands (one a line) on `img`; `write` opens it read-write. Returns stdout. */
export function debugfs(img: string, commands: string[], write = false): string {
  const r = spawnSync('debugfs', [...(write ? ['-w'] : []), '-f', '-', img], { input: commands.join('\n') + '\n', encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`debugfs: ${r.stderr}`);
  return r.stdout;
}

/** e2fsck -fn: true when it finds nothing to fix. */
export function e2fsckClean(img: string): { clean: boolean; output: string } {
  const r = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  return { clean: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** Free blocks per dumpe2fs (libext2fs' bitmaps, BLOCK_UNINIT computed): [start, end) block runs. */
export function dumpe2fsFree(img: string): Array<[number, number]> {
  const out = run('dumpe2fs', [img]);
  const runs: Array<[number, number]> = [];
  for (const line of out.split('\n')) {
    const m = /^\s+Free blocks: (.*)$/.exec(line);
    if (!m || !m[1].trim()) continue;
    for (const part of m[1].split(',')) {
      const [a, b] = part.trim().split('-').map(Number);
      runs.push([a, (b ?? a) + 1]);
    }
  }
  return runs;
}

/** dumpe2fs -h as a map of "Field name" -> value. */
export function dumpe2fsHeader(img: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of run('dumpe2fs', ['-h', img]).split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

/** Unallocated blocks per Sleuth Kit's blkls -l. */
export function blklsFree(img: string): number[] {
  const out = run('blkls', ['-l', img]);
  const blocks: number[] = [];
  for (const line of out.split('\n')) {
    const m = /^(\d+)\|f$/.exec(line.trim());
    if (m) blocks.push(Number(m[1]));
  }
  return blocks;
}

export interface StatInfo {
  ino: number;
  type: string;
  size: number;
  generation: number;
  fileAcl: number;
  /** i_flags. */
  flags: number;
  /** A fast symlink's target. */
  fastLink?: string;
  /** [logical, physical, count, uninit] */
  runs: Array<[number, number, number, boolean]>;
  /** Extent-tree and indirect blocks. */
  tree: number[];
}

/** debugfs `stat` of each inode: type, size, generation, xattr block, block map (data runs and map blocks). */
export function debugfsStat(img: string, inos: number[]): Map<number, StatInfo> {
  const out = debugfs(img, inos.map((i) => `stat <${i}>`));
  const res = new Map<number, StatInfo>();
  for (const sec of out.split(/^debugfs: /m)) {
    const head = /^stat <(\d+)>\nInode: \d+\s+Type: (\S+)/.exec(sec);
    if (!head) continue;
    const info: StatInfo = {
      ino: Number(head[1]), type: head[2], size: Number(/Size: (\d+)/.exec(sec)?.[1] ?? 0),
      generation: Number(/Generation: (\d+)/.exec(sec)?.[1] ?? 0), fileAcl: Number(/File ACL: (\d+)/.exec(sec)?.[1] ?? 0),
      flags: Number(/Flags: (0x[0-9a-f]+)/.exec(sec)?.[1] ?? 0), runs: [], tree: [],
    };
    const fast = /^Fast link dest: "(.*)"$/m.exec(sec);
    if (fast) info.fastLink = fast[1];
    const map = /^(?:EXTENTS|BLOCKS):\n(.*)$/m.exec(sec);
    if (map) {
      for (const part of map[1].split(', ')) {
        if (!part.trim()) continue;
        const m = /^\((ETB\d+|IND|DIND|TIND|(\d+)(?:-(\d+))?(\[u\])?)\):(\d+)(?:-(\d+))?$/.exec(part.trim());
        if (!m) throw new Error(`cannot parse debugfs block map part '${part}'`);
        const p0 = Number(m[5]);
        const p1 = m[6] !== undefined ? Number(m[6]) : p0;
        if (m[2] === undefined) { for (let b = p0; b <= p1; b++) info.tree.push(b); continue; }
        const l0 = Number(m[2]);
        info.runs.push([l0, p0, p1 - p0 + 1, m[4] !== undefined]);
      }
    }
    res.set(info.ino, info);
  }
  return res;
}

/** debugfs icheck: block -> inode owning it (data or map block), or 0. */
export function icheck(img: string, blocks: number[]): Map<number, number> {
  const res = new Map<number, number>();
  for (let i = 0; i < blocks.length; i += 2000) {
    const out = debugfs(img, [`icheck ${blocks.slice(i, i + 2000).join(' ')}`]);
    for (const line of out.split('\n')) {
      const m = /^(\d+)\t(\d+|<block not found>)$/.exec(line);
      if (m) res.set(Number(m[1]), m[2].startsWith('<') ? 0 : Number(m[2]));
    }
  }
  return res;
}

/** debugfs ncheck: inode -> every path naming it (without the leading '/'). */
export function ncheck(img: string, inos: number[]): Map<number, string[]> {
  const res = new Map<number, string[]>();
  if (inos.length === 0) return res;
  const out = debugfs(img, [`ncheck ${inos.join(' ')}`]);
  for (const line of out.split('\n')) {
    const m = /^(\d+)\t\/+(.*)$/.exec(line);
    if (!m) continue;
    const list = res.get(Number(m[1])) ?? [];
    list.push(m[2]);
    res.set(Number(m[1]), list);
  }
  return res;
}

/** Sleuth Kit fls -r -p: inode -> paths (allocated names only; no $OrphanFiles, no deleted entries). */
export function flsPaths(img: string): Map<number, { paths: string[]; type: string }> {
  const res = new Map<number, { paths: string[]; type: string }>();
  for (const line of run('fls', ['-r', '-p', img]).split('\n')) {
    const m = /^(\S)\/(\S) (\*\s)?(\d+)(?:\(realloc\))?:\t(.*)$/.exec(line);
    if (!m || m[3] || m[5].startsWith('$OrphanFiles')) continue;
    const ino = Number(m[4]);
    const e = res.get(ino) ?? { paths: [], type: m[2] };
    e.paths.push(m[5]);
    res.set(ino, e);
  }
  return res;
}

/**
 * debugfs dump of each inode into `dir` (one process for all); returns inode
 * -> file path. Holes are written out as zeros (keep sparse giants out), and
 * debugfs 1.47 pads inline data to 60 bytes and dumps fast symlinks empty:
 * use icat and stat's "Fast link dest" for those.
 */
export function debugfsDump(img: string, inos: number[], dir: string): Map<number, string> {
  mkdirSync(dir, { recursive: true });
  const res = new Map<number, string>();
  for (const i of inos) res.set(i, path.join(dir, String(i)));
  if (inos.length) debugfs(img, inos.map((i) => `dump <${i}> ${res.get(i)}`));
  return res;
}

/** Sleuth Kit icat: the content of inode `ino`. */
export function icat(img: string, ino: number): Buffer {
  const r = spawnSync('icat', [img, String(ino)], { maxBuffer: 1024 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`icat ${ino}: ${r.stderr}`);
  return r.stdout;
}

/** Overwrites bytes of a file at `offset` (hand-made damage for the hostile tests). */
export function patch(file: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

export function readBytes(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

export function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

/**
 * A source tree for mkfs -d with the shapes the reader must handle: nested
 * directories, hard links, fast and slow symlinks, a big directory, sparse
 * files (many data islands, a far-off tail past 4 GiB), empty files.
 */
export function sampleTree(dir: string, opts: { bigDir?: number; islands?: number } = {}): string {
  mkdirSync(path.join(dir, 'docs/deep/er'), { recursive: true });
  mkdirSync(path.join(dir, 'big'), { recursive: true });
  mkdirSync(path.join(dir, 'empty dir'), { recursive: true });
  let seed = 12345;
  const rnd = (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) { seed = (seed * 1103515245 + 12345) >>> 0; b[i] = seed >>> 24; }
    return b;
  };
  for (let i = 1; i <= 12; i++) writeFileSync(path.join(dir, `file${i}.bin`), rnd(i * 7000 + 13));
  writeFileSync(path.join(dir, 'docs/readme.txt'), 'hello ext\n');
  writeFileSync(path.join(dir, 'docs/medium.txt'), 'inline data past i_block, in system.data\n'.repeat(3));
  writeFileSync(path.join(dir, 'docs/deep/er/nested.dat'), rnd(40000));
  writeFileSync(path.join(dir, 'empty'), '');
  writeFileSync(path.join(dir, 'naïve café.txt'), 'unicode name\n');
  for (let i = 0; i < (opts.bigDir ?? 150); i++) writeFileSync(path.join(dir, 'big', `entry-with-a-longish-name-${String(i).padStart(4, '0')}`), `#${i}`);
  const fd = openSync(path.join(dir, 'sparse.img'), 'w');
  for (let i = 0; i < (opts.islands ?? 10); i++) writeSync(fd, rnd(3000), 0, 3000, i * 150000 + 5000);
  closeSync(fd);
  const far = openSync(path.join(dir, 'far.bin'), 'w');
  writeSync(far, Buffer.from('the end'), 0, 7, 5 * 1024 ** 3);
  closeSync(far);
  spawnSync('ln', [path.join(dir, 'file1.bin'), path.join(dir, 'docs/hardlink.bin')]);
  // An attribute too big for the inode: mkfs -d puts it in an extended attribute block (the file's meta).
  spawnSync('setfattr', ['-n', 'user.big', '-v', 'v'.repeat(900), path.join(dir, 'file5.bin')]);
  spawnSync('setfattr', ['-n', 'user.small', '-v', 'tiny', path.join(dir, 'file6.bin')]);
  spawnSync('ln', ['-s', 'file2.bin', path.join(dir, 'short-link')]);
  spawnSync('ln', ['-s', `${'long/'.repeat(20)}target`, path.join(dir, 'long-link')]);
  return dir;
}
