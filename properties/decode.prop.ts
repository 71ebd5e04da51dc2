/**
 * Robustness properties of everything that reads untrusted bytes: random or
 * mutated input fed to decodeFooter, decodeHeader, openVhd, openChain, the
 * chain reader and checkDisk only ever ends in a result or a VhdToolError
 * (never a TypeError/RangeError, never a hang), and a header that lies about
 * its table or block sizes never makes vhdtool allocate by its word.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { VhdToolError } from '../src/errors.js';
import {
  decodeFooter, decodeHeader, encodeFooter, encodeHeader, sealFooter, sealHeader, Bat, encodeBat,
  type Footer, type DynamicHeader,
} from '../src/format/index.js';
import { nodeFileSystem } from '../src/io/fsys.js';
import { openVhd, type OpenMode } from '../src/vhd/image.js';
import { openChain } from '../src/chain/openChain.js';
import { ChainReader } from '../src/chain/reader.js';
import { checkDisk } from '../src/check/check.js';
import { createRunner, type TaskRunner } from '../src/parallel/pool.js';
import { writeSynthChain, type BuiltLayer } from '../src/synth/build.js';
import { newFooter, newHeader } from '../src/vhd/build.js';
import { tempDir } from '../test/helpers/tmp.js';
import { HAVE_REAL, realPath } from '../test/helpers/real.js';
import { readRange, writeRange, fileSize } from '../test/helpers/patch.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS_DECODE ?? 120);
const MODES: OpenMode[] = ['strict', 'lenient', 'collect'];
const MiB = 1024 * 1024;

/** Fails instead of hanging. */
async function bounded<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `f`; a non-VhdToolError escaping it fails the property with its stack. */
async function onlyVhdToolErrors(what: string, f: () => Promise<unknown>): Promise<'ok' | VhdToolError> {
  try {
    await bounded(f(), what);
    return 'ok';
  } catch (e) {
    if (e instanceof VhdToolError) return e;
    throw new Error(`${what} threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack}` : String(e)}`);
  }
}

let runner: TaskRunner;
beforeAll(() => { runner = createRunner({ threads: 0, slotBytes: 64 * 1024 }); });
afterAll(async () => {
  await runner.close();
  if (process.env.VHDTOOL_PROP_VERBOSE) console.log([...outcomes].sort().map(([k, v]) => `${k}: ${v}`).join('\n'));
});

/** Outcomes per step ("openVhd(strict) ok", "checkDisk BAD_FORMAT"...), to show the properties reach past the first check. */
const outcomes = new Map<string, number>();
function count(step: string, r: 'ok' | VhdToolError): void {
  const k = `${step} ${r === 'ok' ? 'ok' : r.code}`;
  outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
}
function reached(prefix: string): number {
  let n = 0;
  for (const [k, v] of outcomes) if (k.startsWith(prefix)) n += v;
  return n;
}

/** Everything a reader of an untrusted file does: open in every mode, follow the chain, read, check. */
async function exercise(file: string, parent?: string): Promise<void> {
  for (const mode of MODES) {
    count(`openVhd(${mode})`, await onlyVhdToolErrors(`openVhd(${mode})`, async () => {
      const v = await openVhd(nodeFileSystem, file, { mode });
      await v.close();
    }));
  }
  for (const mode of ['strict', 'lenient'] as const) {
    count(`openChain(${mode})`, await onlyVhdToolErrors(`openChain(${mode}) + reads`, async () => {
      const c = await openChain(nodeFileSystem, file, { mode, parent });
      try {
        const r = new ChainReader(c);
        const size = r.size;
        // A few ranges only: a lying size may claim terabytes.
        for (const off of [0, Math.max(0, Math.floor(size / 2) - 777), Math.max(0, size - 4096)]) {
          await r.read(off, Math.min(4096, size - off));
        }
      } finally {
        await c.close();
      }
    }));
  }
  count('checkDisk', await onlyVhdToolErrors('checkDisk', () => checkDisk(nodeFileSystem, file, runner, { parent })));
}

describe('decoders on untrusted bytes', () => {
  it('decodeFooter and decodeHeader on any bytes of any length return or throw a VhdToolError, nothing else', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1100 }), fc.boolean(), (b, asHeader) => {
      const sized = asHeader ? (b.length >= 1024 ? b.subarray(0, 1024) : b) : (b.length >= 512 ? b.subarray(0, 512) : b);
      try {
        if (asHeader) decodeHeader(sized);
        else decodeFooter(sized);
      } catch (e) {
        expect(e).toBeInstanceOf(VhdToolError);
      }
    }), { numRuns: RUNS * 5 });
  });

  it('openVhd, openChain, reads and check on random files end in a result or a VhdToolError, and never hang', async () => {
    outcomes.clear();
    const dir = tempDir();
    let n = 0;
    // Random bytes, optionally laid out like a VHD with random fields: a sealed footer (and its copy),
    // a sealed header, a BAT (unused entries or random bytes) and a locator, so that runs get past the
    // cookie and checksum checks and into the offset, size and locator validation behind them.
    const pow2 = fc.integer({ min: 9, max: 31 }).map((k) => 2 ** k);
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const fileArb = fc.record({
      body: fc.uint8Array({ maxLength: 20_000 }),
      footer: fc.option(fc.record({
        type: fc.constantFrom<'fixed' | 'dynamic' | 'differencing'>('fixed', 'dynamic', 'differencing'),
        size: fc.oneof(
          { arbitrary: fc.constant<'fit'>('fit'), weight: 4 },
          { arbitrary: fc.integer({ min: 0, max: 64 }).map((x) => x * 512), weight: 1 },
          { arbitrary: fc.integer({ min: 0, max: 2 ** 40 }), weight: 1 },
          { arbitrary: fc.constant(2 ** 53 - 512), weight: 1 },
        ),
        header: fc.option(fc.record({
          tableOffset: fc.oneof({ arbitrary: fc.constant(1536), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 30_000 }), weight: 1 }, { arbitrary: fc.constant(2 ** 53 - 1), weight: 1 }),
          maxTableEntries: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 20 }), weight: 4 }, { arbitrary: fc.constantFrom(0xffffffff, 0x40000000), weight: 1 }, { arbitrary: u32, weight: 1 }),
          blockSize: fc.oneof({ arbitrary: fc.constantFrom(512, 4096, 65536), weight: 4 }, { arbitrary: pow2, weight: 1 }, { arbitrary: fc.constantFrom(0, 1536, 0xffffffff), weight: 1 }, { arbitrary: u32, weight: 1 }),
          batUnused: fc.boolean(),
          locator: fc.option(fc.oneof(
            fc.record({ length: fc.constant(20), offset: fc.constant(3072), space: fc.constantFrom(1, 512, 4096), valid: fc.constant(true) }),
            fc.record({ length: u32, offset: fc.integer({ min: 0, max: 40_000 }), space: u32, valid: fc.boolean() }),
          ), { nil: null }),
        }), { nil: null }),
        copy: fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }),
      }), { nil: null }),
    });
    await fc.assert(fc.asyncProperty(fileArb, async ({ body, footer }) => {
      const file = path.join(dir, `r${n++}.vhd`);
      let bytes = body;
      if (footer) {
        const len = Math.ceil(Math.max(body.length, 4096) / 512) * 512;
        const hd = footer.header;
        const bs = hd && Number.isInteger(Math.log2(hd.blockSize)) && hd.blockSize >= 512 ? hd.blockSize : 512;
        const size = footer.size !== 'fit' ? footer.size
          : footer.type === 'fixed' ? len : Math.min(2 ** 40, bs * Math.min(hd?.maxTableEntries ?? 1, 4));
        const f: Footer = sealFooter({ ...newFooter({ type: footer.type, virtualSize: size, uniqueId: '01234567-89ab-4cde-8f01-23456789abcd' as never, timestamp: 1 }), dataOffset: footer.type === 'fixed' ? null : 512 });
        const fb = encodeFooter(f);
        bytes = new Uint8Array(len + 512);
        bytes.set(body);
        if (footer.copy && footer.type !== 'fixed') bytes.set(fb, 0);
        if (hd) {
          const h: DynamicHeader = newHeader(hd.blockSize, hd.maxTableEntries,
            footer.type === 'differencing' ? { uniqueId: '11111111-89ab-4cde-8f01-23456789abcd' as never, timestamp: 0, unicodeName: 'p.vhd' } : null);
          h.tableOffset = hd.tableOffset;
          if (hd.batUnused && hd.tableOffset < len) bytes.fill(0xff, hd.tableOffset, Math.min(len, hd.tableOffset + hd.maxTableEntries * 4));
          const l = hd.locator;
          if (l) {
            h.locators[0] = { platform: 'W2ru', dataSpace: l.space, dataLength: l.length, reserved: 0, dataOffset: l.offset };
            if (l.valid && l.offset + 20 <= len) bytes.set(new Uint8Array([0x2e, 0, 0x5c, 0, 0x70, 0, 0x2e, 0, 0x76, 0, 0x68, 0, 0x64, 0, 0, 0, 0, 0, 0, 0]), l.offset);
          }
          bytes.set(encodeHeader(sealHeader(h)), 512);
        }
        bytes.set(fb, len);
      }
      writeFileSync(file, bytes);
      await exercise(file);
    }), { numRuns: RUNS });
    if (process.env.VHDTOOL_PROP_VERBOSE) console.log('random', [...outcomes].sort());
    // Not vacuous: some files open and are checked, some are refused.
    expect(reached('checkDisk ok')).toBeGreaterThan(0);
    expect(reached('openVhd(lenient) ok')).toBeGreaterThan(0);
    expect(reached('openVhd(strict) BAD_FORMAT')).toBeGreaterThan(0);
  });
});

describe('mutated disks', () => {
  let chainDir: string;
  let built: BuiltLayer[];
  beforeAll(async () => {
    chainDir = tempDir();
    const w = (sector: number, v: number, n = 1) => ({ sector, data: new Uint8Array(n * 512).fill(v) });
    built = await writeSynthChain(nodeFileSystem, chainDir, [
      { type: 'dynamic', virtualSize: 64 * 1024, blockSize: 4096, writes: [w(0, 1, 3), w(40, 2)], parentTimestamp: 1 },
      { type: 'differencing', virtualSize: 64 * 1024, blockSize: 4096, writes: [w(1, 3), w(17, 4, 2), w(127, 5)], parentTimestamp: 1, align: 512 },
    ]);
  });

  it('flipping bytes of a child\'s metadata (checksums resealed or not) ends in a result or a VhdToolError, never a hang', async () => {
    const size = fileSize(built[1].path);
    // Metadata of the child: footer copy, header, BAT, locators (first 4 KiB) and the end footer.
    const at = fc.oneof(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: size - 512, max: size - 1 }), fc.integer({ min: 0, max: size - 1 }));
    const arb = fc.record({
      flips: fc.array(fc.tuple(at, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      reseal: fc.boolean(),
    });
    let n = 0;
    outcomes.clear();
    await fc.assert(fc.asyncProperty(arb, async ({ flips, reseal }) => {
      const dir = tempDir('vhdtool-mut-');
      const parent = path.join(dir, path.basename(built[0].path));
      const child = path.join(dir, path.basename(built[1].path));
      copyFileSync(built[0].path, parent);
      copyFileSync(built[1].path, child);
      for (const [off, v] of flips) writeRange(child, off, Uint8Array.of(v));
      if (reseal) resealAll(child);
      n++;
      await exercise(child);
      await exercise(child, parent);
    }), { numRuns: RUNS });
    expect(n).toBe(RUNS);
    if (process.env.VHDTOOL_PROP_VERBOSE) console.log('mutated', [...outcomes].sort());
    // Not vacuous: whole chains still open and read after some mutations; others are refused for checksums or structure.
    expect(reached('openChain(strict) ok')).toBeGreaterThan(0);
    expect(reached('openVhd(strict) BAD_CHECKSUM')).toBeGreaterThan(0);
    expect(reached('openVhd(collect) ok')).toBeGreaterThan(reached('openVhd(strict) ok'));
  });

  it.skipIf(!HAVE_REAL)('a real disk whose header lies about table entries, block size, table offset and size never makes RSS grow by its word', async () => {
    const src = realPath('sleuthkit-image.vhd');
    const lie = fc.record({
      maxTableEntries: fc.oneof({ arbitrary: fc.constantFrom(1, 2), weight: 3 }, { arbitrary: fc.constantFrom(0, 1 << 20, 0x7fffffff, 0x80000000, 0xffffffff), weight: 2 }, { arbitrary: fc.integer({ min: 0, max: 0xffffffff }), weight: 1 }),
      blockSize: fc.oneof({ arbitrary: fc.integer({ min: 9, max: 31 }).map((k) => 2 ** k), weight: 3 }, { arbitrary: fc.constantFrom(0, 1536, 0xffffffff), weight: 1 }, { arbitrary: fc.integer({ min: 0, max: 0xffffffff }), weight: 1 }),
      tableOffset: fc.oneof({ arbitrary: fc.constant(1536), weight: 3 }, { arbitrary: fc.constantFrom(0, 512, 2100224 - 516, 2 ** 40, 2 ** 53 - 1), weight: 1 }, { arbitrary: fc.integer({ min: 0, max: 2100224 }), weight: 1 }),
      currentSize: fc.option(fc.oneof(fc.constantFrom(0, 512, 2 ** 40, 2 ** 50, 2 ** 53 - 512), fc.integer({ min: 0, max: 2 ** 32 }).map((x) => x * 512)), { nil: null, freq: 2 }),
      bat0: fc.option(fc.oneof(fc.constantFrom(0, 1, 3, 4099, 0xfffffffe), fc.integer({ min: 0, max: 0xfffffffe })), { nil: null, freq: 2 }),
    });
    const dir = tempDir('vhdtool-lie-');
    global.gc?.();
    const base = process.memoryUsage();
    let peakRss = base.rss;
    let peakBuffers = base.arrayBuffers;
    let n = 0;
    outcomes.clear();
    await fc.assert(fc.asyncProperty(lie, async (l) => {
      const file = path.join(dir, `lie${n++}.vhd`);
      copyFileSync(src, file);
      const footer = decodeFooter(readRange(file, fileSize(file) - 512, 512));
      const header = decodeHeader(readRange(file, footer.dataOffset!, 1024));
      const h = sealHeader({ ...header, maxTableEntries: l.maxTableEntries, blockSize: l.blockSize, tableOffset: l.tableOffset });
      writeRange(file, footer.dataOffset!, encodeHeader(h));
      if (l.currentSize !== null) {
        const f = encodeFooter(sealFooter({ ...footer, currentSize: l.currentSize }));
        writeRange(file, 0, f);
        writeRange(file, fileSize(file) - 512, f);
      }
      if (l.bat0 !== null && header.tableOffset + 4 <= fileSize(file)) {
        const b = Bat.empty(1);
        b.set(0, l.bat0);
        writeRange(file, header.tableOffset, encodeBat(b).subarray(0, 4));
      }
      await exercise(file);
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
    }), { numRuns: RUNS });
    if (process.env.VHDTOOL_PROP_VERBOSE) console.log('lying', [...outcomes].sort(), peakRss - base.rss, peakBuffers - base.arrayBuffers);
    expect(reached('openVhd(collect) ok')).toBeGreaterThan(0);
    // The file is 2 MiB: whatever the header claims, memory must stay in proportion to the file, not the claim.
    expect(peakBuffers - base.arrayBuffers).toBeLessThan(64 * MiB);
    expect(peakRss - base.rss).toBeLessThan(256 * MiB);
  });
});

/** Recomputes both footer copies' and the header's checksums (when they still decode), so deeper checks are reached. */
function resealAll(file: string): void {
  const size = fileSize(file);
  let f: Footer;
  try {
    f = decodeFooter(readRange(file, size - 512, 512));
  } catch {
    return;
  }
  const fb = encodeFooter(sealFooter(f));
  writeRange(file, size - 512, fb);
  writeRange(file, 0, fb);
  if (f.dataOffset === null || f.dataOffset + 1024 > size - 512) return;
  try {
    const h = decodeHeader(readRange(file, f.dataOffset, 1024));
    writeRange(file, f.dataOffset, encodeHeader(sealHeader(h)));
  } catch {
    /* header no longer decodes: leave it */
  }
}
