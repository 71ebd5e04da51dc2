/**
 * maintain's safety rules on real files: saved state, files open in another
 * process, locks held by another live vhdtool, two runs at once (in one
 * process and as two processes), and shards that split one tree.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { lockPathFor } from '../../src/io/lock.js';
import { openChain } from '../../src/chain/openChain.js';
import { compact } from '../../src/ops/compact.js';
import { maintain, type MaintainOptions } from '../../src/ops/maintain.js';
import type { ActionReport, MaintainReport } from '../../src/maintain/report.js';
import { writeSynthLayer } from '../../src/synth/build.js';
import { shardOf } from '../../src/maintain/shard.js';
import { content } from '../helpers/hash.js';
import { tempDir } from '../helpers/tmp.js';
import { buildStorage, modelOf, setSavedState, snapshotFiles, type Storage } from './fixture.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/vhdtool.js');
const RUN: MaintainOptions = { minReclaim: 0, maxDepth: 2, removeOrphans: true, threads: 0 };
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** A process that keeps `file` open (fd 3) until killed. */
async function holdOpen(file: string): Promise<ChildProcess> {
  const c = spawn('sh', ['-c', 'exec 3<"$1"; exec sleep 120', 'sh', file], { stdio: 'ignore' });
  children.push(c);
  const real = realpathSync(file);
  for (let i = 0; i < 200; i++) {
    try {
      if (readdirSync(`/proc/${c.pid}/fd`).some((fd) => { try { return readlinkSync(`/proc/${c.pid}/fd/${fd}`) === real; } catch { return false; } })) return c;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('holder did not open the file');
}

function sleeper(): ChildProcess {
  const c = spawn('sleep', ['120'], { stdio: 'ignore' });
  children.push(c);
  return c;
}

async function contentIntact(s: Storage): Promise<void> {
  for (const m of s.disks.values()) {
    if (!existsSync(m.path)) continue;
    expect(Buffer.from(await content(m.path)).equals(Buffer.from(modelOf(m))), m.path).toBe(true);
  }
}

/** Every surviving non-fixed disk has nothing left to reclaim, every chain is at most `n` deep. */
async function fullyMaintained(s: Storage, n: number): Promise<void> {
  for (const p of s.disks.keys()) {
    if (!existsSync(p)) continue;
    const r = await compact(p, { dryRun: true, threads: 0 }).catch((e) => (String(e).includes('fixed') ? null : Promise.reject(e)));
    if (r) expect(r.reclaimableBytes, p).toBe(0);
  }
  for (const leaf of s.leaves) {
    const c = await openChain(nodeFileSystem, leaf);
    expect(c.layersLeafFirst.length - 1, leaf).toBeLessThanOrEqual(n);
    await c.close();
  }
}

function noLeftovers(dir: string): void {
  const left: string[] = [];
  const walk = (p: string) => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(p, e.name));
      else if (/vhdtool\.lock|\.tmp$/.test(e.name)) left.push(path.join(p, e.name));
    }
  };
  walk(dir);
  expect(left).toEqual([]);
}

const key = (a: ActionReport) => `${a.action} ${a.disk} ${a.parent ?? ''}`;

function skipOf(r: MaintainReport, p: string) {
  return r.chains.flatMap((c) => c.disks).find((d) => d.path === p)?.skip ?? null;
}

