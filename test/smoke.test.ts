import { describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { nodeFileSystem } from '../src/io/fsys.js';
import { writeSynthChain, modelContent, type SynthLayer } from '../src/synth/build.js';
import { compact } from '../src/ops/compact.js';
import { content } from './helpers/hash.js';
import { tempDir } from './helpers/tmp.js';

describe('smoke: a generated chain compacts without changing its content', () => {
  it('drops a sector equal to the parent and keeps one that differs', async () => {
    const dir = tempDir();
    const a = new Uint8Array(512).fill(7);
    const b = new Uint8Array(512).fill(9);
    const layers: SynthLayer[] = [
      { type: 'dynamic', virtualSize: 8 << 20, blockSize: 2 << 20, writes: [{ sector: 10, data: a }] },
      { type: 'differencing', virtualSize: 8 << 20, blockSize: 2 << 20, writes: [{ sector: 10, data: a }, { sector: 11, data: b }] },
    ];
    const built = await writeSynthChain(nodeFileSystem, dir, layers);
    const child = built[1].path;
    const before = await content(child);
    expect(Buffer.from(before).equals(Buffer.from(modelContent(layers)))).toBe(true);
    const r = await compact(child, { threads: 0 });
    expect(r.sectors.sameAsParent).toBe(1);
    expect(r.sectors.kept).toBe(1);
    expect(r.changed).toBe(true);
    const after = await content(path.join(dir, 'child1.vhd'));
    expect(Buffer.from(after).equals(Buffer.from(before))).toBe(true);
  });
});
