/**
 * Generates the hostile-input corpus in fixtures/hostile/: small VHD files
 * that each break exactly one rule (plus two valid helpers they refer to),
 * and the README that lists them with the exit code every command gives.
 *
 * Deterministic: fixed UUIDs, time stamps and data, so re-running it gives
 * identical bytes (test/reliability/corpus.test.ts checks the committed
 * corpus against a fresh generation).
 *
 *   npx tsc -p . && node dist/scripts/make-hostile.js [DIR]
 *
 * DIR defaults to fixtures/hostile in the project.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  bitmapBytes, decodeFooter, decodeHeader, encodeFooter, encodeHeader, encodeUtf16Le, sealFooter, sealHeader,
  FOOTER_SIZE, HEADER_SIZE, SECTOR,
  type DynamicHeader, type Footer, type Uuid,
} from '../src/format/index.js';
import type { RandomAccessFile } from '../src/io/fsys.js';
import { newFooter, newHeader, type LocatorData } from '../src/vhd/build.js';
import { SparseWriter } from '../src/vhd/writer.js';
import { patternBytes as pattern } from '../src/synth/random.js';

/** Exit codes of the five commands for one file (see EXIT_HELP in src/cli/main.ts). */
export interface Expected {
  /** `info FILE` */
  info: number;
  /** `check FILE` (1 = problems found, reported on standard output) */
  check: number;
  /** `compact FILE` (in place) and `compact FILE --output OUT` */
  compact: number;
  /** `merge FILE good-parent.vhd OUT` */
  merge: number;
  /** `merge good-child.vhd FILE OUT` (FILE given as the parent) */
  asParent: number;
  /** `compare FILE good-child.vhd` */
  compare: number;
  /** `maintain FILE --min-reclaim 0` (1 = some chain failed or was skipped for an error, reported on standard output) */
  maintain: number;
}

export interface HostileEntry {
  name: string;
  /** File bytes, or 'dir' for a directory, or 'missing' for a path that does not exist. */
  bytes: Uint8Array | 'dir' | 'missing';
  /** 'helper': a valid file the broken ones refer to; 'broken': breaks `rule`; 'refused': valid but must be refused. */
  kind: 'helper' | 'broken' | 'refused';
  rule: string;
  /** Expected exit codes (helpers: all 0, compare/merge against themselves aside). */
  expected: Expected;
  /** Other corpus files this one needs beside it (parents). */
  needs?: string[];
}

// --- deterministic ingredients ----------------------------------------------

const TS = 757382400; // 2024-01-01T00:00:00Z in VHD time (seconds since 2000-01-01)
const BLOCK = 4096;
const VSIZE = 64 * 1024; // 16 blocks of 4 KiB
const SPB = BLOCK / SECTOR;

const U = {
  parent: '0b57113e-0000-4000-8000-000000000001',
  child: '0b57113e-0000-4000-8000-000000000002',
  dyn: '0b57113e-0000-4000-8000-000000000003',
  unset: '0b57113e-0000-4000-8000-000000000004',
  utf16: '0b57113e-0000-4000-8000-000000000005',
  length: '0b57113e-0000-4000-8000-000000000006',
  wrong: '0b57113e-0000-4000-8000-000000000007',
  nobody: '0b57113e-0000-4000-8000-0000000000ff',
  self: '0b57113e-0000-4000-8000-000000000008',
  loopA: '0b57113e-0000-4000-8000-00000000000a',
  loopB: '0b57113e-0000-4000-8000-00000000000b',
  huge: '0b57113e-0000-4000-8000-00000000000c',
  hugeBlock: '0b57113e-0000-4000-8000-00000000000d',
  saved: '0b57113e-0000-4000-8000-00000000000e',
} as unknown as Record<string, Uuid>;

/** A growable in-memory file for the writers. */
class MemFile implements RandomAccessFile {
  readonly path = '<memory>';
  private buf = new Uint8Array(0);
  private len = 0;

  private ensure(n: number): void {
    if (n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(n, this.buf.length * 2));
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }

  async read(buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
    return this.readSync(buf, off, len, pos);
  }