describe('maintain: never touches what it must not', () => {
  it('an unused layer is deleted only if no disk under the roots names it as parent (excluded ones count)', async () => {
    const root = tempDir('vhdtool-maintain-orphan-');
    const s = await buildStorage(root, { only: ['deep'] });
    const [, l1, l2, l3, l4, l5, l6] = s.deep;
    // A disk in an excluded folder still depends on l3.
    mkdirSync(path.join(root, 'deep', 'keep'));
    const x = path.join(root, 'deep', 'keep', 'x.vhd');
    const l3m = s.disks.get(l3)!;
    const xl = { type: 'differencing' as const, virtualSize: l3m.layers[0].virtualSize, blockSize: l3m.layers[0].blockSize, writes: [] };
    await writeSynthLayer(nodeFileSystem, x, xl, { path: l3, uniqueId: l3m.uuid as never });
    const files = snapshotFiles(root);
    const r = await maintain([root], { ...RUN, exclude: ['keep'] });
    expect(r.exitCode).toBe(0);
    expect(existsSync(l4) || existsSync(l5)).toBe(false);
    for (const p of [l2, l3, x]) expect(snapshotFiles(path.dirname(p)).get(p), p).toBe(files.get(p));
    expect(skipOf(r, l3)).toMatchObject({ reason: 'still-referenced' });
    expect(skipOf(r, l3)!.message).toContain(x);
    const c = await openChain(nodeFileSystem, l6);
    expect(c.layersLeafFirst.map((l) => l.path)).toEqual([l6, l1, s.deep[0]]);
    await c.close();
    // x still reads what l3 showed.
    expect(Buffer.from(await content(x)).equals(Buffer.from(modelOf(l3m)))).toBe(true);
    await contentIntact(s);
  });

  it('disks in saved state are left byte for byte; the rest of their families is maintained', async () => {
    const root = tempDir('vhdtool-maintain-saved-');
    const s = await buildStorage(root, { only: ['golden', 'deep'] });
    const vm1 = path.join(root, 'golden', 'vm1.vhd');
    const l6 = s.deep[6];
    setSavedState(vm1);
    setSavedState(l6);
    const files = snapshotFiles(root);
    const r = await maintain([root], RUN);
    expect(r.exitCode).toBe(0);
    const after = snapshotFiles(root);
    expect(after.get(vm1)).toBe(files.get(vm1));
    expect(after.get(l6)).toBe(files.get(l6));
    expect(skipOf(r, vm1)?.reason).toBe('saved-state');
    expect(skipOf(r, l6)?.reason).toBe('saved-state');
    // The deep chain could not be shortened at its leaf, so nothing of it became unused.
    for (const p of s.deep) expect(existsSync(p), p).toBe(true);
    expect(r.summary.layersCoalesced).toBe(0);
    // vm2 (no saved state) was compacted.
    expect(r.chains.flatMap((c) => c.actions).map((a) => a.disk)).toContain(path.join(root, 'golden', 'vm2.vhd'));
    await contentIntact(s);
  });

  it('a disk open in another process is skipped (not an error); the next run, once closed, compacts it', async () => {
    const root = tempDir('vhdtool-maintain-inuse-');
    const s = await buildStorage(root, { only: ['golden'] });
    const vm2 = path.join(root, 'golden', 'vm2.vhd');
    const holder = await holdOpen(vm2);
    const files = snapshotFiles(root);
    const r = await maintain([root], RUN);
    expect(r.exitCode).toBe(0);
    expect(skipOf(r, vm2)).toMatchObject({ reason: 'in-use' });
    expect(skipOf(r, vm2)!.message).toContain(String(holder.pid));
    expect(snapshotFiles(root).get(vm2)).toBe(files.get(vm2));
    expect(r.chains.flatMap((c) => c.actions).some((a) => a.disk === vm2)).toBe(false);
    holder.kill('SIGKILL');
    await new Promise((res) => holder.once('exit', res));
    const r2 = await maintain([root], RUN);
    expect(r2.chains.flatMap((c) => c.actions).filter((a) => a.disk === vm2).map((a) => a.action)).toEqual(['compact']);
    await contentIntact(s);
    await fullyMaintained(s, 2);
  });

  it('a family locked by another live vhdtool is skipped whole; a stale lock (dead process) is broken', async () => {
    const root = tempDir('vhdtool-maintain-lock-');
    const s = await buildStorage(root, { only: ['golden', 'solo'] });
    const vm3 = path.join(root, 'golden', 'vm3.vhd');
    const other = sleeper();
    const lock = lockPathFor(realpathSync(vm3));
    writeFileSync(lock, `${other.pid} ${hostname()}\n`);
    const files = snapshotFiles(root);
    const r = await maintain([root], RUN);
    expect(r.exitCode).toBe(0);
    const golden = r.chains.find((c) => c.base.path.endsWith('golden.vhd'))!;
    expect(golden.status).toBe('skipped');
    expect(golden.skip?.reason).toBe('locked');
    expect(golden.skip?.message).toContain(String(other.pid));
    expect(golden.actions).toEqual([]);
    const after = snapshotFiles(root);
    for (const [f, h] of files) if (f.includes(`${path.sep}golden${path.sep}`)) expect(after.get(f), f).toBe(h);
    // The other family was maintained meanwhile.
    expect(r.chains.find((c) => c.base.path.endsWith('data.vhd'))!.actions.map((a) => a.action)).toEqual(['compact']);

    other.kill('SIGKILL');
    await new Promise((res) => other.once('exit', res));
    // The dead process also left a temporary beside a disk (a killed compaction).
    const temp = path.join(root, 'golden', `.vm3.vhd.vhdtool-${other.pid}-zz9.tmp`);
    writeFileSync(temp, 'partial');
    const r2 = await maintain([root], RUN);
    const g2 = r2.chains.find((c) => c.base.path.endsWith('golden.vhd'))!;
    expect(g2.status).toBe('ok');
    expect(g2.removedTemporaries).toEqual([temp]);
    expect(existsSync(temp)).toBe(false);
    expect(r2.summary.disksCompacted).toBeGreaterThan(0);
    noLeftovers(root);
    await contentIntact(s);
    await fullyMaintained(s, 2);
  });
});

