/**
 * Directory entries: ext2_dir_entry_2 (inode u32, rec_len u16, name_len u8,
 * file_type u8, name) chained by rec_len through each block. Linear and htree
 * directories read alike: an htree's root block hides its index inside the
 * '..' entry's rec_len and its index blocks are one empty entry spanning the
 * block, so reading every block linearly yields exactly the names. The
 * metadata_csum tail is an empty entry too.
 *
 * Entries are kept flat (typed arrays and one byte pool for names) so a
 * volume with millions of names costs tens of bytes a name.
 */
import { BytePool, Grow } from './grow.js';

export class DirEntries {
  /** Inode number of the directory holding each entry. */
  readonly dir = new Grow(Uint32Array);
  /** Inode number each entry names. */
  readonly ino = new Grow(Uint32Array);
  readonly nameAt = new Grow(Uint32Array);
  readonly nameLen = new Grow(Uint8Array);
  readonly names = new BytePool();

  get count(): number {
    return this.ino.length;
  }

  add(dir: number, ino: number, src: Uint8Array, nameStart: number, nameLen: number): void {
    this.dir.push(dir);
    this.ino.push(ino);
    this.nameAt.push(this.names.append(src, nameStart, nameStart + nameLen));
    this.nameLen.push(nameLen);
  }

  name(i: number): string {
    const at = this.nameAt.a[i];
    return DECODER.decode(this.names.bytes.subarray(at, at + this.nameLen.a[i]));
  }
}

const DECODER = new TextDecoder('utf-8');

/** rec_len as stored: only 64 KiB blocks need its 17th bit, kept in the two low bits (e2fsprogs ext2fs_get_rec_len). */
function recLen(raw: number, blockSize: number): number {
  if (blockSize < 65536) return raw;
  if (raw === 0xffff || raw === 0) return blockSize;
  return (raw & 0xfffc) | ((raw & 3) << 16);
}

/**
 * Parses the entries in `b` (one directory block, or an inline directory's
 * area), calling `entry` for each named entry except '.' and '..'. Returns
 * null, or what is wrong when the rec_len chain breaks (the rest of the
 * block is then skipped).
 */
export function parseDirBlock(
  b: Uint8Array,
  blockSize: number,
  fileType: boolean,
  entry: (ino: number, nameStart: number, nameLen: number) => void,
): string | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  let at = 0;
  while (at < b.length) {
    if (at + 8 > b.length) return `entry at byte ${at} runs past the end of the block`;
    const ino = dv.getUint32(at, true);
    const rec = recLen(dv.getUint16(at + 4, true), blockSize);
    const nameLen = fileType ? b[at + 6] : dv.getUint16(at + 6, true);
    if (rec < 8 || rec % 4 !== 0 || at + rec > b.length) return `entry at byte ${at} has a bad length ${rec}`;
    if (8 + nameLen > rec || nameLen > 255) return `entry at byte ${at} has a name (${nameLen} bytes) longer than its record (${rec}) or than 255 bytes`;
    if (ino !== 0 && nameLen > 0 && !isDotName(b, at + 8, nameLen)) entry(ino, at + 8, nameLen);
    at += rec;
  }
  return null;
}

function isDotName(b: Uint8Array, at: number, len: number): boolean {
  return (len === 1 && b[at] === 0x2e) || (len === 2 && b[at] === 0x2e && b[at + 1] === 0x2e);
}
