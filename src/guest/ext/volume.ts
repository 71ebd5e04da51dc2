/**
 * An ext2/ext3/ext4 volume, read-only: open() reads and checks the
 * superblock and the group descriptor table; scan() makes one pass over the
 * metadata (scan.ts); readContent() streams one file.
 */
import { GuestError } from '../errors.js';
import { readChecked, type ByteSource } from '../source.js';
import type { GuestFile, ScanOptions, Volume, VolumeScan } from '../volume.js';
import { BlockDevice } from './blockio.js';
import { fileContent } from './content.js';
import { readGroupTable, type GroupTable } from './groups.js';
import { inodeOffset } from './inodescan.js';
import { parseInode } from './inodes.js';
import { scanExt } from './scan.js';
import { parseSuperblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, type Superblock } from './superblock.js';

export class ExtVolume implements Volume {
  readonly kind: 'ext2' | 'ext3' | 'ext4';
  readonly size: number;
  readonly clusterSize: number;
  readonly clusterArea: { start: number; end: number };
  readonly label: string | null;

  private constructor(
    private readonly dev: BlockDevice,
    /** The decoded superblock (features, geometry), for callers that want more than the Volume interface. */
    readonly superblock: Superblock,
    private readonly groups: GroupTable,
  ) {
    this.kind = superblock.kind;
    this.size = dev.src.size;
    this.clusterSize = superblock.blockSize;
    this.clusterArea = { start: superblock.firstDataBlock * superblock.blockSize, end: superblock.blocksCount * superblock.blockSize };
    this.label = superblock.label;
  }

  static async open(src: ByteSource): Promise<ExtVolume> {
    const raw = await readChecked(src, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, 'ext superblock');
    const sb = parseSuperblock(raw, src.size);
    const dev = new BlockDevice(src, sb.blockSize, sb.blocksCount);
    return new ExtVolume(dev, sb, await readGroupTable(dev, sb));
  }

  scan(opts?: ScanOptions): Promise<VolumeScan> {
    return scanExt(this.dev, this.superblock, this.groups, this.size, opts);
  }

  async *readContent(f: GuestFile): AsyncIterable<Uint8Array> {
    const sb = this.superblock;
    const ino = f.ref;
    if (!Number.isInteger(ino) || ino < 1 || ino > sb.inodesCount) throw new GuestError(`ext: inode ${ino} is out of range (1..${sb.inodesCount})`);
    const at = inodeOffset(sb, this.groups, ino);
    const inode = parseInode(sb, ino, await readChecked(this.dev.src, at, sb.inodeSize, `inode ${ino}`));
    const want = /^ino:\d+:(\d+)$/.exec(f.id);
    if (want && Number(want[1]) !== inode.generation) throw new GuestError(`ext: inode ${ino} changed since it was scanned (generation ${inode.generation}, expected ${want[1]})`);
    yield* fileContent(this.dev, sb, inode);
  }
}
