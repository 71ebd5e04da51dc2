/**
 * The MFT pass reads the $MFT in windows into two buffers it reuses. Every
 * window must hold exactly the records it names, whether the $MFT is in one
 * run or fragmented (a window then spans runs), and whether the source can
 * read into a buffer or only hand out new ones.
 */
import { describe, expect, it } from 'vitest';
import { MftMap, WINDOW } from '../../src/guest/ntfs/mft.js';
import { bufferSource, type ByteSource } from '../../src/guest/source.js';
import { patternBytes } from '../../src/synth/random.js';

const CS = 4096;
const RS = 1024;

/** A volume of `clusters` clusters of pattern bytes, and the $MFT's bytes as its runs lay them out. */
function volumeWith(runs: Array<{ vcn: number; lcn: number; length: number }>, clusters: number): { vol: Uint8Array; mft: Uint8Array } {
  const vol = patternBytes(clusters * CS, 11);
  const parts = runs.map((r) => vol.subarray(r.lcn * CS, (r.lcn + r.length) * CS));
  const mft = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { mft.set(p, at); at += p.length; }
  return { vol, mft };
}

async function windows(map: MftMap, src: ByteSource): Promise<Array<{ first: number; count: number; bytes: Uint8Array }>> {
  const seen: Array<{ first: number; count: number; bytes: Uint8Array }> = [];
  // A copy at visit time: the buffer is reused for a later window.
  await map.forEachWindow(src, (buf, first, count) => seen.push({ first, count, bytes: buf.slice(0, count * RS) }));
  return seen;
}

describe('MFT windows', () => {
  const perWindow = WINDOW / RS;
  const layouts = {
    'one run': [{ vcn: 0, lcn: 10, length: 2600 }],
    // Fragments that end inside windows, out of volume order.
    fragmented: [{ vcn: 0, lcn: 1500, length: 700 }, { vcn: 700, lcn: 20, length: 1300 }, { vcn: 2000, lcn: 2300, length: 601 }],
  };
  for (const [name, runs] of Object.entries(layouts)) {
    it(`${name}: each window holds its records, through readInto and without it`, async () => {
      const clusters = 3000;
      const { vol, mft } = volumeWith(runs, clusters);
      const records = Math.floor(mft.length / RS) - 3; // the last records are not initialized
      const map = new MftMap(runs, CS, RS, records * RS);
      const withInto = bufferSource(vol);
      const plain: ByteSource = { size: vol.length, read: withInto.read };
      for (const src of [withInto, plain]) {
        const seen = await windows(map, src);
        expect(seen.map((w) => w.first)).toEqual(Array.from({ length: Math.ceil(records / perWindow) }, (_, i) => i * perWindow));
        expect(seen.reduce((n, w) => n + w.count, 0)).toBe(records);
        for (const w of seen) expect(Buffer.compare(w.bytes, mft.subarray(w.first * RS, (w.first + w.count) * RS))).toBe(0);
      }
    });
  }
});
