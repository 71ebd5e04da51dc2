/**
 * Partition tables, property-tested:
 *  - random valid MBR layouts (primaries, an extended partition with logical
 *    partitions, legacy and aligned starts) and GPT layouts (random slots,
 *    names, GUIDs) written by sfdisk read back exactly, as sfdisk reads them;
 *  - the test-side encoder used for hostile tables writes what sfdisk reads
 *    as the same layout;
 *  - a table with random bytes changed is either refused with a GuestError
 *    or read as a sound table: never another error, never a partition
 *    outside the disk, over another one, or over the tables.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GuestError } from '../src/guest/errors.js';
import { readPartitionTable } from '../src/guest/partitions/index.js';
import type { PartitionTable } from '../src/guest/partitions/types.js';
import { RangeSet } from '../src/guest/ranges.js';
import { bufferSource } from '../src/guest/source.js';
import { blankImage, partition } from '../test/helpers/guest.js';
import { BASIC_DATA, LINUX_FS, fileByteSource, mbrScript, sfdiskPartitions, writeGpt, writeMbrLayout, type GptEntrySpec, type MbrLayout } from '../test/helpers/tables.js';
import { tempDir } from '../test/helpers/tmp.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 200);
/** Runs of the properties that spawn sfdisk (each run costs two processes). */
const TOOL_RUNS = Math.max(5, Math.min(25, Math.floor(RUNS / 8)));
const HAVE_SFDISK = spawnSync('sfdisk', ['--version'], { stdio: 'ignore' }).error === undefined;

const DISK_SECTORS = 262144; // 128 MiB
const DATA_TYPES = [0x01, 0x06, 0x07, 0x0b, 0x0c, 0x0e, 0x82, 0x83, 0x8e, 0xa5, 0xfd];
const EXT_TYPES = [0x05, 0x0f, 0x85];

/** Gaps that real disks have: the legacy 63, the 1 MiB 2048, and anything up to `max`. */
const gapArb = (max: number) => fc.oneof(fc.constant(63), fc.constant(2048), fc.integer({ min: 1, max }));
const arbGap = gapArb(3000);

/**
 * A valid MBR layout: 1-4 primaries in ascending order, at most one extended
 * with 1-6 logicals; sizes up to `maxSize` sectors. A logical partition after
 * the first starts at least `logicalGap` sectors after the one before (sfdisk
 * wants a whole 2048-sector grain there; the format wants 2: one for the EBR).
 */
const mbrArb = (maxSize: number, maxGap: number, logicalGap = 2): fc.Arbitrary<MbrLayout> => fc
  .array(
    fc.record({
      gap: gapArb(maxGap),
      size: fc.integer({ min: 1, max: maxSize }),
      type: fc.constantFrom(...DATA_TYPES),
      logicals: fc.option(
        fc.record({
          extType: fc.constantFrom(...EXT_TYPES),
          items: fc.array(fc.record({ gap: fc.integer({ min: 2, max: maxGap }), size: fc.integer({ min: 1, max: maxSize / 4 }), type: fc.constantFrom(...DATA_TYPES) }), {
            minLength: 1,
            maxLength: 6,
          }),
          slack: fc.integer({ min: 0, max: 500 }),
        }),
        { freq: 3 },
      ),
    }),
    { minLength: 1, maxLength: 4 },
  )
  .map((items) => {
    const layout: MbrLayout = { primaries: [], logicals: [] };
    let cursor = 0;
    let extended = false;
    for (const it of items) {
      const start = cursor + it.gap;
      if (it.logicals && !extended) {
        extended = true;
        let inner = start;
        it.logicals.items.forEach((l, i) => {
          const ls = i === 0 ? start + Math.max(1, l.gap - 1) : inner + Math.max(l.gap, logicalGap);
          layout.logicals.push({ start: ls, size: l.size, type: l.type });
          inner = ls + l.size;
        });
        const end = inner + it.logicals.slack;
        layout.primaries.push({ start, size: end - start, type: it.logicals.extType });
        cursor = end;
      } else {
        layout.primaries.push({ start, size: it.size, type: it.type });
        cursor = start + it.size;
      }
    }
    return layout;
  });
