/**
 * The fuzzing harness shared by properties/fuzz.prop.ts (a modest count in
 * `npm test`) and scripts/fuzz.ts (`npm run fuzz`, a long campaign).
 *
 * Inputs are real files mutated at the places that matter (footer and copy
 * fields, header fields, locator entries, BAT entries, random bytes, cuts and
 * extensions, with checksums resealed or not), and VHDs assembled from random
 * metadata. Seeds: the hostile corpus (helpers and broken files) and, when
 * present, the real-world fixtures in ../shared/fixtures/real (read in place,
 * never copied into the project, never written).
 *
 * Each input is fed to every parser and reader: decodeFooter, decodeHeader,
 * decodeLocatorData, openVhd (strict, lenient, collect), openChain (strict,
 * lenient) and the ChainReader, checkDisk, a compact dry run and compare. A
 * mutated file is tried as a leaf, and a mutated parent under an intact
 * child. The only acceptable failure is a VhdToolError other than INTERNAL;
 * anything else (a TypeError, a RangeError, an internal error, a hang, an
 * error line that is not one clean line) is a finding.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { VhdToolError } from '../src/errors.js';
import {
  decodeFooter, decodeHeader, decodeLocatorData, encodeFooter, encodeHeader, sealFooter, sealHeader,
  FOOTER_SIZE, HEADER_SIZE, PLATFORM_CODES,
  type PlatformCode, type Uuid,
} from '../src/format/index.js';
import { nodeFileSystem } from '../src/io/fsys.js';
import { openVhd, type OpenMode } from '../src/vhd/image.js';
import { openChain } from '../src/chain/openChain.js';
import { ChainReader } from '../src/chain/reader.js';
import { checkDisk } from '../src/check/check.js';
import { createRunner, type TaskRunner } from '../src/parallel/pool.js';
import { compact } from '../src/ops/compact.js';
import { compare } from '../src/ops/compare.js';
import { newFooter, newHeader } from '../src/vhd/build.js';
import { hostileCorpus } from './make-hostile.js';

export interface Seed {
  name: string;
  bytes: Uint8Array;
  /** The parent the seed's locators name (a file name), and where its bytes are. */
  parent?: { name: string; path: string };
  /** A child (intact) to open over this seed when the seed is mutated as a parent. */
  childOf?: { name: string; bytes: Uint8Array };
}