  readSync(buf: Uint8Array, off: number, len: number, pos: number): number {
    const n = Math.max(0, Math.min(len, this.len - pos));
    buf.set(this.buf.subarray(pos, pos + n), off);
    return n;
  }

  async write(buf: Uint8Array, off: number, len: number, pos: number): Promise<void> {
    this.ensure(pos + len);
    this.buf.set(buf.subarray(off, off + len), pos);
    this.len = Math.max(this.len, pos + len);
  }

  async writev(bufs: Uint8Array[], pos: number): Promise<void> {
    for (const b of bufs) {
      await this.write(b, 0, b.length, pos);
      pos += b.length;
    }
  }

  async size(): Promise<number> {
    return this.len;
  }

  async truncate(len: number): Promise<void> {
    this.ensure(len);
    if (len > this.len) this.buf.fill(0, this.len, len);
    this.len = len;
  }

  async sync(): Promise<void> {}
  async close(): Promise<void> {}

  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

interface BlockSpec {
  /** Sectors (within the block) whose bitmap bit is set. */
  set: number[] | 'all';
  data: Uint8Array;
}

interface DiskSpec {
  type: 'dynamic' | 'differencing';
  uuid: Uuid;
  blocks: Map<number, BlockSpec>;
  parent?: { uuid: Uuid; name: string; locators: LocatorData[] };
  savedState?: number;
}

async function buildDisk(spec: DiskSpec): Promise<Uint8Array> {
  const footer: Footer = { ...newFooter({ type: spec.type, virtualSize: VSIZE, uniqueId: spec.uuid, timestamp: TS }), savedState: spec.savedState ?? 0 };
  const header = newHeader(BLOCK, VSIZE / BLOCK, spec.parent ? { uniqueId: spec.parent.uuid, timestamp: TS, unicodeName: spec.parent.name } : null);
  const f = new MemFile();
  const w = new SparseWriter(f, { footer, header, locators: spec.parent?.locators ?? [], align: SECTOR });
  for (const [b, blk] of [...spec.blocks.entries()].sort((x, y) => x[0] - y[0])) {
    const bm = new Uint8Array(bitmapBytes(BLOCK));
    const sectors = blk.set === 'all' ? Array.from({ length: SPB }, (_, i) => i) : blk.set;
    for (const s of sectors) bm[s >>> 3] |= 0x80 >>> (s & 7);
    await w.writeBlock(b, bm, blk.data);
  }
  await w.finish();
  return f.bytes();
}

/** Hyper-V style locators naming `name` in the child's own directory. */
function locatorsFor(name: string): LocatorData[] {
  return [
    { platform: 'W2ku', data: encodeUtf16Le(`C:\\vhd\\${name}`) },
    { platform: 'W2ru', data: encodeUtf16Le(`.\\${name}`) },
  ];
}

// --- byte surgery -----------------------------------------------------------

function u32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) >>> 0) + ((b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]);
}

function putU32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff; b[off + 1] = (v >>> 16) & 0xff; b[off + 2] = (v >>> 8) & 0xff; b[off + 3] = v & 0xff;
}

/** Applies `fn` to the footer, reseals it, and writes it at the end (and at 0 unless `endOnly`). */
function patchFooter(src: Uint8Array, fn: (f: Footer) => Footer, where: 'both' | 'copy' = 'both'): Uint8Array {
  const b = src.slice();
  const f = sealFooter(fn(decodeFooter(b.subarray(b.length - FOOTER_SIZE))));
  const enc = encodeFooter(f);
  if (where === 'both') b.set(enc, b.length - FOOTER_SIZE);
  b.set(enc, 0);
  return b;
}

/** Applies `fn` to the dynamic header (at 512) and reseals it. */
function patchHeader(src: Uint8Array, fn: (h: DynamicHeader) => DynamicHeader): Uint8Array {
  const b = src.slice();
  const h = sealHeader(fn(decodeHeader(b.subarray(512, 512 + HEADER_SIZE))));
  b.set(encodeHeader(h), 512);
  return b;
}

function tableOffset(b: Uint8Array): number {
  return decodeHeader(b.subarray(512, 512 + HEADER_SIZE)).tableOffset;
}

