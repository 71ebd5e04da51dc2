/**
 * Raw disk images (`.img`, `.raw`: the guest's bytes and nothing else), told
 * apart from VHDs by content, never by name.
 *
 * A file is a VHD when any VHD cookie sits where a VHD keeps one: "conectix"
 * in the last 512 (or 511) bytes or at offset 0 (the footer copy), "cxsparse"
 * at 512 (the dynamic header), "v_poison" at the end (blktap). Such a file
 * goes to openVhd, damaged or not, so a broken VHD is reported as broken and
 * never read as raw. A file that starts with another image format's
 * signature (VHDX, qcow, VMDK, VDI) is refused. Anything else is raw.
 *
 * A raw image opens as a layer of type "fixed" marked `raw`: the chain
 * reader, the planner and the kernel read a fixed layer as its data at
 * sector x 512, which is exactly a raw file.
 */
import { FormatError, VhdToolError, fromSystemError } from '../errors.js';
import { FOOTER_COOKIE, HEADER_COOKIE, NULL_UUID, POISON_COOKIE, SECTOR, latin1 } from '../format/index.js';
import { readAt, type FileSystem, type RandomAccessFile } from '../io/fsys.js';
import { newFooter } from './build.js';
import type { Vhd, VhdMeta } from './image.js';

export type DiskFormat = { kind: 'vhd' } | { kind: 'raw' } | { kind: 'foreign'; name: string };

/** Signatures at the start of other image formats: [offset, bytes, name]. */
const FOREIGN: Array<[number, string, string]> = [
  [0, 'vhdxfile', 'a VHDX image'],
  [0, 'QFI\xfb', 'a qcow image'],
  [0, 'KDMV', 'a VMDK image'],
  [0, '# Disk DescriptorFile', 'a VMDK descriptor'],
  [0x40, '\x7f\x10\xda\xbe', 'a VirtualBox VDI image'],
];

/** What the file's bytes say it is (reads at most 1.5 KiB). */
export async function probeFormat(file: RandomAccessFile): Promise<DiskFormat> {
  const size = await file.size();
  const head = await readAt(file, 0, Math.min(size, 1024));
  const at = (b: Uint8Array, off: number, text: string) => off + text.length <= b.length && latin1(b, off, text.length) === text;
  if (at(head, 0, FOOTER_COOKIE) || at(head, 512, HEADER_COOKIE)) return { kind: 'vhd' };
  if (size >= SECTOR) {
    const tail = await readAt(file, size - SECTOR, SECTOR);
    // The 512-byte footer, the 511-byte one (Virtual PC before 2004), and blktap's busy marker.
    if (at(tail, 0, FOOTER_COOKIE) || at(tail, 1, FOOTER_COOKIE) || at(tail, 0, POISON_COOKIE) || at(tail, 1, POISON_COOKIE)) return { kind: 'vhd' };
  }
  for (const [off, sig, name] of FOREIGN) if (at(head, off, sig)) return { kind: 'foreign', name };
  return { kind: 'raw' };
}

/** Opens a file already probed as raw: a fixed-disk layer over the whole file. */
export async function openRaw(fs: FileSystem, path: string): Promise<Vhd> {
  let file: RandomAccessFile;
  try {
    file = await fs.openRead(path);
  } catch (e) {
    throw fromSystemError(e, path, false);
  }
  try {
    const size = await file.size();
    if (size === 0) throw new FormatError('file is empty: neither a VHD nor a raw disk image', path, 'TRUNCATED');
    if (size % SECTOR !== 0) {
      throw new FormatError(`not a VHD, and not a raw disk image either: its size ${size} is not a multiple of 512 bytes`, path);
    }
    const footer = newFooter({ type: 'fixed', virtualSize: size, uniqueId: NULL_UUID, timestamp: 0 });
    const meta: VhdMeta = {
      path, fileSize: size, type: 'fixed', footer, footerOffset: size, footerLength: 0, footerCopy: null, virtualSize: size,
      header: null, blockSize: null, blockCount: 0, bitmapSize: 0, bat: null, locators: [],
      regions: [{ name: 'data', start: 0, end: size }], issues: [], raw: true,
    };
    return { meta, file, close: () => file.close() };
  } catch (e) {
    await file.close().catch(() => undefined);
    throw e instanceof VhdToolError ? e.withPath(path) : fromSystemError(e, path, false);
  }
}
