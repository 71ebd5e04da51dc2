/**
 * Properties of relink's in-place write, over children with random locator
 * sets (W2ku, W2ru, MacX, Wi2r, a Mac alias), random reserved spaces (in
 * bytes or in sectors, as producers disagree), locators before or after the
 * BAT, and new parent paths of random length.
 */
import fc from 'fast-check';
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeHeader, encodeUtf16Le, sealHeader, SECTOR, type PlatformCode } from '../src/format/index.js';
import { readHeader, writeRange } from '../test/helpers/patch.js';
import { nodeFileSystem } from '../src/io/fsys.js';
import { applyJournaled } from '../src/io/journal.js';
import { writeSynthLayer } from '../src/synth/build.js';
import { openVhd } from '../src/vhd/image.js';
import { macXLocatorData, type LocatorData } from '../src/vhd/build.js';
import { scanGaps } from '../src/check/gaps.js';
import { desiredLocators, inPlacePatches, newLinkHeader, placeInPlace } from '../src/ops/relink/link.js';
import { tempDir } from '../test/helpers/tmp.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS_RELINK ?? 60);
const MiB = 1024 * 1024;

interface Case {
  platforms: PlatformCode[];
  /** Reserved space of each locator: 0 = just the data, else this many bytes (or sectors when `sectors`). */
  spaces: number[];
  sectors: boolean;
  locatorsFirst: boolean;
  /** Lengths of the new parent folder's name and of a folder below it (0: none). */
  nameLength: number;
  subLength: number;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  platforms: fc.subarray(['W2ku', 'W2ru', 'MacX', 'Wi2r', 'Mac '] as PlatformCode[], { minLength: 1 }),
  spaces: fc.array(fc.constantFrom(0, 512, 1024, 4096, 65536), { minLength: 5, maxLength: 5 }),
  sectors: fc.boolean(),
  locatorsFirst: fc.boolean(),
  nameLength: fc.integer({ min: 1, max: 200 }),
  subLength: fc.integer({ min: 0, max: 200 }),
});

function oldLocator(p: PlatformCode, space: number): LocatorData {
  const data = p === 'MacX' ? macXLocatorData('/old/golden/base.vhd')
    : p === 'Wi2r' ? new TextEncoder().encode('..\\golden\\base.vhd')
      : p === 'Mac ' ? new Uint8Array(300).fill(0x5a)
        : encodeUtf16Le(p === 'W2ku' ? 'C:\\old\\golden\\base.vhd' : '..\\golden\\base.vhd');
  return { platform: p, data, space: space === 0 ? undefined : Math.max(space, Math.ceil(data.length / SECTOR) * SECTOR) };
}

/** Restates every locator's data space in sectors, as XO's vhd-lib writes it (the writer states bytes). */
function spacesInSectors(file: string): void {
  const h = readHeader(file);
  const locators = h.locators.map((l) => (l.platform === null ? l : { ...l, dataSpace: l.dataSpace / SECTOR }));
  writeRange(file, 512, encodeHeader(sealHeader({ ...h, locators })));
}

