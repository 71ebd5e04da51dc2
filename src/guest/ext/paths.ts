/**
 * Names: a breadth-first walk of the directory tree from the root gives each
 * inode its first path (hard links: one file, the first name found; '.' and
 * '..' are not followed, and a directory is entered once, so a loop cannot
 * recur). Inodes the walk never reaches are the file system's own (named
 * `<journal>`, `<resize inode>`...) or orphans, named as Sleuth Kit names
 * them (`$OrphanFiles/OrphanFile-N`; a directory subtree under an orphan
 * keeps its names below it).
 */
import type { AnomalyLog } from './anomalies.js';
import type { DirEntries } from './dirs.js';
import { F_ORPHAN_LIST, F_SYSTEM, T_DIR, type InodeRecords } from './records.js';
import { BAD_BLOCKS_INO, RESIZE_INO, ROOT_INO } from './inodes.js';
import type { Superblock } from './superblock.js';
import { GuestError } from '../errors.js';

/** Longest path kept (characters); a deeper subtree is reported and named as an orphan. */
export const MAX_PATH = 16384;

export class Namespace {
  /** For each record: the entry that names it (-1: none found). */
  private readonly nameEntry: Int32Array;
  /** Paths of reached directories, by record index. */
  private readonly dirPath = new Map<number, string>();

  constructor(
    private readonly sb: Superblock,
    private readonly records: InodeRecords,
    private readonly entries: DirEntries,
    private readonly log: AnomalyLog,
  ) {
    this.nameEntry = new Int32Array(records.count).fill(-1);
  }

  /** Walks the tree from the root, then from each unreached directory (orphans). */
  build(): void {
    const root = this.records.find(ROOT_INO);
    if (root < 0 || this.records.type.a[root] !== T_DIR) throw new GuestError('ext: the root directory (inode 2) is not in use or not a directory');
    this.walkFrom(root, '');
    const named = this.namedRecords();
    // Unreached directories nobody names first, so an orphaned subtree keeps its inner names; then the rest.
    for (const pass of [0, 1]) {
      for (let r = 0; r < this.records.count; r++) {
        if (this.records.type.a[r] !== T_DIR || this.dirPath.has(r) || this.isSystem(r)) continue;
        if (pass === 0 && named[r]) continue;
        this.reportOrphan(r);
        this.walkFrom(r, orphanName(this.records.ino.a[r]));
      }
    }
    for (let r = 0; r < this.records.count; r++) {
      if (this.records.type.a[r] !== T_DIR && this.nameEntry[r] < 0 && !this.isSystem(r)) this.reportOrphan(r);
    }
  }

  private isSystem(r: number): boolean {
    return (this.records.flags.a[r] & F_SYSTEM) !== 0;
  }

  private reportOrphan(r: number): void {
    if (this.records.flags.a[r] & F_ORPHAN_LIST) return;
    const ino = this.records.ino.a[r];
    this.log.add('orphan', `inode ${ino} is in use but no directory names it`);
  }

  /** Records that some entry (other than in themselves) names. */
  private namedRecords(): Uint8Array {
    const named = new Uint8Array(this.records.count);
    const e = this.entries;
    for (let k = 0; k < e.count; k++) {
      if (e.ino.a[k] === e.dir.a[k]) continue;
      const r = this.records.find(e.ino.a[k]);
      if (r >= 0) named[r] = 1;
    }
    return named;
  }

  private walkFrom(start: number, path: string): void {
    const rec = this.records;
    const e = this.entries;
    this.dirPath.set(start, path);
    const queue: number[] = [start];
    for (let q = 0; q < queue.length; q++) {
      const d = queue[q];
      const dpath = this.dirPath.get(d)!;
      for (let k = rec.entStart.a[d]; k < rec.entEnd.a[d]; k++) {
        const c = rec.find(e.ino.a[k]);
        if (c < 0) {
          this.log.add('bad-directory', `${where(dpath)} names inode ${e.ino.a[k]} ('${e.name(k)}'), which is not in use`);
          continue;
        }
        if (rec.type.a[c] !== T_DIR) {
          if (this.nameEntry[c] < 0) this.nameEntry[c] = k;
          continue;
        }
        if (this.dirPath.has(c)) {
          if (c !== d) this.log.add('bad-directory', `directory inode ${rec.ino.a[c]} has a second name '${e.name(k)}' in ${where(dpath)}`);
          continue;
        }
        const name = e.name(k);
        if (dpath.length + 1 + name.length > MAX_PATH) {
          this.log.add('bad-directory', `path under ${where(dpath.slice(0, 200))}... is longer than ${MAX_PATH} characters`);
          continue;
        }
        this.nameEntry[c] = k;
        this.dirPath.set(c, join(dpath, name));
        queue.push(c);
      }
    }
  }

  /** The path of record `r` (call after build). */
  path(r: number): string {
    const dir = this.dirPath.get(r);
    if (dir !== undefined) return dir;
    const k = this.nameEntry[r];
    const ino = this.records.ino.a[r];
    if (k >= 0) {
      const parent = this.dirPath.get(this.records.find(this.entries.dir.a[k]));
      if (parent !== undefined) return join(parent, this.entries.name(k));
    }
    if (this.isSystem(r)) return systemName(this.sb, ino);
    return orphanName(ino);
  }
}

function join(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

function where(dpath: string): string {
  return dpath === '' ? 'the root directory' : `directory '${dpath}'`;
}

function orphanName(ino: number): string {
  return `$OrphanFiles/OrphanFile-${ino}`;
}

/** Names of the file system's own inodes. */
export function systemName(sb: Superblock, ino: number): string {
  if (ino === sb.journalInum) return '<journal>';
  if (ino === RESIZE_INO) return '<resize inode>';
  if (ino === BAD_BLOCKS_INO) return '<bad blocks>';
  if (ino === sb.usrQuotaInum) return '<user quota>';
  if (ino === sb.grpQuotaInum) return '<group quota>';
  if (ino === sb.prjQuotaInum) return '<project quota>';
  if (ino === sb.orphanFileInum) return '<orphan file>';
  if (ino >= sb.firstIno) return `<xattr inode ${ino}>`;
  return `<reserved inode ${ino}>`;
}
