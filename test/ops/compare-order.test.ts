/**
 * compare splits a disk into 64 MiB tasks that the main thread and the
 * worker threads run in whatever order they finish. The verdict must not
 * depend on that: the first difference and the list of differing ranges are
 * those of the disk, in disk order, whatever the thread count and however
 * many ranges a single task holds.
 */
import { statSync, truncateSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain, type SynthWrite } from '../../src/synth/build.js';
import { compare } from '../../src/ops/compare.js';
import { mulberry32, patternBytes } from '../../src/synth/random.js';
import { VhdToolError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

const SECTOR = 512;
const MiB = 1024 * 1024;
const SPAN_SECTORS = (64 * MiB) / SECTOR;
const SIZE = 1024 * MiB;

/** Differing sector ranges [start, end) in bytes, by brute force over the written sectors. */
function model(a: SynthWrite[], b: SynthWrite[]): { first: number | null; ranges: Array<[number, number]> } {
  const sectors = (ws: SynthWrite[]) => {
    const m = new Map<number, Uint8Array>();
    for (const w of ws) for (let i = 0; i < w.data.length / SECTOR; i++) m.set(w.sector + i, w.data.subarray(i * SECTOR, (i + 1) * SECTOR));
    return m;
  };
  const sa = sectors(a);
  const sb = sectors(b);
  const zero = new Uint8Array(SECTOR);
  const all = [...new Set([...sa.keys(), ...sb.keys()])].sort((x, y) => x - y);
  let first: number | null = null;
  const ranges: Array<[number, number]> = [];
  for (const s of all) {
    const x = sa.get(s) ?? zero;
    const y = sb.get(s) ?? zero;
    const k = x.findIndex((v, i) => v !== y[i]);
    if (k < 0) continue;
    first ??= s * SECTOR + k;
    const last = ranges[ranges.length - 1];
    if (last && last[1] === s * SECTOR) last[1] += SECTOR;
    else ranges.push([s * SECTOR, (s + 1) * SECTOR]);
  }
  return { first, ranges };
}

async function pair(seed: number, diffsPerSpan: (span: number) => number): Promise<{ a: string; b: string; a0: SynthWrite[]; b0: SynthWrite[] }> {
  const rnd = mulberry32(seed);
  const a0: SynthWrite[] = [];
  const b0: SynthWrite[] = [];
  for (let span = 0; span < SIZE / SECTOR / SPAN_SECTORS; span++) {
    // 256 KiB of data in each span, at a random place; B differs from A in a few separate sectors.
    const at = span * SPAN_SECTORS + Math.floor(rnd() * (SPAN_SECTORS - 1024));
    const data = patternBytes(256 * 1024, seed * 1000 + span);
    a0.push({ sector: at, data });
    const other = Uint8Array.from(data);
    for (let d = 0; d < diffsPerSpan(span); d++) other[(d * 2 + 1) * SECTOR + (d % SECTOR)] ^= 0x5a;
    b0.push({ sector: at, data: other });
  }
  const dir = tempDir();
  await nodeFileSystem.mkdir(path.join(dir, 'a'));
  await nodeFileSystem.mkdir(path.join(dir, 'b'));
  // A's blocks are stored shuffled, B's in order: the same content through different layouts.
  const [a] = await writeSynthChain(nodeFileSystem, path.join(dir, 'a'), [{ type: 'dynamic', virtualSize: SIZE, writes: a0, shuffleSeed: seed }]);
  const [b] = await writeSynthChain(nodeFileSystem, path.join(dir, 'b'), [{ type: 'dynamic', virtualSize: SIZE, writes: b0 }]);
  return { a: a.path, b: b.path, a0, b0 };
}

describe('compare: the verdict does not depend on which thread ran which task', () => {
  it('reports the disk-order first difference and ranges with 1, 2 and 3 threads', async () => {
    // Differences in every third span, 3 separate sectors each: 5 of the 16 spans of 64 MiB, 15 ranges in all.
    const p = await pair(7, (span) => (span % 3 === 1 ? 3 : 0));
    const want = model(p.a0, p.b0);
    expect(want.ranges.length).toBe(15);
    for (const threads of [0, 1, 2, 3]) {
      for (const maxRanges of [16, 4, 1]) {
        const r = await compare(p.a, p.b, { threads, maxRanges });
        expect(r.identical, `threads ${threads}`).toBe(false);
        expect(r.firstDifference, `threads ${threads}`).toBe(want.first);
        expect(r.ranges, `threads ${threads}, maxRanges ${maxRanges}`).toEqual(want.ranges.slice(0, maxRanges));
      }
    }
  });

  it('lists ranges in order when one task holds more of them than the list has room for', async () => {
    // Span 2 holds 40 separate differences; span 5 holds 2. With 16 ranges allowed, all 16 come from span 2.
    const p = await pair(11, (span) => (span === 2 ? 40 : span === 5 ? 2 : 0));
    const want = model(p.a0, p.b0);
    expect(want.ranges.length).toBe(42);
    for (const threads of [0, 2]) {
      const r = await compare(p.a, p.b, { threads });
      expect(r.ranges).toEqual(want.ranges.slice(0, 16));
      expect(r.firstDifference).toBe(want.first);
    }
    // And with room for all of them, every one, in order.
    const r = await compare(p.a, p.b, { threads: 2, maxRanges: 100 });
    expect(r.ranges).toEqual(want.ranges);
  });

  it('finds differences on both sides of the kernel\'s read-window boundaries (every 256 KiB up to 2 MiB)', async () => {
    const dir = tempDir();
    await nodeFileSystem.mkdir(path.join(dir, 'a'));
    await nodeFileSystem.mkdir(path.join(dir, 'b'));
    const data = patternBytes(5 * MiB, 23);
    const other = Uint8Array.from(data);
    // The last byte before and the first byte after each boundary, and one stretch across one.
    const marks: number[] = [];
    for (let k = 1; k <= 8; k++) marks.push(k * 256 * 1024 - 1, k * 256 * 1024);
    for (const m of marks) other[m] ^= 0xff;
    other.fill(7, 3 * MiB - 4096, 3 * MiB + 4096);
    // Written at an odd sector, so the stretch does not start on a window boundary either.
    const a0: SynthWrite[] = [{ sector: 12345, data }];
    const b0: SynthWrite[] = [{ sector: 12345, data: other }];
    const [a] = await writeSynthChain(nodeFileSystem, path.join(dir, 'a'), [{ type: 'dynamic', virtualSize: 64 * MiB, writes: a0 }]);
    const [b] = await writeSynthChain(nodeFileSystem, path.join(dir, 'b'), [{ type: 'dynamic', virtualSize: 64 * MiB, writes: b0 }]);
    const want = model(a0, b0);
    for (const threads of [0, 2]) {
      const r = await compare(a.path, b.path, { threads, maxRanges: 100 });
      expect(r.firstDifference).toBe(want.first);
      expect(r.ranges).toEqual(want.ranges);
    }
  });

  it('finds two disks with the same data identical with any thread count', async () => {
    const p = await pair(13, () => 0);
    for (const threads of [0, 2, 3]) {
      const r = await compare(p.a, p.b, { threads });
      expect(r.identical).toBe(true);
      expect(r.ranges).toEqual([]);
      expect(r.bytesCompared).toBeGreaterThan(0);
    }
  });
});

describe('compare: a failure or an interruption mid-run', () => {
  it('an input truncated while compare reads it: no verdict, the changed file named (exit 8), whichever thread hit it', async () => {
    for (const threads of [0, 2]) {
      const p = await pair(17, () => 0);
      let cut = false;
      // After the first 64 MiB part is folded in, B loses its second half.
      const progress = {
        start() {}, done() {},
        advance() {
          if (cut) return;
          cut = true;
          truncateSync(p.b, Math.floor(statSync(p.b).size / 2));
        },
      };
      const err = await compare(p.a, p.b, { threads, progress }).catch((e: unknown) => e);
      expect(cut).toBe(true);
      expect(err, `threads ${threads}`).toBeInstanceOf(VhdToolError);
      expect((err as VhdToolError).code).toBe('VERIFY_FAILED');
      expect((err as VhdToolError).path).toBe(p.b);
      expect((err as VhdToolError).message).toMatch(/changed while vhdtool ran.*the comparison is void/);
    }
  });

  it('an interrupted compare stops with INTERRUPTED (exit 130) and gives no verdict', async () => {
    for (const threads of [0, 2]) {
      const p = await pair(19, () => 0);
      const ac = new AbortController();
      let folded = 0;
      const progress = { start() {}, done() {}, advance() { if (++folded === 2) ac.abort(); } };
      const err = await compare(p.a, p.b, { threads, progress, signal: ac.signal }).catch((e: unknown) => e);
      expect(err, `threads ${threads}`).toBeInstanceOf(VhdToolError);
      expect((err as VhdToolError).code).toBe('INTERRUPTED');
      // On the main thread alone, it stops at once; workers finish the tasks they already hold.
      if (threads === 0) expect(folded).toBe(2);
    }
  });
});
