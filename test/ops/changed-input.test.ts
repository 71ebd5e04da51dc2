/**
 * A disk written by another process while vhdtool compacts it (a VM started
 * behind our back) must not be replaced: the writer's data would be lost.
 */
import { appendFileSync, readFileSync, readdirSync, renameSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem, type FileSystem } from '../../src/io/fsys.js';
import { writeSynthChain, type SynthLayer } from '../../src/synth/build.js';
import { compact } from '../../src/ops/compact.js';
import { merge } from '../../src/ops/merge.js';
import { compare } from '../../src/ops/compare.js';
import { VhdToolError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';

function layers(): SynthLayer[] {
  const a = new Uint8Array(64 * 1024).fill(3);
  return [
    { type: 'dynamic', virtualSize: 4 << 20, blockSize: 1 << 20, writes: [{ sector: 0, data: a }] },
    { type: 'differencing', virtualSize: 4 << 20, blockSize: 1 << 20, writes: [{ sector: 0, data: a }, { sector: 3000, data: new Uint8Array(512).fill(9) }] },
  ];
}

/** A file system that, when the temporary output is first fsynced, lets "someone else" append to `victim`. */
function meddling(victim: string): FileSystem {
  let done = false;
  return {
    ...nodeFileSystem,
    async createExclusive(p, mode) {
      const f = await nodeFileSystem.createExclusive(p, mode);
      return {
        ...f,
        path: f.path,
        read: f.read.bind(f), write: f.write.bind(f), writev: f.writev.bind(f), size: f.size.bind(f),
        truncate: f.truncate.bind(f), close: f.close.bind(f),
        async sync() {
          if (!done) {
            done = true;
            appendFileSync(victim, Buffer.alloc(512, 1));
          }
          return f.sync();
        },
      };
    },
  };
}

describe('inputs that change during a run', () => {
  it('compact in place refuses to replace a disk another process wrote to meanwhile, and keeps that write', async () => {
    const dir = tempDir();
    const [, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    const err = await compact(child.path, { threads: 0, fs: meddling(child.path) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VhdToolError);
    expect((err as VhdToolError).code).toBe('VERIFY_FAILED');
    expect((err as VhdToolError).path).toBe(child.path);
    const bytes = readFileSync(child.path);
    expect(bytes.subarray(bytes.length - 512).every((b) => b === 1)).toBe(true);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('merge refuses to publish when its parent changed during the run', async () => {
    const dir = tempDir();
    const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    const out = path.join(dir, 'out.vhd');
    const err = await merge(child.path, base.path, out, { threads: 0, fs: meddling(base.path) }).catch((e: unknown) => e);
    expect((err as VhdToolError).code).toBe('VERIFY_FAILED');
    expect(readdirSync(dir).sort()).toEqual(['base.vhd', 'child1.vhd']);
  });

  it('merge whose child is replaced mid-run by a compacted copy says the input changed, not that its output did not verify', async () => {
    const dir = tempDir();
    const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    // Same content, other layout: the blocks the merge read sit elsewhere in the new file.
    const other = path.join(dir, 'other.vhd');
    await compact(child.path, { threads: 0, output: other });
    let swapped = false;
    const progress = {
      start() {}, done() {},
      advance() { if (!swapped) { swapped = true; renameSync(other, child.path); } },
    };
    const out = path.join(dir, 'out.vhd');
    const err = await merge(child.path, base.path, out, { threads: 0, progress }).catch((e: unknown) => e);
    expect(swapped).toBe(true);
    expect(err).toBeInstanceOf(VhdToolError);
    expect((err as VhdToolError).code).toBe('VERIFY_FAILED');
    expect((err as VhdToolError).message).toMatch(/input changed while vhdtool ran/);
    expect(readdirSync(dir).sort()).toEqual(['base.vhd', 'child1.vhd']);
  });

  it('compare gives no verdict when an input changed while it read (exit 8, naming the file)', async () => {
    const dir = tempDir();
    const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers());
    // Unchanged inputs: a verdict.
    expect((await compare(child.path, child.path, { threads: 0 })).identical).toBe(true);
    let meddled = false;
    const progress = { start() {}, done() {}, advance() { if (!meddled) { meddled = true; appendFileSync(base.path, Buffer.alloc(512, 1)); } } };
    const err = await compare(child.path, child.path, { threads: 0, progress }).catch((e: unknown) => e);
    expect(meddled).toBe(true);
    expect(err).toBeInstanceOf(VhdToolError);
    expect((err as VhdToolError).code).toBe('VERIFY_FAILED');
    expect((err as VhdToolError).path).toBe(base.path);
    expect((err as VhdToolError).message).toMatch(/changed while vhdtool ran.*the comparison is void/);
  });
});
