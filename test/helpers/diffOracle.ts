/**
 * The independent oracle for `diff`: both trees read by Sleuth Kit (fls for
 * the names and inode numbers, icat for every file's content, hashed here),
 * compared path by path. Also edits that the file systems' own tools cannot
 * make: a file's bytes rewritten in place (same inode, same clusters), found
 * with debugfs (ext) or istat (FAT).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import type { DiffPartitionResult } from '../../src/ops/diff.js';
import { run } from './guest.js';

export interface TreeEntry {
  inode: number;
  /** ext: the inode's generation (istat's "Generation Id"); 0 elsewhere. */
  generation: number;
  directory: boolean;
  sha: string;
  size: number;
}

/** Every allocated file and directory of a volume (at `sectorOffset` of the image), by path, as Sleuth Kit reads it. */
export function tskTree(img: string, sectorOffset = 0): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const listing = run('fls', ['-r', '-p', '-o', String(sectorOffset), img]);
  for (const line of listing.split('\n')) {
    // NTFS addresses are record-type-id ("66-128-4": a file's named stream).
    const m = /^(\S)\/(\S) (\*?)\s*(\d+(?:-\d+-\d+)?)(?:\(realloc\))?:\t(.*)$/.exec(line);
    if (!m || m[3] === '*') continue;
    const [, nameType, , , addr, p] = m;
    // Sleuth Kit's virtual files ($MBR, $FAT1, $OrphanFiles) are not the volume's; nor are NTFS's own ($MFT, $Extend/...).
    if (nameType === 'v' || nameType === 'V' || p.startsWith('$')) continue;
    // A FAT volume label is a directory entry, not a file.
    if (p.endsWith('(Volume Label Entry)')) continue;
    const inode = Number(addr.split('-')[0]);
    if (nameType === 'd') {
      out.set(p, { inode, generation: 0, directory: true, sha: '', size: 0 });
      continue;
    }
    const r = spawnSync('icat', ['-o', String(sectorOffset), img, addr], { maxBuffer: 1024 * 1024 * 1024 });
    if (r.status !== 0) throw new Error(`icat ${img} ${addr}: ${r.stderr}`);
    // The identity's second half: ext's inode generation, NTFS's record sequence number.
    const stat = run('istat', ['-o', String(sectorOffset), img, String(inode)]);
    const gen = /^Generation Id: (\d+)$/m.exec(stat) ?? /^Entry: \d+\s+Sequence: (\d+)$/m.exec(stat);
    out.set(p, { inode, generation: gen ? Number(gen[1]) : 0, directory: false, sha: createHash('sha256').update(r.stdout).digest('hex'), size: r.stdout.length });
  }
  return out;
}

export interface PathDiff {
  added: string[];
  deleted: string[];
  modified: string[];
  createdDirectories: string[];
  deletedDirectories: string[];
}

const sorted = (xs: Iterable<string>) => [...xs].sort();

/** What changed from tree a to tree b, by path (a rename is a deletion and an addition). */
export function oracleDiff(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>, skip: (p: string) => boolean = () => false): PathDiff {
  const d: PathDiff = { added: [], deleted: [], modified: [], createdDirectories: [], deletedDirectories: [] };
  for (const [p, x] of b) {
    if (skip(p)) continue;
    const y = a.get(p);
    if (!y || y.directory !== x.directory) (x.directory ? d.createdDirectories : d.added).push(p);
    else if (!x.directory && x.sha !== y.sha) d.modified.push(p);
  }
  for (const [p, y] of a) {
    if (skip(p)) continue;
    const x = b.get(p);
    if (!x || x.directory !== y.directory) (y.directory ? d.deletedDirectories : d.deleted).push(p);
  }
  return { added: sorted(d.added), deleted: sorted(d.deleted), modified: sorted(d.modified), createdDirectories: sorted(d.createdDirectories), deletedDirectories: sorted(d.deletedDirectories) };
}

/**
 * vhdtool's answer by path: a renamed file (or directory, with everything
 * under it) is its old path deleted and its new path added.
 */
