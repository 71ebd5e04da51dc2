/**
 * A layer smaller than its child reads zeros past its end, hiding its own
 * parent's data there. Merging through such a layer must keep those zeros.
 * (Found by the merge property: a coalesced output once let the base's data
 * show through.)
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { modelContent, writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { merge } from '../../src/ops/merge.js';
import { compact } from '../../src/ops/compact.js';
import { content } from '../helpers/hash.js';
import { tempDir } from '../helpers/tmp.js';

describe('a smaller middle layer', () => {
  it('merging the child with it keeps the zeros it shows past its end', async () => {
    const data = new Uint8Array(33 * 512).map((_, i) => (i * 7 + 1) & 255);
    const layers: SynthLayer[] = [
      { type: 'dynamic', virtualSize: 20480, blockSize: 4096, writes: [{ sector: 0, data }] },
      { type: 'differencing', virtualSize: 2560, blockSize: 4096, writes: [] },
      { type: 'differencing', virtualSize: 8192, blockSize: 4096, writes: [] },
    ];
    const dir = tempDir();
    const [base, c1, c2] = (await writeSynthChain(nodeFileSystem, dir, layers, ['base.vhd', 'c1.vhd', 'c2.vhd'])).map((b) => b.path);
    const want = Buffer.from(modelContent(layers));
    // Sectors 5..15 read zero through c1 although the base holds data there.
    expect(want.subarray(2560, 8192).every((b) => b === 0)).toBe(true);
    const m12 = path.join(dir, 'm12.vhd');
    await merge(c2, c1, m12, { threads: 0 });
    expect(Buffer.from(await content(m12)).equals(want)).toBe(true);
    const all = path.join(dir, 'all.vhd');
    await merge(m12, base, all, { threads: 0 });
    expect(Buffer.from(await content(all)).equals(want)).toBe(true);
    await compact(m12, { threads: 0 });
    expect(Buffer.from(await content(m12)).equals(want)).toBe(true);
  });
});
