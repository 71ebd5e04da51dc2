/**
 * Partition tables for tests: a test-side encoder (MBR, EBR, GPT) for the
 * hostile layouts no tool will write, checked against sfdisk in
 * test/guest/partitions-encoder.test.ts, and the oracles' views of a disk
 * (sfdisk --json, Sleuth Kit's mmls) for cross-checks.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { run } from './guest.js';
import type { ByteSource } from '../../src/guest/source.js';

export interface MbrSpec {
  type: number;
  lba: number;
  sectors: number;
  status?: number;
}

/** A 512-byte MBR or EBR sector with these entries (null: unused slot). */
export function mbrSector(entries: Array<MbrSpec | null>, opts: { signature?: boolean; diskId?: number } = {}): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  v.setUint32(440, opts.diskId ?? 0x12345678, true);
  entries.forEach((e, i) => {
    if (!e) return;
    const at = 446 + 16 * i;
    b[at] = e.status ?? 0;
    b[at + 4] = e.type;
    v.setUint32(at + 8, e.lba, true);
    v.setUint32(at + 12, e.sectors, true);
  });
  if (opts.signature ?? true) {
    b[510] = 0x55;
    b[511] = 0xaa;
  }
  return b;
}

/** Writes `bytes` into `img` at sector `sector` (of `sectorSize` bytes). */
export function put(img: Uint8Array, sector: number, bytes: Uint8Array, sectorSize = 512): void {
  img.set(bytes, sector * sectorSize);
}

/** The on-disk (mixed-endian) bytes of a GUID given as text. */
export function guidBytes(text: string): Uint8Array {
  const h = text.replace(/-/g, '');
  const b = Uint8Array.from({ length: 16 }, (_, i) => parseInt(h.slice(2 * i, 2 * i + 2), 16));
  return Uint8Array.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8)]);
}

export interface GptEntrySpec {
  slot: number;
  type: string;
  guid: string;
  first: number;
  last: number;
  name?: string;
}

export interface GptSpec {
  blockSize?: number;
  entries: GptEntrySpec[];
  entryCount?: number;
  entrySize?: number;
  diskGuid?: string;
  /** Default: 2 + array blocks. */
  firstUsable?: number;
  /** Default: last LBA - 1 - array blocks. */
  lastUsable?: number;
}

export const LINUX_FS = '0fc63daf-8483-4772-8e79-3d69d8477de4';
export const BASIC_DATA = 'ebd0a0a2-b9e5-4433-87c0-68b6b72699c7';

/** Writes a protective MBR, the primary GPT and its backup into `img` (whose length sets the disk size). */
export function writeGpt(img: Uint8Array, spec: GptSpec): void {
  const bs = spec.blockSize ?? 512;
  const blocks = Math.floor(img.length / bs);
  const count = spec.entryCount ?? 128;
  const size = spec.entrySize ?? 128;
  const arrayBlocks = Math.ceil((count * size) / bs);
  const firstUsable = spec.firstUsable ?? 2 + arrayBlocks;
  const lastUsable = spec.lastUsable ?? blocks - 2 - arrayBlocks;
  const array = new Uint8Array(count * size);
  for (const e of spec.entries) {
    const at = (e.slot - 1) * size;
    const v = new DataView(array.buffer, at);
    array.set(guidBytes(e.type), at);
    array.set(guidBytes(e.guid), at + 16);
    v.setBigUint64(32, BigInt(e.first), true);
    v.setBigUint64(40, BigInt(e.last), true);
    const name = e.name ?? '';
    for (let i = 0; i < name.length && i < 36; i++) v.setUint16(56 + 2 * i, name.charCodeAt(i), true);
  }
  const pmbr = mbrSector([{ type: 0xee, lba: 1, sectors: Math.min(blocks - 1, 0xffffffff) }], { diskId: 0 });
  img.set(pmbr, 0);
  const arrayCrc = crc32(array) >>> 0;
  const header = (my: number, alt: number, arrayLba: number) => {
    const h = new Uint8Array(bs);
    const v = new DataView(h.buffer);
    h.set(new TextEncoder().encode('EFI PART'), 0);
    v.setUint32(8, 0x00010000, true);
    v.setUint32(12, 92, true);
    v.setBigUint64(24, BigInt(my), true);
    v.setBigUint64(32, BigInt(alt), true);
    v.setBigUint64(40, BigInt(firstUsable), true);
    v.setBigUint64(48, BigInt(lastUsable), true);
    h.set(guidBytes(spec.diskGuid ?? '11111111-2222-3333-4444-555555555555'), 56);
    v.setBigUint64(72, BigInt(arrayLba), true);
    v.setUint32(80, count, true);
    v.setUint32(84, size, true);
    v.setUint32(88, arrayCrc, true);
    v.setUint32(16, crc32(h.subarray(0, 92)) >>> 0, true);
    return h;
  };
  img.set(header(1, blocks - 1, 2), bs);
  img.set(array, 2 * bs);
  img.set(array, (blocks - 1 - arrayBlocks) * bs);
  img.set(header(blocks - 1, 1, blocks - 1 - arrayBlocks), (blocks - 1) * bs);
}

