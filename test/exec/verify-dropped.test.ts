/**
 * With a drop plan (compact --free-space), verification also proves that
 * every sector the compare kernel dropped as equal to the parent really is:
 * a kernel that claims too much is caught before anything is published.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { compact } from '../../src/ops/compact.js';
import { createRunner, type TaskRunner } from '../../src/parallel/pool.js';
import type { CompareResult, WorkerTask } from '../../src/plan/tasks.js';
import { VhdToolError } from '../../src/errors.js';
import { maskRuns } from '../../src/exec/verify.js';
import { tempDir } from '../helpers/tmp.js';

function layers(): SynthLayer[] {
  const d = new Uint8Array(256 * 1024).map((_, i) => (i * 13 + 5) & 255);
  const e = d.slice(); e[1000] ^= 1; e[70000] ^= 1;
  return [
    { type: 'dynamic', virtualSize: 4 << 20, blockSize: 512 * 1024, writes: [{ sector: 0, data: d }] },
    { type: 'differencing', virtualSize: 4 << 20, blockSize: 512 * 1024, writes: [{ sector: 0, data: e }, { sector: 3000, data: d.subarray(0, 4096) }] },
  ];
}

/** A runner whose compare results claim every source sector equal to the parent. */
function lyingRunner(): TaskRunner {
  const inner = createRunner({ threads: 0, slotBytes: 512 * 1024 });
  return {
    ...inner,
    run: async <T>(task: WorkerTask): Promise<T> => {
      const r = await inner.run<T>(task);
      if (task.kind !== 'compare') return r;
      const c = r as unknown as CompareResult;
      return { ...c, drop: new Uint8Array(c.drop.length).fill(0xff), kept: 0, sameAsParent: c.sameAsParent + c.kept } as unknown as T;
    },
  };
}

describe('verification of the sectors the kernel drops (compact --free-space)', () => {
  it('catches sectors dropped as equal to the parent that differ from it; nothing is replaced', async () => {
    const dir = tempDir();
    const [, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    const before = readFileSync(child.path);
    const runner = lyingRunner();
    try {
      const e = await compact(child.path, { freeSpace: true, runner }).then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(VhdToolError);
      expect((e as VhdToolError).code).toBe('VERIFY_FAILED');
      expect((e as VhdToolError).message).toMatch(/sector \d+ was dropped as equal to the parent, but differs from it/);
    } finally {
      await runner.close();
    }
    expect(readFileSync(child.path).equals(before)).toBe(true);
  });

  it('maskRuns keeps exactly the picked sectors of the runs, the rest as skipped stretches', () => {
    // Runs: sectors 0-9 from file 0 at byte 1000, 10-15 zeros, 16-19 from file 1 at byte 0.
    const runs = [0, 10, 0, 1000, 10, 6, -1, 0, 16, 4, 1, 0];
    const pick = new Uint8Array(3);
    for (const s of [2, 3, 4, 11, 17]) pick[s >>> 3] |= 0x80 >>> (s & 7);
    expect(maskRuns(runs, 20, pick)).toEqual([
      0, 2, -1, 0,
      2, 3, 0, 1000 + 2 * 512,
      5, 6, -1, 0,
      11, 1, -1, 0,
      12, 5, -1, 0,
      17, 1, 1, 512,
      18, 2, -1, 0,
    ]);
  });
});