function setBat(src: Uint8Array, entry: number, sector: number): Uint8Array {
  const b = src.slice();
  putU32(b, tableOffset(b) + entry * 4, sector);
  return b;
}

function getBat(b: Uint8Array, entry: number): number {
  return u32(b, tableOffset(b) + entry * 4);
}

// --- the corpus ----------------------------------------------------------------

const ALL = (code: number, check = 1, asParent = code, maintain = 1): Expected => ({ info: code, check, compact: code, merge: code, asParent, compare: code, maintain });

export async function hostileCorpus(): Promise<HostileEntry[]> {
  const parentBlocks = new Map<number, BlockSpec>([
    [0, { set: 'all', data: pattern(BLOCK, 11) }],
    [3, { set: 'all', data: pattern(BLOCK, 12) }],
    [7, { set: 'all', data: pattern(BLOCK, 13) }],
  ]);
  const goodParent = await buildDisk({ type: 'dynamic', uuid: U.parent, blocks: parentBlocks });

  // Child: block 0 sectors 0-3 rewritten (0-1 with the parent's own bytes, 2-3 new), block 5 new.
  const c0 = new Uint8Array(BLOCK);
  c0.set(pattern(BLOCK, 11).subarray(0, 2 * SECTOR), 0);
  c0.set(pattern(2 * SECTOR, 21), 2 * SECTOR);
  const childBlocks = (): Map<number, BlockSpec> => new Map<number, BlockSpec>([
    [0, { set: [0, 1, 2, 3], data: c0 }],
    [5, { set: 'all', data: pattern(BLOCK, 22) }],
  ]);
  const toParent = { uuid: U.parent, name: 'good-parent.vhd', locators: locatorsFor('good-parent.vhd') };
  const goodChild = await buildDisk({ type: 'differencing', uuid: U.child, blocks: childBlocks(), parent: toParent });
  const dyn = await buildDisk({ type: 'dynamic', uuid: U.dyn, blocks: new Map(parentBlocks) });

  const entries: HostileEntry[] = [];
  const add = (e: HostileEntry) => entries.push(e);

  add({ name: 'good-parent.vhd', bytes: goodParent, kind: 'helper', rule: 'valid dynamic disk, parent of good-child.vhd and of several broken children', expected: { info: 0, check: 0, compact: 0, merge: 6, asParent: 0, compare: 1, maintain: 0 } });
  add({ name: 'good-child.vhd', bytes: goodChild, kind: 'helper', rule: 'valid differencing disk over good-parent.vhd', expected: { info: 0, check: 0, compact: 0, merge: 0, asParent: 5, compare: 0, maintain: 0 }, needs: ['good-parent.vhd'] });

  // Checksums.
  {
    const b = dyn.slice();
    for (const at of [0, b.length - FOOTER_SIZE]) putU32(b, at + 64, (u32(b, at + 64) + 1) >>> 0);
    add({ name: 'footer-checksum.vhd', bytes: b, kind: 'broken', rule: 'footer checksum wrong (both the end footer and its copy at 0)', expected: ALL(4) });
  }
  {
    const b = dyn.slice();
    putU32(b, 512 + 36, (u32(b, 512 + 36) ^ 0xff) >>> 0);
    add({ name: 'header-checksum.vhd', bytes: b, kind: 'broken', rule: 'dynamic header checksum wrong', expected: ALL(4) });
  }
  add({
    name: 'footer-copy.vhd', bytes: patchFooter(dyn, (f) => ({ ...f, timestamp: TS + 3600 }), 'copy'), kind: 'broken',
    rule: 'footer copy at offset 0 differs from the end footer (both checksums valid)', expected: ALL(4),
  });
  add({
    name: 'truncated.vhd', bytes: dyn.slice(0, dyn.length - FOOTER_SIZE - 1000), kind: 'broken',
    rule: 'file cut in the middle of its last block: the end footer is gone (the copy at 0 is intact)', expected: ALL(4),
  });

  // BAT.
  add({
    name: 'bat-into-header.vhd', bytes: setBat(dyn, 1, 1), kind: 'broken',
    rule: 'BAT entry 1 points at sector 1, inside the dynamic header', expected: ALL(4),
  });
  add({
    name: 'bat-past-eof.vhd', bytes: setBat(dyn, 2, 0x00100000), kind: 'broken',
    rule: 'BAT entry 2 points at sector 0x100000 (512 MiB), past the end of the file', expected: ALL(4),
  });
  add({
    name: 'bat-duplicate.vhd', bytes: setBat(dyn, 4, getBat(dyn, 0)), kind: 'broken',
    rule: 'BAT entries 0 and 4 point at the same block', expected: ALL(4),
  });
  add({
    name: 'block-size.vhd', bytes: patchHeader(dyn, (h) => ({ ...h, blockSize: 3 * BLOCK })), kind: 'broken',
    rule: 'block size 12288 is not a power of two (header resealed)', expected: ALL(4),
  });
  add({
    name: 'bat-too-small.vhd', bytes: patchHeader(dyn, (h) => ({ ...h, maxTableEntries: VSIZE / BLOCK - 1 })), kind: 'broken',
    rule: 'BAT has 15 entries, the 64 KiB size needs 16 (header resealed)', expected: ALL(4),
  });

  // Sector bitmap invariant: a clear bit over non-zero data.
  {
    const blocks = childBlocks();
    const d = blocks.get(0)!.data.slice();
    d.set(pattern(SECTOR, 31), 6 * SECTOR); // sector 6: bit clear, data present
    blocks.set(0, { set: [0, 1, 2, 3], data: d });
    add({
      name: 'unset-data.vhd', bytes: await buildDisk({ type: 'differencing', uuid: U.unset, blocks, parent: toParent }), kind: 'broken',
      rule: 'differencing child of good-parent.vhd; block 0 sector 6 has its bitmap bit clear but holds data. ' +
        'info and compare read only what the bitmaps expose (the hidden bytes are invisible to the guest) and succeed; ' +
        'check reports it; compact, merge and maintain refuse it',
      expected: { info: 0, check: 1, compact: 4, merge: 4, asParent: 5, compare: 0, maintain: 1 }, needs: ['good-parent.vhd'],
    });
  }

  // Locators.
  {
    const bad = new Uint8Array([0x2e, 0x00, 0x5c, 0x00, 0x00, 0xd8, 0x67, 0x00]); // ".\" then a lone high surrogate, "g"
    const locators: LocatorData[] = [{ platform: 'W2ku', data: encodeUtf16Le('C:\\vhd\\good-parent.vhd') }, { platform: 'W2ru', data: bad }];
    add({
      name: 'locator-utf16.vhd',
      bytes: await buildDisk({ type: 'differencing', uuid: U.utf16, blocks: childBlocks(), parent: { ...toParent, locators } }),
      kind: 'broken', rule: 'W2ru locator data is not valid UTF-16 (a lone surrogate)', expected: ALL(4), needs: ['good-parent.vhd'],
    });
  }
  {
    const b = await buildDisk({ type: 'differencing', uuid: U.length, blocks: childBlocks(), parent: toParent });
    add({
      name: 'locator-length.vhd',
      bytes: patchHeader(b, (h) => ({ ...h, locators: h.locators.map((l, i) => (i === 1 ? { ...l, dataLength: l.dataSpace + 512 } : l)) })),
      kind: 'broken', rule: 'W2ru locator data length runs 512 bytes past its reserved space (header resealed)', expected: ALL(4), needs: ['good-parent.vhd'],
    });
  }

  // Parent identity and cycles.
  add({
    name: 'wrong-parent-uuid.vhd',
    bytes: await buildDisk({ type: 'differencing', uuid: U.wrong, blocks: childBlocks(), parent: { ...toParent, uuid: U.nobody } }),
    kind: 'broken', rule: `locators name good-parent.vhd, but the parent UUID is ${U.nobody}, not good-parent.vhd's ${U.parent}`,
    expected: ALL(5), needs: ['good-parent.vhd'],
  });
  add({
    name: 'self-parent.vhd',
    bytes: await buildDisk({ type: 'differencing', uuid: U.self, blocks: childBlocks(), parent: { uuid: U.self, name: 'self-parent.vhd', locators: locatorsFor('self-parent.vhd') } }),
    kind: 'broken', rule: 'a differencing disk that names itself as its parent (own UUID, own file name)', expected: ALL(5),
  });
  add({
    name: 'loop-a.vhd',
    bytes: await buildDisk({ type: 'differencing', uuid: U.loopA, blocks: childBlocks(), parent: { uuid: U.loopB, name: 'loop-b.vhd', locators: locatorsFor('loop-b.vhd') } }),
    kind: 'broken', rule: 'parent is loop-b.vhd, whose parent is loop-a.vhd (a two-disk cycle; UUIDs match)', expected: ALL(5), needs: ['loop-b.vhd'],
  });
  add({
    name: 'loop-b.vhd',
    bytes: await buildDisk({ type: 'differencing', uuid: U.loopB, blocks: childBlocks(), parent: { uuid: U.loopA, name: 'loop-a.vhd', locators: locatorsFor('loop-a.vhd') } }),
    kind: 'broken', rule: 'parent is loop-a.vhd, whose parent is loop-b.vhd', expected: ALL(5), needs: ['loop-a.vhd'],
  });

  // Absurd claims: memory must stay bounded whatever the header says.
  {
    const size = 2040 * 1024 ** 3;
    const footer = sealFooter({ ...newFooter({ type: 'dynamic', virtualSize: size, uniqueId: U.huge, timestamp: TS }), dataOffset: 512 });
    const header = sealHeader({ ...newHeader(0x80000000, 0xffffffff, null), tableOffset: 1536 });
    const b = new Uint8Array(1536 + 2048 + FOOTER_SIZE).fill(0xff);
    b.set(encodeFooter(footer), 0);
    b.set(encodeHeader(header), 512);
    b.set(encodeFooter(footer), b.length - FOOTER_SIZE);
    add({
      name: 'huge-table.vhd', bytes: b, kind: 'broken',
      rule: 'header claims 2^32-1 BAT entries and 2 GiB blocks, footer 2040 GiB, in a 4 KiB file (the BAT would be 16 GiB)', expected: ALL(4),
    });
  }
  {
    const size = 2040 * 1024 ** 3;
    const entries = size / 0x80000000; // 1020
    const footer = sealFooter({ ...newFooter({ type: 'dynamic', virtualSize: size, uniqueId: U.hugeBlock, timestamp: TS }), dataOffset: 512 });
    const header = sealHeader({ ...newHeader(0x80000000, entries, null), tableOffset: 1536 });
    const batLen = Math.ceil((entries * 4) / SECTOR) * SECTOR;
    const blockAt = 1536 + batLen;
    const b = new Uint8Array(blockAt + 4096 + FOOTER_SIZE);
    b.fill(0xff, 1536, blockAt);
    putU32(b, 1536, blockAt / SECTOR);
    b.fill(0xff, blockAt, blockAt + 512); // the first sector of a 512 KiB bitmap
    b.set(encodeFooter(footer), 0);
    b.set(encodeHeader(header), 512);
    b.set(encodeFooter(footer), b.length - FOOTER_SIZE);
    add({
      name: 'huge-block.vhd', bytes: b, kind: 'broken',
      rule: '2040 GiB disk of 2 GiB blocks whose block 0 (512 KiB bitmap + 2 GiB data) starts 4 KiB before the end of the file', expected: ALL(4),
    });
  }

  // Not VHDs at all.
  add({ name: 'empty.vhd', bytes: new Uint8Array(0), kind: 'broken', rule: 'an empty file', expected: ALL(4) });
  {
    const line = 'This is a text file, not a virtual hard disk. vhdtool must say so and change nothing.\n';
    add({ name: 'text.vhd', bytes: new TextEncoder().encode(line.repeat(24)), kind: 'broken', rule: 'a text file (2 KiB, no "conectix" cookie)', expected: ALL(4) });
  }
  add({
    name: 'directory.vhd', bytes: 'dir', kind: 'broken', expected: ALL(3, 3, 3, 0),
    rule: 'a directory (holding only .gitkeep); maintain takes folders as roots, so for it this is an empty folder (exit 0)',
  });
  add({ name: 'missing.vhd', bytes: 'missing', kind: 'broken', rule: 'a path that does not exist (no file is generated)', expected: ALL(3, 3, 3, 3) });

  // Valid, but must be refused by the commands that write.
  add({
    name: 'saved-state.vhd',
    bytes: await buildDisk({ type: 'differencing', uuid: U.saved, blocks: childBlocks(), parent: toParent, savedState: 1 }),
    kind: 'refused', rule: 'valid differencing child of good-parent.vhd in saved state: readers work (with a warning), writers refuse, maintain skips it (not an error)',
    expected: { info: 0, check: 0, compact: 6, merge: 6, asParent: 5, compare: 0, maintain: 0 }, needs: ['good-parent.vhd'],
  });
  return entries;
}

