/**
 * The kernel's reader (workers/reader.ts) serves short reads from a window
 * per file. Whatever the sequence of reads, across files, forward, backward,
 * short and long, each must return exactly the file's bytes.
 */
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { READ_AHEAD, SMALL_READ, TaskReader } from '../workers/reader.js';
import { tempDir } from '../test/helpers/tmp.js';
import { patternBytes } from '../src/synth/random.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 100);

describe('windowed reads', () => {
  const dir = tempDir();
  // Sizes around the window's: shorter than one, a few windows and a ragged end.
  const sizes = [SMALL_READ / 2 + 17, 3 * READ_AHEAD + 512 * 7 + 3, 600 * 1024];
  const files = sizes.map((n, i) => {
    const p = path.join(dir, `f${i}`);
    const data = Buffer.from(patternBytes(n, 100 + i));
    writeFileSync(p, data);
    return { path: p, data };
  });
  const read = fc.integer({ min: 0, max: files.length - 1 }).chain((f) => {
    const size = files[f].data.length;
    return fc.record({
      f: fc.constant(f),
      pos: fc.integer({ min: 0, max: size - 1 }),
      len: fc.oneof(fc.integer({ min: 1, max: 2048 }), fc.integer({ min: 1, max: 2 * SMALL_READ })),
    }).map((r) => ({ ...r, len: Math.min(r.len, size - r.pos) }));
  });

  it('every read, in any order and across files, returns exactly the bytes of the file at that offset', () => {
    fc.assert(fc.property(fc.array(fc.array(read, { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 4 }), (tasks) => {
      const reader = new TaskReader();
      for (const task of tasks) {
        for (const r of task) {
          const buf = Buffer.alloc(r.len + 8, 0xee);
          reader.read(files[r.f].path, buf, 4, r.len, r.pos);
          expect(buf.subarray(4, 4 + r.len).equals(files[r.f].data.subarray(r.pos, r.pos + r.len))).toBe(true);
          // Nothing outside the asked range is touched.
          expect(buf.subarray(0, 4).every((b) => b === 0xee) && buf.subarray(4 + r.len).every((b) => b === 0xee)).toBe(true);
        }
        reader.closeAll();
      }
    }), { numRuns: RUNS });
  });
});