/** Checks that two runs together did the planned work exactly once, and left everything correct. */
async function checkTwoRuns(s: Storage, plan: MaintainReport, runs: MaintainReport[], opts: MaintainOptions = RUN): Promise<void> {
  for (const r of runs) expect(r.exitCode, JSON.stringify(r.errors)).toBe(0);
  const done = runs.flatMap((r) => r.chains.flatMap((c) => c.actions));
  const planned = plan.chains.flatMap((c) => c.actions);
  const structural = (l: ActionReport[]) => l.filter((a) => a.action !== 'compact').map(key).sort();
  // Shortening and removal: exactly the plan, each once.
  expect(structural(done)).toEqual(structural(planned));
  // Compaction: no disk twice, and every planned one done.
  const compacted = done.filter((a) => a.action === 'compact').map((a) => a.disk);
  expect(new Set(compacted).size).toBe(compacted.length);
  for (const a of planned.filter((x) => x.action === 'compact')) expect(compacted, a.disk).toContain(a.disk);
  noLeftovers(s.root);
  await contentIntact(s);
  await fullyMaintained(s, 2);
  // Together they leave nothing for a third run.
  const again = await maintain([s.root], opts);
  expect(again.chains.flatMap((c) => c.actions)).toEqual([]);
}

describe('maintain: two runs at the same time', () => {
  it('in one process: no corruption, no work done twice', async () => {
    const root = tempDir('vhdtool-maintain-twice-');
    const s = await buildStorage(root, { prefix: 'a-' });
    const s2 = await buildStorage(root, { prefix: 'b-' });
    for (const [k, v] of s2.disks) s.disks.set(k, v);
    s.leaves.push(...s2.leaves);
    const plan = await maintain([root], { ...RUN, dryRun: true });
    const runs = await Promise.all([maintain([root], RUN), maintain([root], { ...RUN, concurrency: 3 })]);
    await checkTwoRuns(s, plan, runs);
  });

  it('a run whose discovery went stale (another run did the work meanwhile) does nothing twice', async () => {
    const root = tempDir('vhdtool-maintain-stale-');
    const s = await buildStorage(root, {});
    // Without --remove-orphans the layers stay, and only their headers tell that the family changed.
    const opts = { ...RUN, removeOrphans: false };
    const plan = await maintain([root], { ...opts, dryRun: true });
    let first: Promise<MaintainReport> | null = null;
    // The second run's first lock waits until the whole first run is over: all it discovered is stale.
    const fs: typeof nodeFileSystem = {
      ...nodeFileSystem,
      createExclusive: async (p, mode) => {
        if (p.endsWith('.vhdtool.lock')) await (first ??= maintain([root], opts));
        return nodeFileSystem.createExclusive(p, mode);
      },
    };
    const second = await maintain([root], { ...opts, fs });
    const runs = [await first!, second];
    expect(second.chains.flatMap((c) => c.actions)).toEqual([]);
    expect(second.chains.find((c) => c.base.path === s.deep[0])!.skip?.reason).toBe('changed-during-run');
    await checkTwoRuns(s, plan, runs, opts);
  });

  it('as two processes (two cron jobs): no corruption, no work done twice', async () => {
    const root = tempDir('vhdtool-maintain-procs-');
    const s = await buildStorage(root, { prefix: 'a-' });
    for (const p of ['b-', 'c-']) {
      const more = await buildStorage(root, { prefix: p });
      for (const [k, v] of more.disks) s.disks.set(k, v);
      s.leaves.push(...more.leaves);
    }
    const plan = await maintain([root], { ...RUN, dryRun: true });
    const run = () => new Promise<MaintainReport>((resolve, reject) => {
      const c = spawn(process.execPath, [BIN, 'maintain', root, '--min-reclaim', '0', '--max-depth', '2', '--remove-orphans', '--threads', '1', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(c);
      let out = '';
      let err = '';
      c.stdout!.on('data', (d) => { out += d; });
      c.stderr!.on('data', (d) => { err += d; });
      c.on('error', reject);
      c.on('exit', (code) => {
        try {
          const r = JSON.parse(out) as MaintainReport;
          expect(code, err).toBe(r.exitCode);
          resolve(r);
        } catch (e) {
          reject(new Error(`exit ${code}: ${err}\n${out.slice(0, 500)}: ${e}`));
        }
      });
    });
    const runs = await Promise.all([run(), run()]);
    await checkTwoRuns(s, plan, runs);
  });
});

describe('maintain --shard', () => {
  it('N shards split the families (and the unreadable files) with no overlap and nothing left over', async () => {
    const root = tempDir('vhdtool-maintain-shard-');
    const s = await buildStorage(root, { prefix: 'a-', broken: true });
    const more = await buildStorage(root, { prefix: 'b-' });
    for (const [k, v] of more.disks) s.disks.set(k, v);
    s.leaves.push(...more.leaves);
    const all = await maintain([root], { ...RUN, dryRun: true });
    const families = all.chains.map((c) => c.base.path).sort();
    expect(families.length).toBe(all.summary.chains);
    const seen: string[] = [];
    const unreadable: string[] = [];
    for (let k = 0; k < 3; k++) {
      const r = await maintain([root], { ...RUN, shard: { index: k, count: 3 } });
      expect(r.summary.chains).toBe(all.summary.chains);
      seen.push(...r.chains.map((c) => c.base.path));
      // Families go by the UUID of their base (broken ones: of the parent they miss).
      for (const c of r.chains) {
        expect(shardOf(c.key, 3)).toBe(k);
        if (c.status !== 'failed') expect(c.key).toBe(c.base.uuid);
      }
      unreadable.push(...r.unreadable.map((u) => u.path));
      // A shard's exit status reflects only its own families and files.
      expect(r.exitCode).toBe(r.errors.length ? 1 : 0);
    }
    expect(seen.sort()).toEqual(families);
    expect(unreadable.sort()).toEqual(all.unreadable.map((u) => u.path).sort());
    await contentIntact(s);
    // The shards together did everything: an unsharded run has nothing left to do.
    const after = await maintain([root], RUN);
    expect(after.chains.flatMap((c) => c.actions)).toEqual([]);
  });
});