/** Project root, from scripts/ or dist/scripts/. */
export function projectRoot(): string {
  let d = path.dirname(new URL(import.meta.url).pathname);
  while (!existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
}

export function realDir(): string {
  return process.env.VHDTOOL_REAL_DIR ?? path.resolve(projectRoot(), '../shared/fixtures/real');
}

/** Real fixtures small enough to fuzz quickly (plain files only), and which are parent and child. */
const REAL_SEEDS: Array<{ name: string; parent?: string }> = [
  { name: 'minimal.vhd' }, { name: 'virtualpc-dynamic.vhd' }, { name: 'hyperv2012r2-dynamic.vhd' },
  { name: 'original-size-mismatch.vhd' }, { name: 'ext2.vhd' }, { name: 'sleuthkit-image.vhd' },
  { name: 'encrypt-cloud-image-dynamic.vhd' }, { name: 'encrypt-cloud-image-fixed.vhd' }, { name: 'vhd-forensic-fixed.vhd' },
  { name: 'image.vhd' }, { name: 'image-differential.vhd', parent: 'image.vhd' },
  { name: 'fat-parent.vhd' }, { name: 'fat-differential.vhd', parent: 'fat-parent.vhd' },
  { name: 'ntfs-parent.vhd' }, { name: 'ntfs-differential.vhd', parent: 'ntfs-parent.vhd' },
  { name: 'ntfs-dynamic.vhd' }, { name: 'dissect-dynamic.vhd' },
];

/** Loads the seeds. `helperDir` receives the corpus helpers that children find by name. */
export async function loadSeeds(helperDir: string, opts: { real?: boolean } = {}): Promise<Seed[]> {
  mkdirSync(helperDir, { recursive: true });
  const seeds: Seed[] = [];
  const corpus = await hostileCorpus();
  const good = corpus.find((e) => e.name === 'good-parent.vhd')!.bytes as Uint8Array;
  const goodParentPath = path.join(helperDir, 'good-parent.vhd');
  if (!existsSync(goodParentPath)) writeFileSync(goodParentPath, good, { flag: 'wx' });
  const goodChild = corpus.find((e) => e.name === 'good-child.vhd')!.bytes as Uint8Array;
  for (const e of corpus) {
    if (!(e.bytes instanceof Uint8Array) || e.bytes.length === 0) continue;
    const needsParent = e.needs?.includes('good-parent.vhd');
    seeds.push({
      name: `hostile/${e.name}`, bytes: e.bytes,
      parent: needsParent ? { name: 'good-parent.vhd', path: goodParentPath } : undefined,
      childOf: e.name === 'good-parent.vhd' ? { name: 'good-child.vhd', bytes: goodChild } : undefined,
    });
  }
  const dir = realDir();
  if (opts.real !== false && existsSync(path.join(dir, 'logical-sha256.txt'))) {
    for (const r of REAL_SEEDS) {
      const p = path.join(dir, r.name);
      if (!existsSync(p)) continue;
      seeds.push({ name: `real/${r.name}`, bytes: new Uint8Array(readFileSync(p)), parent: r.parent ? { name: r.parent, path: path.join(dir, r.parent) } : undefined });
    }
    for (const s of seeds) {
      const childName = REAL_SEEDS.find((r) => r.parent && `real/${r.parent}` === s.name)?.name;
      if (childName) s.childOf = { name: childName, bytes: new Uint8Array(readFileSync(path.join(dir, childName))) };
    }
  }
  return seeds;
}

// --- inputs -------------------------------------------------------------------

export type Where = 'footer' | 'copy' | 'header' | 'locator' | 'bat' | 'anywhere';

export type Mutation =
  | { t: 'set'; where: Where; off: number; width: 1 | 2 | 4 | 8; value: number }
  | { t: 'flip'; pos: number; bit: number }
  | { t: 'cut'; keep: number }
  | { t: 'grow'; by: number; fill: number }
  | { t: 'dup'; from: number; to: number; len: number };

export interface MutatedInput {
  kind: 'mutated';
  seed: number;
  /** Mutate the seed used as a parent under its intact child, instead of as the leaf. */
  asParent: boolean;
  mutations: Mutation[];
  /** Recompute the footer (and copy) and header checksums afterwards, to get past them. */
  reseal: 'none' | 'footer' | 'header' | 'both';
  reads: number[];
}

export interface RandomInput {
  kind: 'random';
  footer: { currentSize: number; diskType: number; dataOffset: number; features: number; version: number; savedState: number };
  header: { tableOffset: number; maxTableEntries: number; blockSize: number; version: number; parentUuid: boolean };
  bat: number[];
  locators: Array<{ code: number; space: number; length: number; offset: number }>;
  size: number;
  fill: number;
  reads: number[];
}

export type FuzzInput = MutatedInput | RandomInput;

const FOOTER_FIELDS: Array<[number, 1 | 2 | 4 | 8]> = [[0, 8], [8, 4], [12, 4], [16, 8], [24, 4], [28, 4], [40, 8], [48, 8], [56, 4], [60, 4], [64, 4], [68, 8], [84, 1], [85, 1]];
const HEADER_FIELDS: Array<[number, 1 | 2 | 4 | 8]> = [[0, 8], [8, 8], [16, 8], [24, 4], [28, 4], [32, 4], [36, 4], [40, 8], [56, 4], [64, 2], [66, 2]];
const LOCATOR_FIELDS: Array<[number, 1 | 2 | 4 | 8]> = [[0, 4], [4, 4], [8, 4], [12, 4], [16, 8]];

/** Values that break things: boundaries, powers of two, sizes near the file's. */
const interesting = fc.oneof(
  fc.constantFrom(0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 0x200, 0x201, 0x3ff, 0x400, 0x600, 0xfff, 0x1000, 0xffff, 0x10000,
    0x1fffff, 0x200000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 2 ** 32, 2 ** 40, 2 ** 52, 2 ** 53 - 1, Number.MAX_SAFE_INTEGER),
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.integer({ min: 0, max: 64 }).map((k) => 2 ** k),
  fc.integer({ min: -2, max: 2 }).map((d) => -1000 + d), // negative: "file size + d" (resolved at apply time)
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant('set' as const), where: fc.constant('footer' as const), f: fc.constantFrom(...FOOTER_FIELDS), value: interesting }).map(({ f, value }) => ({ t: 'set' as const, where: 'footer' as const, off: f[0], width: f[1], value })) },
  { weight: 2, arbitrary: fc.record({ f: fc.constantFrom(...FOOTER_FIELDS), value: interesting }).map(({ f, value }) => ({ t: 'set' as const, where: 'copy' as const, off: f[0], width: f[1], value })) },
  { weight: 5, arbitrary: fc.record({ f: fc.constantFrom(...HEADER_FIELDS), value: interesting }).map(({ f, value }) => ({ t: 'set' as const, where: 'header' as const, off: f[0], width: f[1], value })) },
  { weight: 4, arbitrary: fc.record({ i: fc.nat({ max: 7 }), f: fc.constantFrom(...LOCATOR_FIELDS), value: interesting }).map(({ i, f, value }) => ({ t: 'set' as const, where: 'locator' as const, off: 576 + i * 24 + f[0], width: f[1], value })) },
  { weight: 4, arbitrary: fc.record({ i: fc.nat({ max: 4096 }), value: interesting }).map(({ i, value }) => ({ t: 'set' as const, where: 'bat' as const, off: i * 4, width: 4 as const, value })) },
  { weight: 2, arbitrary: fc.record({ off: fc.nat(), value: interesting, width: fc.constantFrom<1 | 2 | 4 | 8>(1, 2, 4, 8) }).map(({ off, value, width }) => ({ t: 'set' as const, where: 'anywhere' as const, off, width, value })) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('flip' as const), pos: fc.nat(), bit: fc.nat({ max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('cut' as const), keep: fc.double({ min: 0, max: 1, noNaN: true }).map((x) => Math.floor(x * 1e6)) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('grow' as const), by: fc.integer({ min: 1, max: 70_000 }), fill: fc.constantFrom(0, 0xff, 0x41) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dup' as const), from: fc.nat(), to: fc.nat(), len: fc.integer({ min: 1, max: 4096 }) }) },
);

const readsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 4 });

