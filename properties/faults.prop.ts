/**
 * Fault injection: every write vhdtool makes goes through a FileSystem, so a
 * FaultyFileSystem that fails the n-th write / fsync / rename / link / create
 * / truncate / close / unlink (with EIO, ENOSPC or EACCES; once or for good;
 * with a short write first or not) reaches every error path of the writers,
 * the atomic publisher and the lock.
 *
 * Property, over the operation, the fault and n: the operation either
 * succeeds (the fault missed, or hit a step whose failure is harmless) with a
 * correct result, or fails with a VhdToolError WRITE_FAILED (exit 7) naming a
 * file; either way every input is byte-identical, and nothing is left behind:
 * no temporary, no lock, no partial output.
 */
import { cpSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { VhdToolError } from '../src/errors.js';
import { FAULT_KINDS, FaultyFileSystem, type FaultCounter, type FaultErrno, type FaultPlan } from '../src/io/faulty.js';
import { nodeFileSystem } from '../src/io/fsys.js';
import { liveTemps } from '../src/io/atomic.js';
import { modelContent, writeSynthChain, type SynthLayer } from '../src/synth/build.js';
import { compact } from '../src/ops/compact.js';
import { coalesceInPlace, merge } from '../src/ops/merge.js';
import { content } from '../test/helpers/hash.js';
import { tempDir } from '../test/helpers/tmp.js';
import { patternBytes as pattern } from '../src/synth/random.js';

const RUNS = Number(process.env.VHDTOOL_FAULT_RUNS ?? 240);
const K = 1024;

/** 2 MiB disks in 256 KiB blocks: a base with data, a child with new data and copies of the base's. */
const parentData = pattern(768 * K, 1);
const LAYERS: SynthLayer[] = [
  { type: 'dynamic', virtualSize: 2048 * K, blockSize: 256 * K, writes: [{ sector: 0, data: parentData }] },
  {
    type: 'differencing', virtualSize: 2048 * K, blockSize: 256 * K, writes: [
      { sector: 0, data: parentData.subarray(0, 128 * K) }, // same as the parent: dropped by compact
      { sector: 256, data: pattern(64 * K, 2) },
      { sector: 1024, data: pattern(300 * K, 3) },
      { sector: 3000, data: parentData.subarray(200 * K, 264 * K).slice() }, // a copy elsewhere: kept
    ],
  },
];
const EXPECTED = Buffer.from(modelContent(LAYERS));

type Op = 'compact' | 'compact-out' | 'merge' | 'merge-force' | 'coalesce';
const OPS: Op[] = ['compact', 'compact-out', 'merge', 'merge-force', 'coalesce'];

let template = '';

async function runOp(op: Op, dir: string, fs: FaultyFileSystem): Promise<void> {
  const child = path.join(dir, 'child1.vhd');
  const base = path.join(dir, 'base.vhd');
  const out = path.join(dir, 'out.vhd');
  switch (op) {
    case 'compact': await compact(child, { fs, threads: 0 }); break;
    case 'compact-out': await compact(child, { fs, threads: 0, output: out }); break;
    case 'merge': await merge(child, base, out, { fs, threads: 0 }); break;
    case 'merge-force': await merge(child, base, out, { fs, threads: 0, force: true }); break;
    case 'coalesce': await coalesceInPlace(child, { fs, threads: 0 }); break;
  }
}

function prepare(op: Op): { dir: string; bytes: Map<string, Buffer> } {
  const dir = tempDir('vhdtool-fault-');
  cpSync(template, dir, { recursive: true });
  // merge --force replaces an existing OUT: give it an old one (a copy of the base) to protect.
  if (op === 'merge-force') cpSync(path.join(dir, 'base.vhd'), path.join(dir, 'out.vhd'));
  const bytes = new Map<string, Buffer>();
  for (const n of readdirSync(dir)) bytes.set(n, readFileSync(path.join(dir, n)));
  return { dir, bytes };
}

/** How many operations of each kind a clean run makes (so n can land on each of them). */
const COUNTS = new Map<Op, Record<FaultCounter, number>>();

/** Totals for the closing note. */
const tally = { runs: 0, injected: 0, failed: 0, succeeded: 0, absorbed: 0, bytesLost: 0 };

describe('fault injection (FaultyFileSystem)', () => {
  beforeAll(async () => {
    template = tempDir('vhdtool-fault-template-');
    await writeSynthChain(nodeFileSystem, template, LAYERS);
    for (const op of OPS) {
      const { dir } = prepare(op);
      const fs = new FaultyFileSystem(nodeFileSystem);
      await runOp(op, dir, fs);
      COUNTS.set(op, { ...fs.counts });
      const result = op === 'compact' || op === 'coalesce' ? path.join(dir, 'child1.vhd') : path.join(dir, 'out.vhd');
      expect(Buffer.from(await content(result)).equals(EXPECTED), `${op} without faults`).toBe(true);
    }
    // The scenarios really write: each makes several writes, an fsync and a publish.
    for (const [op, c] of COUNTS) {
      expect(c.write, op).toBeGreaterThan(3);
      expect(c.sync, op).toBeGreaterThan(0);
      expect(c.rename + c.link, op).toBeGreaterThan(0);
    }
  });

  it('a failing write, fsync, rename, link, create, truncate, close or unlink loses nothing and leaves nothing behind', async () => {
    const kinds: FaultCounter[] = [...FAULT_KINDS.filter((k) => k !== 'mkdir'), 'any'];
    const arb = fc.record({
      op: fc.constantFrom(...OPS),
      kind: fc.constantFrom(...kinds),
      n: fc.nat({ max: 10_000 }),
      errno: fc.constantFrom<FaultErrno>('EIO', 'ENOSPC', 'EACCES'),
      sticky: fc.boolean(),
      partial: fc.boolean(),
    });
    await fc.assert(fc.asyncProperty(arb, async ({ op, kind, n, errno, sticky, partial }) => {
      const total = COUNTS.get(op)![kind];
      fc.pre(total > 0); // e.g. an in-place compact makes no link
      // Land on every occurrence of the kind, and sometimes just past the last one (no fault).
      const at = 1 + (n % (total + 1));
      // A full disk stays full for writes; unlink and rename keep working (they free space).
      const plan: FaultPlan = { kind, at, errno, partial, sticky: sticky && ['write', 'sync', 'create', 'truncate'].includes(kind) };
      const { dir, bytes } = prepare(op);
      const fs = new FaultyFileSystem(nodeFileSystem, plan);
      let error: unknown = null;
      try {
        await runOp(op, dir, fs);
      } catch (e) {
        error = e;
      }
      tally.runs++;
      tally.injected += fs.injected.length;
      const where = `${op} ${JSON.stringify(plan)} injected=${JSON.stringify(fs.injected)} error=${error instanceof Error ? `${(error as VhdToolError).code} ${error.message}` : String(error)}`;
      expect(liveTemps.size, where).toBe(0);
      const names = readdirSync(dir).sort();
      const inPlace = op === 'compact' || op === 'coalesce';
      if (error !== null) {
        tally.failed++;
        expect(fs.injected.length, where).toBeGreaterThan(0);
        expect(error, where).toBeInstanceOf(VhdToolError);
        const err = error as VhdToolError;
        expect(err.code, where).toBe('WRITE_FAILED');
        expect(err.exitCode, where).toBe(7);
        expect(err.path, where).toBeDefined();
        expect(err.line.includes('\n'), where).toBe(false);
        // Nothing lost: every file as it was; nothing left: the same names.
        expect(names, where).toEqual([...bytes.keys()].sort());
        for (const [name, b] of bytes) {
          const now = readFileSync(path.join(dir, name));
          if (!now.equals(b)) tally.bytesLost += Math.max(b.length, 1);
          expect(now.equals(b), `${where}: ${name} changed`).toBe(true);
        }
      } else {
        tally.succeeded++;
        if (fs.injected.length > 0) tally.absorbed++;
        // Success: the parent untouched, the result complete, nothing else in the directory.
        expect(readFileSync(path.join(dir, 'base.vhd')).equals(bytes.get('base.vhd')!), where).toBe(true);
        const expectNames = inPlace ? ['base.vhd', 'child1.vhd'] : ['base.vhd', 'child1.vhd', 'out.vhd'];
        expect(names, where).toEqual(expectNames);
        if (!inPlace) expect(readFileSync(path.join(dir, 'child1.vhd')).equals(bytes.get('child1.vhd')!), where).toBe(true);
        const result = inPlace ? path.join(dir, 'child1.vhd') : path.join(dir, 'out.vhd');
        expect(Buffer.from(await content(result)).equals(EXPECTED), `${where}: result content`).toBe(true);
      }
    }), { numRuns: RUNS });
    // eslint-disable-next-line no-console
    console.log(`fault injection: ${tally.runs} runs, ${tally.injected} faults injected, ${tally.failed} clean failures, ${tally.succeeded} successes (${tally.absorbed} despite a fault: a retried unlink or a best-effort directory fsync), ${tally.bytesLost} bytes lost`);
    expect(tally.injected).toBeGreaterThan(tally.runs / 2);
    expect(tally.bytesLost).toBe(0);
  });

  it('every kind of operation the writers use can be failed (the wrapper really intercepts them)', () => {
    const seen = new Set<string>();
    for (const c of COUNTS.values()) for (const k of FAULT_KINDS) if (c[k] > 0) seen.add(k);
    for (const k of ['create', 'write', 'sync', 'truncate', 'close', 'rename', 'link', 'unlink', 'syncDir']) expect(seen.has(k), k).toBe(true);
    expect(existsSync(template)).toBe(true);
  });
});
