/**
 * The inode pass: inode bitmaps and the used part of each inode table, read
 * through large windows group after group; each inode in use is decoded, its
 * block map walked, its directory entries read, and the result kept as a
 * compact record (records.ts). Ranges go to the volume-wide builders and the
 * ownership check as they are found.
 */
import { VhdToolError } from '../../errors.js';
import type { Ownership } from '../ownership.js';
import { RangeSet, RangeSetBuilder } from '../ranges.js';
import type { AnomalyLog } from './anomalies.js';
import type { BlockDevice } from './blockio.js';
import { walkExtents, walkIndirect, type MapWalk } from './blockmap.js';
import { MapCollector } from './collector.js';
import { crc32c } from './checksum.js';
import { parseDirBlock, type DirEntries } from './dirs.js';
import { inodeBitmapUninit, type GroupTable } from './groups.js';
import {
  BAD_BLOCKS_INO, extraIsizeOk, FL_EA_INODE, FL_EXTENTS, FL_INLINE_DATA, hasBlockMap, I_BLOCK_SIZE, inodeChecksumOk,
  inodeXattr, maxFileBytes, parseInode, RESIZE_INO, ROOT_INO, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type Inode,
} from './inodes.js';
import { F_SYSTEM, T_DIR, T_LNK, T_OTHER, T_REG, type InodeRecords } from './records.js';
import { hasIncompat, hasRoCompat, INCOMPAT, RO_COMPAT, type Superblock } from './superblock.js';

/** Groups whose inode bitmaps are held at once. */
const GROUP_BATCH = 256;

export interface InodePassOutput {
  /** Physical block of the journal's first block (its superblock), or -1. */
  journalStart: number;
  /** Inodes in use whose i_dtime is set: inode -> i_dtime (on the orphan list, the next inode). */
  dtimes: Map<number, number>;
}

export class InodePass {
  private readonly claimed = new Set<number>();
  private readonly xattrSeen = new Set<number>();
  private readonly walk: MapWalk;
  private readonly map: MapCollector;
  /**
   * One ownership name for every inode (a name per inode would cost a string
   * each); scan.ts names the inodes behind a double-owned range afterwards.
   */
  private readonly filesOwner: number;
  readonly out: InodePassOutput = { journalStart: -1, dtimes: new Map() };

  constructor(
    private readonly dev: BlockDevice,
    private readonly sb: Superblock,
    private readonly t: GroupTable,
    private readonly records: InodeRecords,
    private readonly entries: DirEntries,
    private readonly log: AnomalyLog,
    private readonly own: Ownership,
    private readonly metadata: RangeSetBuilder,
    private readonly fileData: RangeSetBuilder,
  ) {
    this.walk = { dev, claim: (b) => (this.claimed.has(b) ? false : (this.claimed.add(b), true)) };
    this.map = new MapCollector(log);
    this.filesOwner = own.owner('inodes');
  }

  /** Byte offset of inode `ino` in its inode table. */
  inodeOffset(ino: number): number {
    return inodeOffset(this.sb, this.t, ino);
  }