export function mutatedArb(seeds: Seed[]): fc.Arbitrary<MutatedInput> {
  const parents = seeds.map((s, i) => (s.childOf ? i : -1)).filter((i) => i >= 0);
  return fc.record({
    kind: fc.constant('mutated' as const),
    seed: fc.nat({ max: seeds.length - 1 }),
    asParent: parents.length ? fc.boolean() : fc.constant(false),
    mutations: fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
    reseal: fc.constantFrom('none' as const, 'footer' as const, 'header' as const, 'both' as const),
    reads: readsArb,
  }).map((m) => (m.asParent && !seeds[m.seed].childOf ? { ...m, seed: parents[m.seed % parents.length] } : m));
}

export const randomArb: fc.Arbitrary<RandomInput> = fc.record({
  kind: fc.constant('random' as const),
  footer: fc.record({
    currentSize: fc.oneof(fc.integer({ min: 0, max: 1 << 16 }).map((n) => n * 512), interesting),
    diskType: fc.constantFrom(2, 3, 3, 4, 4, 0, 1, 5, 7),
    dataOffset: fc.oneof(fc.constant(512), fc.constant(-1), interesting),
    features: fc.constantFrom(2, 0, 3, 0xffffffff),
    version: fc.constantFrom(0x10000, 0x10000, 0, 0x20000),
    savedState: fc.constantFrom(0, 0, 1, 2),
  }),
  header: fc.record({
    tableOffset: fc.oneof(fc.constant(1536), fc.constantFrom(0, 512, 1024, 2048, 4096), interesting),
    maxTableEntries: fc.oneof(fc.integer({ min: 0, max: 64 }), interesting),
    blockSize: fc.oneof(fc.integer({ min: 9, max: 31 }).map((k) => 2 ** k), interesting),
    version: fc.constantFrom(0x10000, 0x10000, 0),
    parentUuid: fc.boolean(),
  }),
  bat: fc.array(fc.oneof(fc.constant(0xffffffff), fc.integer({ min: 0, max: 64 }), interesting), { maxLength: 24 }),
  locators: fc.array(fc.record({
    code: fc.oneof(fc.constantFrom(...Object.values(PLATFORM_CODES)), fc.integer({ min: 0, max: 0xffffffff })),
    space: fc.oneof(fc.integer({ min: 0, max: 600 }), interesting),
    length: fc.oneof(fc.integer({ min: 0, max: 1100 }), interesting),
    offset: fc.oneof(fc.integer({ min: 0, max: 16 }).map((n) => n * 512), interesting),
  }), { maxLength: 8 }),
  size: fc.integer({ min: 0, max: 40 }).map((n) => n * 512 + (n % 7 === 3 ? 511 : 0)),
  fill: fc.constantFrom(0, 0xff, 0x55),
  reads: readsArb,
});

