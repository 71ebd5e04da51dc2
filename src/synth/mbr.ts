/**
 * A DOS (MBR) partition table sector for synthetic disks: up to four primary
 * partitions, CHS fields computed for 255 heads and 63 sectors a track (what
 * fdisk and Windows assume for LBA disks; past cylinder 1023 they read
 * 1023/254/63), the disk signature at 440, 55 AA at 510. No boot code.
 */

export interface MbrPartition {
  /** Partition type byte, e.g. 0x0E (FAT16, LBA), 0x07 (NTFS), 0x83 (Linux). */
  type: number;
  /** First sector (LBA) and length in sectors. */
  start: number;
  sectors: number;
  /** The active (bootable) partition. */
  active?: boolean;
}

const HEADS = 255;
const SECTORS_PER_TRACK = 63;

/** The 3 CHS bytes of an LBA: head, sector | cylinder bits 9-8 << 6, cylinder bits 7-0. */
function chs(lba: number): [number, number, number] {
  const cylinder = Math.floor(lba / (HEADS * SECTORS_PER_TRACK));
  if (cylinder > 1023) return [254, 0xff, 0xff];
  const head = Math.floor(lba / SECTORS_PER_TRACK) % HEADS;
  const sector = (lba % SECTORS_PER_TRACK) + 1;
  return [head, sector | ((cylinder >> 2) & 0xc0), cylinder & 0xff];
}

export function mbrSector(signature: number, partitions: MbrPartition[]): Uint8Array {
  if (partitions.length > 4) throw new RangeError('an MBR holds four primary partitions');
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  v.setUint32(440, signature >>> 0, true);
  partitions.forEach((p, i) => {
    if (p.start < 1 || p.sectors < 1 || p.start + p.sectors > 0x1_0000_0000) throw new RangeError(`partition ${i + 1}: bad extent`);
    const e = 446 + 16 * i;
    b[e] = p.active ? 0x80 : 0x00;
    b.set(chs(p.start), e + 1);
    b[e + 4] = p.type;
    b.set(chs(p.start + p.sectors - 1), e + 5);
    v.setUint32(e + 8, p.start, true);
    v.setUint32(e + 12, p.sectors, true);
  });
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}