/** Recomputes the CRC32 of the GPT header at byte `at` (after a test edited its fields). */
export function resealHeader(img: Uint8Array, at: number): void {
  const v = new DataView(img.buffer, img.byteOffset + at);
  const size = v.getUint32(12, true);
  v.setUint32(16, 0, true);
  v.setUint32(16, crc32(img.subarray(at, at + size)) >>> 0, true);
}

/** A ByteSource over a file, read with plain synchronous reads (tests only). */
export function fileByteSource(file: string): ByteSource & { close(): void } {
  const fd = openSync(file, 'r');
  const size = fstatSync(fd).size;
  return {
    size,
    read(offset, length) {
      const b = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const n = readSync(fd, b, got, length - got, offset + got);
        if (n <= 0) throw new Error(`short read at ${offset + got}`);
        got += n;
      }
      return Promise.resolve(b);
    },
    close: () => closeSync(fd),
  };
}

export interface OraclePartition {
  /** Linux's number (sfdisk's node suffix). */
  index: number;
  start: number;
  size: number;
  type: string;
}

/** sfdisk --json's partitions, in sectors, extended containers left out. */
export function sfdiskPartitions(file: string): { label: string; partitions: OraclePartition[] } {
  const t = JSON.parse(run('sfdisk', ['--json', file])).partitiontable as {
    label: string;
    partitions?: Array<{ node: string; start: number; size: number; type: string }>;
  };
  const parts = (t.partitions ?? [])
    .filter((p) => !(t.label === 'dos' && ['5', 'f', '85'].includes(p.type)))
    .map((p) => ({ index: Number(/(\d+)$/.exec(p.node)![1]), start: p.start, size: p.size, type: p.type.toLowerCase() }));
  return { label: t.label, partitions: parts };
}

export interface MmlsRow {
  slot: string;
  start: number;
  length: number;
  description: string;
}

/** Sleuth Kit mmls's rows (units of `blockSize`). */
export function mmls(file: string, blockSize = 512): MmlsRow[] {
  const out = run('mmls', ['-b', String(blockSize), file]);
  const rows: MmlsRow[] = [];
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    if (m) rows.push({ slot: m[1], start: Number(m[2]), length: Number(m[4]), description: m[5].trim() });
  }
  return rows;
}

/** mmls's partitions: rows with a slot number, extended containers left out. */
export function mmlsPartitions(rows: MmlsRow[]): MmlsRow[] {
  return rows.filter((r) => /^\d+(:\d+)?$/.test(r.slot) && !/Extended/.test(r.description));
}

export interface MbrLayout {
  /** Primary entries in slot order (slot = position + 1); an extended one holds `logicals`. */
  primaries: Array<{ start: number; size: number; type: number }>;
  /** Logical partitions, ascending, inside the (single) extended primary. */
  logicals: Array<{ start: number; size: number; type: number }>;
}

/**
 * Writes an MBR and, for the extended primary, an EBR chain laid out as
 * sfdisk lays it: the first EBR at the extended partition's start, each
 * later one in the sector before its logical partition.
 */
export function writeMbrLayout(img: Uint8Array, layout: MbrLayout): void {
  put(img, 0, mbrSector(layout.primaries.map((p) => ({ type: p.type, lba: p.start, sectors: p.size }))));
  const ext = layout.primaries.find((p) => [0x05, 0x0f, 0x85].includes(p.type));
  if (!ext) return;
  const ebrs = layout.logicals.map((l, i) => (i === 0 ? ext.start : l.start - 1));
  layout.logicals.forEach((l, i) => {
    const next = i + 1 < layout.logicals.length ? { at: ebrs[i + 1], end: layout.logicals[i + 1].start + layout.logicals[i + 1].size } : null;
    put(
      img,
      ebrs[i],
      mbrSector([
        { type: l.type, lba: l.start - ebrs[i], sectors: l.size },
        next ? { type: 0x05, lba: next.at - ext.start, sectors: next.end - next.at } : null,
      ], { diskId: 0 }),
    );
  });
}

/** The same layout as an sfdisk script. */
export function mbrScript(layout: MbrLayout): string {
  const line = (p: { start: number; size: number; type: number }) => `start=${p.start}, size=${p.size}, type=${p.type.toString(16)}\n`;
  return `label: dos\nlabel-id: 0x12345678\nunit: sectors\n${layout.primaries.map(line).join('')}${layout.logicals.map(line).join('')}`;
}