export function inputArb(seeds: Seed[]): fc.Arbitrary<FuzzInput> {
  return fc.oneof({ weight: 4, arbitrary: mutatedArb(seeds) }, { weight: 1, arbitrary: randomArb });
}

// --- building the bytes ---------------------------------------------------------

function putUint(b: Uint8Array, off: number, width: number, value: number): void {
  if (off < 0 || off + width > b.length) return;
  let v = BigInt(Math.max(0, Math.floor(value)));
  for (let i = width - 1; i >= 0; i--) {
    b[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

function u32(b: Uint8Array, off: number): number {
  return ((b[off] << 24) >>> 0) + ((b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]);
}

function u64(b: Uint8Array, off: number): number {
  return u32(b, off) * 2 ** 32 + u32(b, off + 4);
}

/** Where the dynamic header is (by the end footer's data offset, else 512). */
function headerAt(b: Uint8Array): number {
  if (b.length < FOOTER_SIZE) return 512;
  const d = u64(b, b.length - FOOTER_SIZE + 16);
  return d > 0 && d + HEADER_SIZE <= b.length ? d : 512;
}

function resealFooter(b: Uint8Array): void {
  if (b.length < FOOTER_SIZE) return;
  const at = b.length - FOOTER_SIZE;
  let f;
  try {
    f = decodeFooter(b.subarray(at));
  } catch {
    return;
  }
  const enc = encodeFooter(sealFooter(f));
  b.set(enc, at);
  if (b.length >= 2 * FOOTER_SIZE && u32(b, 0) === u32(enc, 0)) b.set(enc, 0);
}

function resealHeader(b: Uint8Array): void {
  const at = headerAt(b);
  if (at + HEADER_SIZE > b.length) return;
  try {
    b.set(encodeHeader(sealHeader(decodeHeader(b.subarray(at, at + HEADER_SIZE)))), at);
  } catch { /* a field the codec cannot hold: leave it broken */ }
}

export function buildMutated(input: MutatedInput, seed: Seed): Uint8Array {
  let b = seed.bytes.slice();
  for (const m of input.mutations) {
    const len = b.length;
    switch (m.t) {
      case 'set': {
        const value = m.value < 0 ? Math.max(0, len + (m.value + 1000)) : m.value;
        let base = 0;
        if (m.where === 'footer') base = len - FOOTER_SIZE;
        else if (m.where === 'copy') base = 0;
        else if (m.where === 'header' || m.where === 'locator') base = headerAt(b);
        else if (m.where === 'bat') {
          const h = headerAt(b);
          base = h + HEADER_SIZE <= len ? u64(b, h + 16) : 1536;
        }
        const off = m.where === 'anywhere' ? (len ? m.off % len : 0) : base + m.off;
        putUint(b, off, m.width, value);
        break;
      }
      case 'flip':
        if (len) b[m.pos % len] ^= 1 << m.bit;
        break;
      case 'cut':
        b = b.slice(0, Math.floor((len * m.keep) / 1e6));
        break;
      case 'grow': {
        const g = new Uint8Array(len + m.by).fill(m.fill);
        g.set(b);
        b = g;
        break;
      }
      case 'dup':
        if (len) {
          const from = m.from % len;
          const to = m.to % len;
          const n = Math.min(m.len, len - from, len - to);
          b.copyWithin(to, from, from + n);
        }
        break;
    }
  }
  if (input.reseal === 'footer' || input.reseal === 'both') resealFooter(b);
  if (input.reseal === 'header' || input.reseal === 'both') resealHeader(b);
  return b;
}

/** A non-negative safe integer (the "size + d" markers of `interesting` mean little here). */
function nn(v: number): number {
  return Math.min(Math.max(0, Math.floor(v)), Number.MAX_SAFE_INTEGER);
}

export function buildRandom(r: RandomInput): Uint8Array {
  const size = Math.max(r.size, 0);
  const b = new Uint8Array(size).fill(r.fill);
  const types = { 2: 'fixed', 3: 'dynamic', 4: 'differencing' } as const;
  const known = types[r.footer.diskType as 2 | 3 | 4];
  const footer = newFooter({ type: known ?? 'dynamic', virtualSize: 0, uniqueId: '0b57113e-0000-4000-8000-0000000000f0' as Uuid, timestamp: 0 });
  const fb = encodeFooter(sealFooter({
    ...footer, currentSize: nn(r.footer.currentSize), originalSize: 0, features: r.footer.features >>> 0,
    formatVersion: r.footer.version, savedState: r.footer.savedState, diskType: known ?? r.footer.diskType,
    dataOffset: r.footer.dataOffset < 0 ? null : nn(r.footer.dataOffset),
  }));
  const h = newHeader(2 ** 21, 0, r.header.parentUuid ? { uniqueId: '0b57113e-0000-4000-8000-0000000000f1' as Uuid, timestamp: 0, unicodeName: 'p.vhd' } : null);
  let hb: Uint8Array;
  try {
    hb = encodeHeader(sealHeader({
      ...h, tableOffset: nn(r.header.tableOffset), maxTableEntries: r.header.maxTableEntries >>> 0,
      blockSize: r.header.blockSize >>> 0, headerVersion: r.header.version,
      locators: h.locators.map((l, i) => {
        const x = r.locators[i];
        if (!x) return l;
        const code = x.code >>> 0;
        const platform = (Object.entries(PLATFORM_CODES).find(([, v]) => v === code)?.[0] as PlatformCode | undefined) ?? (code === 0 ? null : code);
        return { platform, dataSpace: x.space >>> 0, dataLength: x.length >>> 0, reserved: 0, dataOffset: nn(x.offset) };
      }),
    }));
  } catch {
    hb = encodeHeader(sealHeader(h));
  }
  if (size >= FOOTER_SIZE) b.set(fb.subarray(0, Math.min(FOOTER_SIZE, size)), size - FOOTER_SIZE);
  if (size >= 2 * FOOTER_SIZE) b.set(fb, 0);
  if (size >= 512 + HEADER_SIZE) b.set(hb, 512);
  const t = nn(r.header.tableOffset);
  r.bat.forEach((v, i) => putUint(b, t + i * 4, 4, v));
  // Locator data: UTF-16LE text, so that some decode.
  for (const x of r.locators) {
    const text = new Uint8Array(Math.min(nn(x.length), 256));
    for (let i = 0; i + 1 < text.length; i += 2) text[i] = 0x61 + ((i / 2) % 26);
    if (x.offset >= 0 && x.offset < size) b.set(text.subarray(0, Math.max(0, Math.min(text.length, size - x.offset))), x.offset);
  }
  return b;
}

// --- running one input ------------------------------------------------------------

export interface Outcome {
  /** Steps that ended in a VhdToolError, by code. */
  codes: Record<string, number>;
  /** Steps that succeeded. */
  ok: number;
}

export class FuzzFinding extends Error {
  constructor(readonly step: string, override readonly cause: unknown) {
    super(`${step}: ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)}`);
    this.name = 'FuzzFinding';
  }
}

async function bounded<T>(p: Promise<T>, step: string, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new FuzzFinding(step, new Error(`did not finish within ${ms} ms`))), ms);
    })]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Workspace {
  leafDir: string;
  parentDir: string;
  runner: TaskRunner;
  close(): Promise<void>;
}

