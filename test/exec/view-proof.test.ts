/**
 * compareViews, the last step of rebase's proof: it must find a difference
 * wherever one lies (to the byte), except in the sectors it is told to leave
 * to the write-time check (the first chain's own stored sectors), and read
 * zeros where a side is null.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openChain } from '../../src/chain/openChain.js';
import { compareViews } from '../../src/exec/viewProof.js';
import { createRunner } from '../../src/parallel/pool.js';
import { modelContent, writeSynthChain, writeSynthLayer, type SynthLayer } from '../../src/synth/build.js';
import { patternBytes } from '../../src/synth/random.js';
import { tempDir } from '../helpers/tmp.js';

const S = 512;
const SIZE = 1024 * 1024;

describe('compareViews', () => {
  for (const threads of [0, 2]) {
    it(`finds the first differing byte, skips masked sectors, treats a null side as zeros (threads ${threads})`, async () => {
      const dir = tempDir();
      const layers: SynthLayer[] = [
        { type: 'dynamic', virtualSize: SIZE, blockSize: 64 * 1024, writes: [{ sector: 0, data: patternBytes(256 * 1024, 1) }] },
        { type: 'differencing', virtualSize: SIZE, blockSize: 64 * 1024, writes: [{ sector: 40, data: patternBytes(8 * S, 2) }, { sector: 1500, data: patternBytes(S, 3) }] },
      ];
      await writeSynthChain(nodeFileSystem, dir, layers, ['base.vhd', 'child.vhd']);
      const view = modelContent(layers);
      // B: the same view, but byte 100 of sector 42 (stored in A's leaf) and byte 7 of sector 300 (A's base) differ.
      const other = view.slice();
      other[42 * S + 100] ^= 1;
      other[300 * S + 7] ^= 1;
      await writeSynthLayer(nodeFileSystem, path.join(dir, 'b.vhd'), { type: 'fixed', virtualSize: SIZE, writes: [{ sector: 0, data: other }] }, null);
      const a = await openChain(nodeFileSystem, path.join(dir, 'child.vhd'));
      const b = await openChain(nodeFileSystem, path.join(dir, 'b.vhd'));
      const runner = createRunner({ threads, slotBytes: 64 * 1024 });
      try {
        const all = { first: 0, end: SIZE / S };
        expect((await compareViews(runner, a, b, all)).difference).toBe(42 * S + 100);
        const masked = await compareViews(runner, a, b, { ...all, maskLeafOfA: true });
        expect(masked.difference).toBe(300 * S + 7);
        expect(masked.bytesChecked).toBe(SIZE - 9 * S); // B is fixed: read everywhere but where A's leaf stores its 9 sectors
        expect((await compareViews(runner, a, b, { first: 301, end: SIZE / S })).difference).toBeNull();
        // A chain against itself: every stretch is the same file at the same offset, nothing is read.
        expect(await compareViews(runner, a, a, all)).toEqual({ difference: null, bytesChecked: 0 });
        // Against zeros: the first non-zero byte of the view, from `first` on.
        const firstNonZero = (from: number) => view.findIndex((x, i) => i >= from * S && x !== 0);
        expect((await compareViews(runner, a, null, all)).difference).toBe(firstNonZero(0));
        expect((await compareViews(runner, a, null, { first: 600, end: SIZE / S })).difference).toBe(firstNonZero(1500));
        expect((await compareViews(runner, a, null, { first: 1501, end: SIZE / S })).difference).toBeNull();
        // Against zeros, only what A's files hold is read: the base's 512 sectors and the child's sector 1500.
        expect((await compareViews(runner, a, null, all)).bytesChecked).toBe(513 * S);
        expect((await compareViews(runner, a, null, { ...all, maskLeafOfA: true })).bytesChecked).toBe((512 - 8) * S);
      } finally {
        await a.close();
        await b.close();
        await runner.close();
      }
    });
  }
});
