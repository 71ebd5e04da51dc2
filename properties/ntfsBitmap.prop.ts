/** $Bitmap decoding against a bit-by-bit model. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FreeMapBuilder } from '../src/guest/ntfs/bitmap.js';

const RUNS = Number(process.env.VHDTOOL_PROP_RUNS ?? 200);

describe('NTFS $Bitmap', () => {
  it('free ranges are exactly the clear bits below the cluster count (LSB first), whole clusters, however the bytes are chunked', () => {
    const arb = fc.record({
      bytes: fc.uint8Array({ minLength: 0, maxLength: 64 }),
      mostly: fc.constantFrom(0, 0xff, -1),
      cut: fc.array(fc.nat({ max: 64 }), { maxLength: 4 }),
      slack: fc.nat({ max: 15 }),
      cs: fc.constantFrom(512, 4096, 65536),
    });
    fc.assert(fc.property(arb, ({ bytes, mostly, cut, slack, cs }) => {
      // Long runs of 0x00 or 0xFF bytes exercise the whole-byte shortcuts.
      const data = mostly < 0 ? bytes : bytes.map((x, i) => (i % 5 === 0 ? x : mostly));
      const count = Math.max(0, data.length * 8 - slack);
      const f = new FreeMapBuilder(count, cs);
      const points = [0, ...cut.map((c) => Math.min(c, data.length)).sort((a, b) => a - b), data.length];
      for (let i = 1; i < points.length; i++) f.feed(data.subarray(points[i - 1], points[i]));
      const free = f.finish();
      const model: Array<[number, number]> = [];
      for (let c = 0; c < count; c++) {
        if ((data[c >> 3] >> (c & 7)) & 1) continue;
        const last = model[model.length - 1];
        if (last && last[1] === c * cs) last[1] += cs;
        else model.push([c * cs, (c + 1) * cs]);
      }
      expect(free.toArray()).toEqual(model);
    }), { numRuns: RUNS });
  });
});