/** Directories for inputs (never the fixtures) and a shared inline task runner. */
export function workspace(root: string): Workspace {
  const leafDir = path.join(root, 'leaf');
  const parentDir = path.join(root, 'parent');
  mkdirSync(leafDir, { recursive: true });
  mkdirSync(parentDir, { recursive: true });
  const runner = createRunner({ threads: 0, slotBytes: 4 * 1024 * 1024 });
  return { leafDir, parentDir, runner, close: () => runner.close() };
}

/** Writes `bytes` as a new regular file at `p` (removing whatever was there first: never writes through a link). */
function put(p: string, bytes: Uint8Array): void {
  try {
    unlinkSync(p);
  } catch { /* absent */ }
  writeFileSync(p, bytes, { flag: 'wx' });
}

function link(target: string, p: string): void {
  try {
    unlinkSync(p);
  } catch { /* absent */ }
  symlinkSync(target, p);
}

/**
 * Runs one input through every parser and reader. Returns what happened;
 * throws a FuzzFinding for anything but a VhdToolError.
 */
export async function runInput(input: FuzzInput, seeds: Seed[], ws: Workspace, stepMs = 15_000): Promise<Outcome> {
  const out: Outcome = { codes: {}, ok: 0 };
  let bytes: Uint8Array;
  let leaf: string;
  if (input.kind === 'random') {
    bytes = buildRandom(input);
    leaf = path.join(ws.leafDir, 'input.vhd');
    put(leaf, bytes);
  } else {
    const seed = seeds[input.seed];
    bytes = buildMutated(input, seed);
    if (input.asParent && seed.childOf) {
      // The mutated file is the parent, under its own name; the child beside it is intact.
      put(path.join(ws.parentDir, path.basename(seed.name)), bytes);
      leaf = path.join(ws.parentDir, `child-of-${path.basename(seed.name)}`);
      put(leaf, seed.childOf.bytes);
    } else {
      leaf = path.join(ws.leafDir, 'input.vhd');
      if (seed.parent) link(seed.parent.path, path.join(ws.leafDir, seed.parent.name));
      put(leaf, bytes);
    }
  }
  const step = async <T>(name: string, fn: () => Promise<T> | T): Promise<T | undefined> => {
    try {
      const r = await bounded(Promise.resolve().then(fn), name, stepMs);
      out.ok++;
      return r;
    } catch (e) {
      if (e instanceof FuzzFinding) throw e;
      if (e instanceof VhdToolError && e.code !== 'INTERNAL') {
        out.codes[e.code] = (out.codes[e.code] ?? 0) + 1;
        if (typeof e.line !== 'string' || /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(e.line)) {
          throw new FuzzFinding(`${name} (message)`, new Error(`error line is not one clean line: ${JSON.stringify(e.line)}`));
        }
        return undefined;
      }
      throw new FuzzFinding(name, e);
    }
  };

  // The pure decoders, on the raw bytes.
  if (bytes.length >= FOOTER_SIZE) await step('decodeFooter', () => decodeFooter(bytes.subarray(bytes.length - FOOTER_SIZE)));
  if (bytes.length >= 512 + HEADER_SIZE) await step('decodeHeader', () => decodeHeader(bytes.subarray(512, 512 + HEADER_SIZE)));
  for (const p of Object.keys(PLATFORM_CODES) as PlatformCode[]) {
    const slice = bytes.subarray(Math.floor(bytes.length * input.reads[0]), Math.floor(bytes.length * input.reads[0]) + 96);
    await step(`decodeLocatorData ${p}`, () => decodeLocatorData(p, slice));
  }
  // The opener, in every mode.
  for (const mode of ['strict', 'lenient', 'collect'] as OpenMode[]) {
    await step(`openVhd ${mode}`, async () => {
      const v = await openVhd(nodeFileSystem, leaf, { mode });
      await v.close();
    });
  }
  // The chain and its reader.
  for (const mode of ['strict', 'lenient'] as OpenMode[]) {
    await step(`openChain+read ${mode}`, async () => {
      const chain = await openChain(nodeFileSystem, leaf, { mode });
      try {
        const r = new ChainReader(chain);
        const size = r.size;
        const buf = new Uint8Array(64 * 1024);
        await r.read(0, Math.min(size, buf.length), buf);
        for (const f of input.reads) {
          const off = Math.floor(f * size);
          await r.read(off, Math.min(4096 + 7, Math.max(0, size - off)));
        }
        if (size <= 8 * 1024 * 1024) await r.stream(() => undefined, 1024 * 1024);
      } finally {
        await chain.close();
      }
    });
  }
  await step('checkDisk', () => checkDisk(nodeFileSystem, leaf, ws.runner));
  await step('compact --dry-run', () => compact(leaf, { threads: 0, dryRun: true, output: path.join(path.dirname(leaf), 'never-written.vhd') }));
  await step('compare', () => compare(leaf, leaf, { threads: 0 }));
  return out;
}

/** A compact, reproducible description of an input (seed by name). */
export function describeInput(input: FuzzInput, seeds: Seed[]): string {
  if (input.kind === 'random') return JSON.stringify(input);
  return JSON.stringify({ ...input, seed: seeds[input.seed].name });
}
