/**
 * A disk compacted in place keeps its content and identity, and so its
 * times: the parent time stamp its children recorded stays true, and a later
 * relink of a child to it passes the time check without --force.
 */
import { statSync, utimesSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compact } from '../../src/ops/compact.js';
import { relink } from '../../src/ops/relink.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { contentHash } from '../helpers/hash.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const data = (seed: number, sectors: number) => Uint8Array.from({ length: sectors * 512 }, (_, i) => (i * 31 + seed) & 0xff);

describe('compact in place keeps the disk\'s times', () => {
  it('a compacted middle layer keeps its mtime, so its child\'s recorded parent time stamp still matches', async () => {
    const dir = tempDir();
    const base = data(1, 2048);
    const layers: SynthLayer[] = [
      { type: 'dynamic', virtualSize: 8 * MiB, writes: [{ sector: 0, data: base }] },
      // The middle layer repeats what the base holds (reclaimable) and adds a little of its own.
      { type: 'differencing', virtualSize: 8 * MiB, writes: [{ sector: 0, data: base }, { sector: 4096, data: data(2, 64) }] },
      { type: 'differencing', virtualSize: 8 * MiB, writes: [{ sector: 8192, data: data(3, 64) }] },
    ];
    const [, mid, leaf] = await writeSynthChain(nodeFileSystem, dir, layers, ['base.vhd', 'mid.vhd', 'leaf.vhd']);
    const past = new Date('2025-01-02T03:04:05Z');
    utimesSync(mid.path, past, past);
    const before = statSync(mid.path);
    const hash = await contentHash(leaf.path);
    const r = await compact(mid.path, { threads: 0 });
    expect(r.changed).toBe(true);
    const after = statSync(mid.path);
    expect(after.ino).not.toBe(before.ino);
    expect(after.size).toBeLessThan(before.size);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(await contentHash(leaf.path)).toBe(hash);
    const rl = await relink(leaf.path, { parent: mid.path, dryRun: true, threads: 0 });
    expect(rl.proof.checks.find((c) => c.name === 'parent-time')?.status).not.toBe('failed');
    void path;
  });

  it('compact --output writes a new file with its own times', async () => {
    const dir = tempDir();
    const base = data(1, 2048);
    const [, child] = await writeSynthChain(nodeFileSystem, dir, [
      { type: 'dynamic', virtualSize: 8 * MiB, writes: [{ sector: 0, data: base }] },
      { type: 'differencing', virtualSize: 8 * MiB, writes: [{ sector: 0, data: base }] },
    ]);
    const past = new Date('2025-01-02T03:04:05Z');
    utimesSync(child.path, past, past);
    const out = path.join(dir, 'out.vhd');
    await compact(child.path, { output: out, threads: 0 });
    expect(statSync(out).mtimeMs).toBeGreaterThan(past.getTime());
  });
});