const arbMbr = mbrArb(20000, 3000);
const arbSfdiskMbr = mbrArb(20000, 3000, 2048);

/** What readPartitionTable must return for an MBR layout: [index, start, size, type] in sectors. */
function expectedMbr(layout: MbrLayout): Array<[number, number, number, string]> {
  const out: Array<[number, number, number, string]> = [];
  layout.primaries.forEach((p, i) => {
    if (!EXT_TYPES.includes(p.type)) out.push([i + 1, p.start, p.size, `0x${p.type.toString(16).padStart(2, '0')}`]);
  });
  layout.logicals.forEach((l, i) => out.push([5 + i, l.start, l.size, `0x${l.type.toString(16).padStart(2, '0')}`]));
  return out;
}

function ours(t: PartitionTable, unit = 512) {
  return t.partitions.map((p) => [p.index, p.start / unit, p.size / unit, p.type] as [number, number, number, string]);
}

/** A sparse disk image file holding `img`'s non-zero sectors (the encoder's output, for sfdisk). */
function toFile(img: Uint8Array): string {
  const f = path.join(tempDir(), 'enc.img');
  const fd = openSync(f, 'w');
  try {
    ftruncateSync(fd, img.length);
    const words = new Uint32Array(img.buffer, img.byteOffset, img.length / 4);
    for (let w = 0; w < words.length; w += 128) {
      let used = false;
      for (let i = w; i < w + 128 && !used; i++) used = words[i] !== 0;
      if (used) writeSync(fd, img, w * 4, 512, w * 4);
    }
  } finally {
    closeSync(fd);
  }
  return f;
}

async function readFile(file: string): Promise<PartitionTable> {
  const src = fileByteSource(file);
  try {
    return await readPartitionTable(src);
  } finally {
    src.close();
  }
}