/** The README of the corpus, generated from the same table. */
export function corpusReadme(entries: HostileEntry[]): string {
  const rows = entries.map((e) => {
    const x = e.expected;
    return `| \`${e.name}\` | ${e.kind} | ${e.rule.replace(/\|/g, '\\|')} | ${x.info} | ${x.check} | ${x.compact} | ${x.merge} | ${x.asParent} | ${x.compare} | ${x.maintain} |`;
  });
  return `# Hostile inputs

Generated by \`scripts/make-hostile.ts\` (deterministic; do not edit by hand):

    npx tsc -p . && node dist/scripts/make-hostile.js

Every "broken" file breaks exactly one rule of the VHD format (or is not a
VHD at all); "helper" files are valid and are what the broken children point
at; "refused" files are valid but must be refused by the commands that write.
All disks are 64 KiB with 4 KiB blocks (the "huge" ones only *claim* more).

The columns give the exit code of each command (see \`vhdtool --help\`):
info \`info FILE\`; check \`check FILE\` (1 = problems found, listed on standard
output); compact \`compact FILE\` in place and with \`--output\`; merge
\`merge FILE good-parent.vhd OUT\`; as parent \`merge good-child.vhd FILE OUT\`;
compare \`compare FILE good-child.vhd\` and \`compare good-child.vhd FILE\`;
maintain \`maintain FILE --min-reclaim 0\` (1 = a chain failed, reported on standard output).
For every file and command, test/reliability/hostile.test.ts checks: that exit
code; one error line naming the file; no stack trace; a few seconds at most;
peak memory under 512 MiB; every input byte-identical afterwards; no file left
behind (no output, temporary or lock). compact and merge refuse every file that
check rejects.

| file | kind | rule broken | info | check | compact | merge | as parent | compare | maintain |
|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Exit codes: 0 success, 1 check found problems / compare found a difference /
maintain could not maintain a chain,
3 not found or not a regular file, 4 not a VHD or broken metadata, 5 the chain
cannot be opened (parent UUID mismatch, cycle), 6 refused to protect data.
`;
}