  async run(signal?: AbortSignal): Promise<void> {
    for (let g0 = 0; g0 < this.t.count; g0 += GROUP_BATCH) {
      if (signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      const g1 = Math.min(this.t.count, g0 + GROUP_BATCH);
      const used = await this.readInodeBitmaps(g0, g1, signal);
      await this.readTables(g0, used, signal);
    }
  }

  /** The inode bitmaps of groups [g0, g1) (null for a group with none in use). */
  private async readInodeBitmaps(g0: number, g1: number, signal?: AbortSignal): Promise<Array<Uint8Array | null>> {
    const { sb, t } = this;
    const used: Array<Uint8Array | null> = new Array(g1 - g0).fill(null);
    const runs: Array<{ start: number; count: number; group: number }> = [];
    for (let g = g0; g < g1; g++) if (!inodeBitmapUninit(sb, t, g)) runs.push({ start: t.inodeBitmap[g], count: 1, group: g });
    const bytes = Math.ceil(sb.inodesPerGroup / 8);
    const csum = hasRoCompat(sb, RO_COMPAT.METADATA_CSUM);
    await this.dev.readRuns(runs, 'inode bitmap', (i, b) => {
      const g = runs[i].group;
      if (csum) {
        const calc = crc32c(sb.csumSeed, b, 0, bytes);
        if ((sb.descSize >= 64 ? calc : calc & 0xffff) !== t.inodeBitmapCsum[g]) {
          const at = t.inodeBitmap[g] * sb.blockSize;
          this.log.add('bad-checksum', `inode bitmap of group ${g} (block ${t.inodeBitmap[g]}) fails its checksum`, at, at + sb.blockSize);
        }
      }
      used[g - g0] = b.slice(0, bytes);
    }, signal);
    return used;
  }

  /** Reads each group's inode table up to its last inode in use, and handles those inodes. */
  private async readTables(g0: number, used: Array<Uint8Array | null>, signal?: AbortSignal): Promise<void> {
    const { sb, t } = this;
    const perBlock = sb.blockSize / sb.inodeSize;
    const runs: Array<{ start: number; count: number; group: number }> = [];
    for (let k = 0; k < used.length; k++) {
      const map = used[k];
      if (!map) continue;
      const last = lastSetBit(map, sb.inodesPerGroup);
      if (last < 0) continue;
      runs.push({ start: t.inodeTable[g0 + k], count: Math.floor(last / perBlock) + 1, group: g0 + k });
    }
    await this.dev.readRuns(runs, 'inode table', async (i, bytes, blockOffset) => {
      const g = runs[i].group;
      const map = used[g - g0]!;
      const first = blockOffset * perBlock;
      const n = bytes.length / sb.inodeSize;
      for (let k = 0; k < n; k++) {
        const idx = first + k;
        if (idx >= sb.inodesPerGroup) break;
        if (!(map[idx >> 3] & (1 << (idx & 7)))) continue;
        const ino = g * sb.inodesPerGroup + idx + 1;
        const pending = this.inode(ino, bytes.subarray(k * sb.inodeSize, (k + 1) * sb.inodeSize));
        if (pending) await pending;
      }
    }, signal);
  }

  /**
   * Handles one inode in use. Most inodes need no read beyond their table
   * (extents in the inode, direct pointers only) and are handled at once;
   * the others return the promise of their map or directory reads.
   */
  private inode(ino: number, raw: Uint8Array): void | Promise<void> {
    const sb = this.sb;
    const i = parseInode(sb, ino, raw);
    const at = this.inodeOffset(ino);
    const reserved = ino < sb.firstIno && ino !== ROOT_INO;
    if (ino === RESIZE_INO) return this.resizeInode(i);
    if (i.mode === 0 && !(ino === BAD_BLOCKS_INO && i.block.some((b) => b !== 0))) {
      if (!reserved) this.log.add('bad-inode', `inode ${ino} is marked in use but has no type (mode 0)`, at, at + sb.inodeSize);
      return;
    }
    if (!inodeChecksumOk(sb, i)) this.log.add('bad-checksum', `inode ${ino} fails its checksum`, at, at + sb.inodeSize);
    if (!extraIsizeOk(sb, i)) this.log.add('bad-inode', `inode ${ino} has a bad extra size ${i.extraIsize}`, at, at + sb.inodeSize);
    if (i.dtime !== 0) this.out.dtimes.set(ino, i.dtime);
    const maxSize = maxFileBytes(sb, i);
    if (i.size > maxSize) this.log.add('bad-inode', `inode ${ino}: size ${i.size} is more than its block map can address (${maxSize} bytes)`, at, at + sb.inodeSize);
    const map = this.map.reset(ino, (i.mode & S_IFMT) === S_IFDIR);
    let walking: void | Promise<void> = undefined;
    if (hasBlockMap(sb, i) || ino === BAD_BLOCKS_INO) {
      walking = (i.flags & FL_EXTENTS) && ino !== BAD_BLOCKS_INO ? walkExtents(this.walk, i.block, map) : walkIndirect(this.walk, i.block, map);
    }
    if (walking) return walking.then(() => this.record(i, reserved, Math.min(i.size, maxSize)));
    return this.record(i, reserved, Math.min(i.size, maxSize));
  }

  /** Keeps what the scan needs of an inode whose map was walked into this.map; reads a directory's entries. */
  private record(i: Inode, reserved: boolean, size: number): void | Promise<void> {
    const sb = this.sb;
    const bs = sb.blockSize;
    const ino = i.ino;
    const map = this.map;
    const system = reserved || ino === sb.journalInum || ino === sb.usrQuotaInum || ino === sb.grpQuotaInum
      || ino === sb.prjQuotaInum || ino === sb.orphanFileInum || (i.flags & FL_EA_INODE) !== 0;
    const type = typeOf(i.mode);
    const data = map.data(bs);
    const xattr = this.xattrBlock(i);
    const meta = map.treeBlocks.length || xattr.block ? map.treeSet(bs, xattr.block) : RangeSet.EMPTY;
    if (!data.isEmpty || !meta.isEmpty) {
      const owner = this.filesOwner;
      this.own.add(owner, data);
      for (const b of map.treeBlocks) this.own.addRange(owner, b * bs, (b + 1) * bs);
      if (xattr.first) this.own.addRange(owner, xattr.block * bs, (xattr.block + 1) * bs);
    }
    (type === T_REG && !system ? this.fileData : this.metadata).addSet(data);
    this.metadata.addSet(meta);
    if (ino === sb.journalInum) this.out.journalStart = map.first;
    const entStart = this.entries.count;
    const add = () => this.records.add({
      ino, type, flags: system ? F_SYSTEM : 0, size, gen: i.generation, data, meta, entStart, entEnd: this.entries.count,
    });
    if (type !== T_DIR) return add();
    return this.directory(i, map.dirRuns.slice()).then(add);
  }

  /**
   * The resize inode (7) maps the reserved GDT blocks through its double
   * indirect block; those blocks are counted by the geometry, so only the
   * double indirect block itself is its own (as e2fsck's pass 1 does).
   */
  private resizeInode(i: Inode): void {
    const sb = this.sb;
    const dind = new DataView(i.block.buffer, i.block.byteOffset + 13 * 4, 4).getUint32(0, true);
    let meta = RangeSet.EMPTY;
    if (dind !== 0) {
      if (!this.dev.inRange(dind) || dind === 0 || !this.walk.claim(dind)) {
        this.log.add('bad-inode', `resize inode: its double indirect block ${dind} is outside the file system or claimed twice`);
      } else {
        meta = RangeSet.of(dind * sb.blockSize, (dind + 1) * sb.blockSize);
        this.own.add(this.filesOwner, meta);
        this.metadata.addSet(meta);
      }
    }
    if (i.mode === 0 && dind === 0) return;
    this.records.add({
      ino: RESIZE_INO, type: T_REG, flags: F_SYSTEM, size: 0, gen: i.generation, data: RangeSet.EMPTY, meta,
      entStart: this.entries.count, entEnd: this.entries.count,
    });
  }

  /** The inode's extended attribute block (0: none or invalid), and whether this inode is its first owner. */
  private xattrBlock(i: Inode): { block: number; first: boolean } {
    const b = i.fileAcl;
    if (b === 0) return NO_XATTR;
    if (!this.dev.inRange(b) || b < 1) {
      this.log.add('bad-inode', `inode ${i.ino}: extended attribute block ${b} lies outside the file system`);
      return NO_XATTR;
    }
    if (this.xattrSeen.has(b)) return { block: b, first: false };
    this.xattrSeen.add(b);
    return { block: b, first: true };
  }

  /** Reads a directory's entries: its blocks in logical order (up to i_size), or its inline area. */
  private async directory(i: Inode, runs: number[]): Promise<void> {
    const sb = this.sb;
    const bs = sb.blockSize;
    const fileType = hasIncompat(sb, INCOMPAT.FILETYPE);
    const onBad = (where: string, m: string | null) => {
      if (m) this.log.add('bad-directory', `directory inode ${i.ino}, ${where}: ${m}`);
    };
    const entry = (src: Uint8Array) => (ino: number, nameStart: number, nameLen: number) => {
      if (ino > sb.inodesCount) {
        this.log.add('bad-directory', `directory inode ${i.ino}: an entry names inode ${ino}, past the last inode ${sb.inodesCount}`);
        return;
      }
      this.entries.add(i.ino, ino, src, nameStart, nameLen);
    };
    if (i.flags & FL_INLINE_DATA) {
      const head = i.block.subarray(4, I_BLOCK_SIZE);
      onBad('inline area', parseDirBlock(head, bs, fileType, entry(head)));
      const more = inodeXattr(sb, i, 7, 'data');
      if (more && more.length > 0) onBad('inline attribute', parseDirBlock(more, bs, fileType, entry(more)));
      return;
    }
    const limit = Math.ceil(i.size / bs);
    const reads: Array<{ start: number; count: number }> = [];
    for (let k = 0; k < runs.length; k += 3) {
      const logical = runs[k];
      if (logical >= limit) break;
      reads.push({ start: runs[k + 1], count: Math.min(runs[k + 2], limit - logical) });
    }
    await this.dev.readRuns(reads, `directory inode ${i.ino}`, (r, bytes, blockOffset) => {
      for (let b = 0; b < bytes.length / bs; b++) {
        const blk = bytes.subarray(b * bs, (b + 1) * bs);
        onBad(`block ${reads[r].start + blockOffset + b}`, parseDirBlock(blk, bs, fileType, entry(blk)));
      }
    });
  }
}

const NO_XATTR = { block: 0, first: false };

export function inodeOffset(sb: Superblock, t: GroupTable, ino: number): number {
  const g = Math.floor((ino - 1) / sb.inodesPerGroup);
  const idx = (ino - 1) % sb.inodesPerGroup;
  return t.inodeTable[g] * sb.blockSize + idx * sb.inodeSize;
}

function typeOf(mode: number): number {
  switch (mode & S_IFMT) {
    case S_IFREG: return T_REG;
    case S_IFDIR: return T_DIR;
    case S_IFLNK: return T_LNK;
    default: return T_OTHER;
  }
}

function lastSetBit(map: Uint8Array, bits: number): number {
  for (let byte = Math.ceil(bits / 8) - 1; byte >= 0; byte--) {
    const v = map[byte];
    if (v === 0) continue;
    for (let bit = 7; bit >= 0; bit--) {
      const i = byte * 8 + bit;
      if (i < bits && v & (1 << bit)) return i;
    }
  }
  return -1;
}