export function pathLevel(p: DiffPartitionResult, treeA: Map<string, TreeEntry>, treeB: Map<string, TreeEntry>): PathDiff {
  const added = new Set(p.added.map((f) => f.path));
  const deleted = new Set(p.deleted.map((f) => f.path));
  const modified = new Set(p.modified.map((f) => f.path));
  const created = new Set(p.createdDirectories.map((f) => f.path));
  const gone = new Set(p.deletedDirectories.map((f) => f.path));
  for (const r of p.renamed) {
    // The renamed entry and, for a directory, everything under it on each side.
    for (const [q, e] of treeA) if (q === r.from || q.startsWith(`${r.from}/`)) (e.directory ? gone : deleted).add(q);
    for (const [q, e] of treeB) {
      if (q !== r.to && !q.startsWith(`${r.to}/`)) continue;
      (e.directory ? created : added).add(q);
      modified.delete(q);
    }
  }
  // Identities that cross (a file renamed away and another renamed or added onto its path) leave the path in place.
  for (const q of [...added]) {
    if (!deleted.has(q)) continue;
    added.delete(q);
    deleted.delete(q);
    if (treeA.get(q)?.sha !== treeB.get(q)?.sha) modified.add(q);
  }
  return { added: sorted(added), deleted: sorted(deleted), modified: sorted(modified), createdDirectories: sorted(created), deletedDirectories: sorted(gone) };
}

/**
 * Renames by identity, as Sleuth Kit sees them: the same inode (or MFT
 * record) number and generation (sequence) under another path, files only.
 * With `ancestor` (two disks that diverged from it), only identities the
 * ancestor already had: a number both sides gave a new file is not one file.
 */
export function oracleRenames(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>, ancestor?: Map<string, TreeEntry>): Array<{ from: string; to: string }> {
  const key = (e: TreeEntry) => `${e.inode}:${e.generation}`;
  const old = ancestor ? new Set([...ancestor.values()].filter((e) => !e.directory).map(key)) : null;
  const byInode = new Map<string, string>();
  for (const [p, e] of a) if (!e.directory) byInode.set(key(e), p);
  const out: Array<{ from: string; to: string }> = [];
  for (const [p, e] of b) {
    const q = byInode.get(key(e));
    if (!e.directory && q !== undefined && q !== p && (!old || old.has(key(e)))) out.push({ from: q, to: p });
  }
  return out.sort((x, y) => (x.from < y.from ? -1 : 1));
}

/** Writes `bytes` into an image at `offset`, in place. */
export function poke(img: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(img, 'r+');
  try {
    writeSync(fd, bytes, 0, bytes.length, offset);
  } finally {
    closeSync(fd);
  }
}

/** Byte offset in an ext image of a file's first data block (debugfs bmap). */
export function extFirstByte(img: string, file: string, blockSize: number): number {
  const out = run('debugfs', ['-R', `bmap ${file} 0`, img]).trim();
  const block = Number(out.split('\n').pop());
  if (!Number.isInteger(block) || block <= 0) throw new Error(`debugfs bmap ${file}: ${out}`);
  return block * blockSize;
}

/** Byte offset in an NTFS image of the first cluster of a file's unnamed $DATA (Sleuth Kit's ifind and istat). */
export function ntfsFirstByte(img: string, file: string, clusterSize: number): number {
  const ino = run('ifind', ['-n', file, img]).trim();
  const out = run('istat', [img, ino]);
  const m = /Type: \$DATA \(128-\d+\)\s+Name: N\/A\s+Non-Resident[^\n]*\n\s*(\d+)/.exec(out);
  if (!m) throw new Error(`istat ${img} ${ino}: no non-resident unnamed $DATA`);
  return Number(m[1]) * clusterSize;
}

/** Byte offset in a FAT image of a file's first sector (Sleuth Kit's ifind and istat). */
export function fatFirstByte(img: string, file: string): number {
  const ino = run('ifind', ['-n', file, img]).trim();
  const out = run('istat', [img, ino]);
  const m = /Sectors:\s*\n\s*(\d+)/.exec(out);
  if (!m) throw new Error(`istat ${img} ${ino}: no sectors`);
  return Number(m[1]) * 512;
}