const GPT_TYPES = [LINUX_FS, BASIC_DATA, 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b', '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f', 'e3c9e316-0b5c-4db8-817d-f92df00215ae'];

/** A valid GPT layout: 1-8 partitions at random distinct slots, in ascending order on the disk from LBA 34. */
const gptArb = (maxSize: number, maxGap: number): fc.Arbitrary<GptEntrySpec[]> => fc
  .uniqueArray(fc.integer({ min: 1, max: 128 }), { minLength: 1, maxLength: 8 })
  .chain((slots) =>
    fc.tuple(
      fc.constant(slots),
      fc.array(
        fc.record({
          gap: fc.oneof(fc.constant(0), gapArb(maxGap)),
          size: fc.integer({ min: 1, max: maxSize }),
          type: fc.constantFrom(...GPT_TYPES),
          guid: fc.uuid().map((u) => u.toLowerCase()),
          name: fc.stringMatching(/^[A-Za-z0-9]{0,20}$/),
        }),
        { minLength: slots.length, maxLength: slots.length },
      ),
    ),
  )
  .map(([slots, items]) => {
    let cursor = 34;
    return items.map((it, i) => {
      const first = cursor + it.gap;
      cursor = first + it.size;
      return { slot: slots[i], type: it.type, guid: it.guid, first, last: first + it.size - 1, name: it.name };
    });
  });
const arbGpt = gptArb(20000, 3000);

function gptScript(entries: GptEntrySpec[]): string {
  const lines = entries.map((e) => `${e.slot}: start=${e.first}, size=${e.last - e.first + 1}, type=${e.type}, uuid=${e.guid}${e.name ? `, name="${e.name}"` : ''}\n`);
  return `label: gpt\nlabel-id: 11111111-2222-3333-4444-555555555555\nfirst-lba: 34\n${lines.join('')}`;
}

function expectedGpt(entries: GptEntrySpec[]) {
  return [...entries]
    .sort((a, b) => a.slot - b.slot)
    .map((e) => ({ index: e.slot, start: e.first * 512, size: (e.last - e.first + 1) * 512, type: e.type, guid: e.guid, name: e.name || undefined }));
}

describe.skipIf(!HAVE_SFDISK)('partition tables written by sfdisk', () => {
  it('any valid MBR layout (primaries, an extended partition, logical partitions) reads back exactly, as sfdisk reads it', async () => {
    await fc.assert(
      fc.asyncProperty(arbSfdiskMbr, async (layout) => {
        const f = blankImage(path.join(tempDir(), 'mbr.img'), DISK_SECTORS * 512);
        partition(f, mbrScript(layout));
        const want = expectedMbr(layout);
        expect(sfdiskPartitions(f).partitions.map((p) => [p.index, p.start, p.size])).toEqual(want.map(([i, s, n]) => [i, s, n]));
        const t = await readFile(f);
        expect(ours(t)).toEqual(want);
        expect(t.warnings).toEqual([]);
        // One sector each: the MBR and every EBR (adjacent ones merge into one range, so count bytes).
        expect(t.tables.bytes).toBe((1 + layout.logicals.length) * 512);
      }),
      {
        numRuns: TOOL_RUNS,
        // Found by CI: an extended partition at sector 1, its EBR beside the MBR.
        examples: [[{ primaries: [{ start: 1, size: 2, type: 5 }, { start: 4, size: 1, type: 1 }], logicals: [{ start: 2, size: 1, type: 1 }] }]],
      },
    );
  });

  it('any valid GPT layout (random slots, names, GUIDs) reads back exactly, as sfdisk reads it', async () => {
    await fc.assert(
      fc.asyncProperty(arbGpt, async (entries) => {
        const f = blankImage(path.join(tempDir(), 'gpt.img'), DISK_SECTORS * 512);
        partition(f, gptScript(entries));
        const want = expectedGpt(entries);
        expect(sfdiskPartitions(f).partitions.map((p) => [p.index, p.start * 512, p.size * 512])).toEqual(want.map((w) => [w.index, w.start, w.size]));
        const t = await readFile(f);
        expect(t.partitions.map((p) => ({ index: p.index, start: p.start, size: p.size, type: p.type, guid: p.guid, name: p.name }))).toEqual(want);
        expect(t.warnings).toEqual([]);
      }),
      { numRuns: TOOL_RUNS },
    );
  });

  it('the test encoder writes MBR and GPT layouts that sfdisk reads as the same layouts', async () => {
    await fc.assert(
      fc.asyncProperty(arbMbr, arbGpt, async (mbr, gpt) => {
        // disks just big enough (whole MiB), to keep the runs cheap
        const mib = (sectors: number) => Math.ceil((sectors + 2048) / 2048) * 2048 * 512;
        const a = new Uint8Array(mib(Math.max(...[...mbr.primaries, ...mbr.logicals].map((p) => p.start + p.size))));
        writeMbrLayout(a, mbr);
        const fa = toFile(a);
        expect(sfdiskPartitions(fa).partitions.map((p) => [p.index, p.start, p.size])).toEqual(expectedMbr(mbr).map(([i, s, n]) => [i, s, n]));
        expect(ours(await readFile(fa))).toEqual(expectedMbr(mbr));
        const b = new Uint8Array(mib(Math.max(...gpt.map((e) => e.last + 1))));
        writeGpt(b, { entries: gpt, firstUsable: 34 });
        const fb = toFile(b);
        expect(sfdiskPartitions(fb).partitions.map((p) => [p.index, p.start * 512, p.size * 512])).toEqual(expectedGpt(gpt).map((w) => [w.index, w.start, w.size]));
      }),
      { numRuns: TOOL_RUNS },
    );
  });
});

/** The sectors that hold tables in `t` (where a mutation hurts). */
function tableSectors(t: PartitionTable): number[] {
  const out: number[] = [];
  for (const [s, e] of t.tables) for (let x = s; x < e; x += 512) out.push(x / 512);
  return out;
}

/** Partitions inside the disk, disjoint from each other and from the tables, indices unique. */
function sound(t: PartitionTable, size: number): void {
  const parts = RangeSet.from(t.partitions.map((p) => [p.start, p.start + p.size] as const));
  expect(parts.bytes).toBe(t.partitions.reduce((n, p) => n + p.size, 0));
  for (const p of t.partitions) {
    expect(p.size).toBeGreaterThan(0);
    expect(p.start + p.size).toBeLessThanOrEqual(size);
  }
  if (t.scheme !== 'none') expect(parts.intersectBytes(t.tables)).toBe(0);
  expect(new Set(t.partitions.map((p) => p.index)).size).toBe(t.partitions.length);
}

describe('damaged tables', () => {
  const SMALL = 16384; // 8 MiB
  // 4 x (2048 + 1200) and 8 x (2048 + 1000) sectors fit in SMALL with room for the backup GPT
  const smallMbr = mbrArb(1200, 300);
  const smallGpt = gptArb(1000, 300);
  const arbEdits = fc.array(fc.tuple(fc.nat(), fc.nat({ max: 511 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 });

  it('a table with random bytes changed is refused with a GuestError or read as a sound table', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(smallMbr.map((m) => ({ mbr: m })), smallGpt.map((g) => ({ gpt: g }))), arbEdits, async (layout, edits) => {
        const img = new Uint8Array(SMALL * 512);
        if ('mbr' in layout) writeMbrLayout(img, layout.mbr);
        else writeGpt(img, { entries: layout.gpt, firstUsable: 34 });
        const sectors = tableSectors(await readPartitionTable(bufferSource(img)));
        for (const [which, offset, value] of edits) img[sectors[which % sectors.length] * 512 + offset] = value;
        const t = await readPartitionTable(bufferSource(img)).catch((e: unknown) => e);
        if (t instanceof Error) {
          expect(t).toBeInstanceOf(GuestError);
          return;
        }
        sound(t as PartitionTable, img.length);
      }),
      { numRuns: RUNS },
    );
  });

  // Tables whose numbers lie, with every checksum right: overlaps, partitions past the end, logical
  // partitions outside their extended partition, EBRs inside partitions, GPT entries over the tables.
  const lyingMbr: fc.Arbitrary<MbrLayout> = fc.record({
    primaries: fc.array(
      fc.record({ start: fc.integer({ min: 1, max: SMALL - 1 }), size: fc.integer({ min: 0, max: SMALL }), type: fc.constantFrom(...DATA_TYPES, ...EXT_TYPES) }),
      { minLength: 1, maxLength: 4 },
    ),
    logicals: fc.array(fc.record({ start: fc.integer({ min: 2, max: SMALL - 1 }), size: fc.integer({ min: 0, max: 3000 }), type: fc.constantFrom(...DATA_TYPES) }), {
      maxLength: 6,
    }),
  });
  const lyingGpt = fc.array(
    fc.record({
      slot: fc.integer({ min: 1, max: 128 }),
      type: fc.constantFrom(...GPT_TYPES),
      guid: fc.uuid(),
      first: fc.integer({ min: 0, max: SMALL + 64 }),
      len: fc.integer({ min: -2, max: 4000 }),
    }),
    { minLength: 1, maxLength: 8 },
  );

  it('a table whose numbers lie (checksums right) is refused with a GuestError or read as a sound table', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(lyingMbr.map((m) => ({ mbr: m })), lyingGpt.map((g) => ({ gpt: g }))), async (layout) => {
        const img = new Uint8Array(SMALL * 512);
        if ('mbr' in layout) writeMbrLayout(img, layout.mbr);
        else writeGpt(img, { entries: layout.gpt.map((e) => ({ ...e, last: Math.max(0, e.first + e.len) })), firstUsable: 34 });
        const t = await readPartitionTable(bufferSource(img)).catch((e: unknown) => e);
        if (t instanceof Error) {
          expect(t).toBeInstanceOf(GuestError);
          return;
        }
        sound(t as PartitionTable, img.length);
      }),
      { numRuns: RUNS },
    );
  });
});