/** Writes the corpus into `dir` (created; stale entries removed). */
export async function writeCorpus(dir: string): Promise<HostileEntry[]> {
  const entries = await hostileCorpus();
  mkdirSync(dir, { recursive: true });
  const keep = new Set(['README.md', ...entries.filter((e) => e.bytes !== 'missing').map((e) => e.name)]);
  for (const n of readdirSync(dir)) if (!keep.has(n)) rmSync(path.join(dir, n), { recursive: true, force: true });
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.bytes === 'missing') continue;
    rmSync(p, { recursive: true, force: true });
    if (e.bytes === 'dir') {
      mkdirSync(p);
      writeFileSync(path.join(p, '.gitkeep'), '');
    } else {
      writeFileSync(p, e.bytes);
    }
  }
  writeFileSync(path.join(dir, 'README.md'), corpusReadme(entries));
  return entries;
}

/** Project root, from scripts/ or dist/scripts/. */
export function projectRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const dir = path.resolve(process.argv[2] ?? path.join(projectRoot(), 'fixtures', 'hostile'));
  writeCorpus(dir).then((entries) => {
    const files = entries.filter((e) => e.bytes instanceof Uint8Array);
    const bytes = files.reduce((n, e) => n + (e.bytes as Uint8Array).length, 0);
    process.stdout.write(`${dir}: ${files.length} files (${bytes} bytes), 1 directory, README.md\n`);
  }).catch((e: unknown) => {
    process.stderr.write(`make-hostile: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