describe('relink in place', () => {
  it('never writes outside the locators\' reserved room or the header, and the result opens strictly, names the new parent, and leaves no orphan data', async () => {
    const seen = { inPlace: 0, refused: 0, tooLong: 0 };
    await fc.assert(fc.asyncProperty(caseArb, async (c) => {
      const dir = tempDir('vhdtool-prop-relink-');
      const base = await writeSynthLayer(nodeFileSystem, path.join(dir, 'base.vhd'), { type: 'dynamic', virtualSize: 4 * MiB, writes: [] }, null);
      const child = path.join(dir, 'child.vhd');
      const locators = c.platforms.map((p, i) => oldLocator(p, c.spaces[i]));
      await writeSynthLayer(nodeFileSystem, child, {
        type: 'differencing', virtualSize: 4 * MiB, locators, locatorsFirst: c.locatorsFirst,
        writes: [{ sector: 0, data: new Uint8Array(4096).fill(1) }, { sector: 5000, data: new Uint8Array(512).fill(2) }],
      }, base);
      if (c.sectors) spacesInSectors(child);
      const rel = ['n'.repeat(c.nameLength), ...(c.subLength ? ['s'.repeat(c.subLength)] : [])];
      const newDir = path.join(dir, ...rel);
      mkdirSync(newDir, { recursive: true });
      const parentPath = path.join(newDir, 'base.vhd');
      const before = readFileSync(child);

      const v = await openVhd(nodeFileSystem, child, { mode: 'strict' });
      const m = v.meta;
      const changes = { childPath: child, parentPath, parentUuid: null, parentTimestamp: null };
      const { locators: wanted } = desiredLocators(m, changes);
      const plan = placeInPlace(m, wanted);
      if (!('entries' in plan)) {
        await v.close();
        // Refused only when some new locator is longer than every free room.
        expect(plan.reason).toMatch(/fits no reserved locator space|no locator slots/);
        seen.refused++;
        if (/fits no reserved locator space/.test(plan.reason) && m.locators.length >= wanted.length) seen.tooLong++;
        return;
      }
      seen.inPlace++;
      const header = newLinkHeader(m, changes, plan.entries);
      const patches = await inPlacePatches(m, header, plan, async (o, n) => Uint8Array.from(before.subarray(o, o + n)));
      const rooms = m.locators.map((l) => [l.entry.dataOffset, l.entry.dataOffset + Math.max(Math.ceil(l.entry.dataLength / SECTOR) * SECTOR, l.spaceBytes ?? 0)]);
      const others = m.regions.filter((r) => !r.name.startsWith('locator '));
      const sorted = [...patches].sort((a, b) => a.offset - b.offset);
      for (const [i, p] of sorted.entries()) {
        const end = p.offset + p.new.length;
        if (i > 0) expect(p.offset).toBeGreaterThanOrEqual(sorted[i - 1].offset + sorted[i - 1].new.length);
        const isHeader = p.offset === 512 && end === 1536;
        expect(isHeader || rooms.some(([a, b]) => p.offset >= a && end <= b)).toBe(true);
        for (const r of others) if (!(isHeader && r.name === 'header')) expect(end <= r.start || p.offset >= r.end).toBe(true);
      }
      await v.close();
      const st = (await nodeFileSystem.stat(child));
      await applyJournaled(nodeFileSystem, {
        disk: child, patches, expect: { dev: st.dev, ino: st.ino, size: st.size }, times: { atimeMs: st.atimeMs ?? st.mtimeMs, mtimeMs: st.mtimeMs },
      });
      const after = readFileSync(child);
      // Nothing but the patched regions changed.
      const mask = Buffer.from(before);
      const got = Buffer.from(after);
      for (const p of patches) {
        mask.fill(0, p.offset, p.offset + p.new.length);
        got.fill(0, p.offset, p.offset + p.new.length);
      }
      expect(got.equals(mask)).toBe(true);
      const w = await openVhd(nodeFileSystem, child, { mode: 'strict' });
      try {
        const paths = w.meta.locators.map((l) => [l.entry.platform, l.value.ok ? l.value.path : null]);
        expect(paths.find(([p]) => p === 'W2ku')?.[1]).toBe(parentPath);
        expect(paths.find(([p]) => p === 'W2ru')?.[1]).toBe(`.\\${rel.join('\\')}\\base.vhd`);
        expect(paths.some(([p]) => p === 'Mac ')).toBe(false);
        expect((await scanGaps(w)).orphans).toEqual([]);
      } finally {
        await w.close();
      }
    }), {
      numRuns: RUNS,
      // Random draws make a too-long path rare; this one always is (two one-sector rooms, a ~900-byte path).
      examples: [[{ platforms: ['W2ku', 'W2ru'], spaces: [0, 0, 0, 0, 0], sectors: false, locatorsFirst: false, nameLength: 200, subLength: 200 }]],
    });
    // Both outcomes were exercised (a property that only ever refuses would prove nothing).
    expect(seen.inPlace).toBeGreaterThan(RUNS / 5);
    expect(seen.tooLong).toBeGreaterThan(0);
  }, 300_000);
});
