/**
 * maintain over a real storage tree: several healthy families of different
 * shapes, a deep chain, a child whose parent is missing, one whose parent is
 * another disk, one whose parent is corrupt, a corrupt disk and a file that is
 * not a VHD. Expectations come from the layer descriptions (modelContent) and
 * from compact's exact dry-run figure measured before the run, never from the
 * run's own report.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openChain } from '../../src/chain/openChain.js';
import { compact } from '../../src/ops/compact.js';
import { maintain } from '../../src/ops/maintain.js';
import { main } from '../../src/cli/main.js';
import { METRIC_NAMES } from '../../src/maintain/metrics.js';
import type { MaintainReport } from '../../src/maintain/report.js';
import { content } from '../helpers/hash.js';
import { tempDir } from '../helpers/tmp.js';
import { buildStorage, modelOf, parsePrometheus, sha256File, snapshotFiles, type Storage } from './fixture.js';

const OPTS = ['--min-reclaim', '0', '--max-depth', '2', '--remove-orphans', '--threads', '0'];

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'vhdtool', ...args], { out: (l) => out.push(l), err: (l) => err.push(l), tty: false });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** compact's exact dry-run figure for every healthy non-fixed disk. */
async function reclaimable(s: Storage): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const p of s.disks.keys()) {
    const r = await compact(p, { dryRun: true, threads: 0 }).catch(() => null);
    if (r) m.set(p, r.reclaimableBytes);
  }
  return m;
}

function leftovers(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string) => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const f = path.join(p, e.name);
      if (e.isDirectory()) walk(f);
      else if (/\.vhdtool\.lock|\.vhdtool-\d+-[0-9a-z]+\.tmp$/.test(e.name)) out.push(f);
    }
  };
  walk(dir);
  return out;
}

describe('maintain: a storage tree with healthy, deep and broken chains', () => {
  let s: Storage;
  let before: Map<string, number>;
  let files0: Map<string, string>;
  let brokenSha: Map<string, string>;
  const out = tempDir('vhdtool-maintain-out-');
  const reportFile = path.join(out, 'report.json');
  const metricsFile = path.join(out, 'vhdtool.prom');

  beforeAll(async () => {
    s = await buildStorage(tempDir('vhdtool-maintain-'), { broken: true });
    // The synthesizer and the model agree before anything runs.
    for (const m of s.disks.values()) {
      expect(Buffer.from(await content(m.path)).equals(Buffer.from(modelOf(m))), m.path).toBe(true);
    }
    before = await reclaimable(s);
    files0 = snapshotFiles(s.root);
    brokenSha = new Map(s.broken.map((f) => [f, sha256File(f)]));
  });

  it('a dry run writes nothing, takes no lock, and plans the work the real run does', async () => {
    const r = await maintain([s.root], { dryRun: true, minReclaim: 0, maxDepth: 2, removeOrphans: true, threads: 0 });
    expect(snapshotFiles(s.root)).toEqual(files0);
    expect(leftovers(s.root)).toEqual([]);
    expect(r.exitCode).toBe(1);
    const planned = r.chains.flatMap((c) => c.actions);
    expect(planned.every((a) => a.dryRun)).toBe(true);
    const [base, l1, l2, l3, l4, l5, l6] = s.deep;
    void base; void l1;
    expect(planned.filter((a) => a.action === 'coalesce').map((a) => [a.disk, a.parent])).toEqual([[l6, l5], [l6, l4], [l6, l3], [l6, l2]]);
    expect(planned.filter((a) => a.action === 'remove-orphan').map((a) => a.disk).sort()).toEqual([l2, l3, l4, l5].sort());
    // Every disk the dry-run figure says can shrink is planned, with that figure, except the deep leaf (rewritten by coalescing).
    const expectCompact = [...before].filter(([p, n]) => n > 0 && !s.deep.includes(p));
    const plannedCompact = new Map(planned.filter((a) => a.action === 'compact').map((a) => [a.disk, a.reclaimedBytes]));
    expect(new Map(expectCompact)).toEqual(plannedCompact);
    expect(r.summary.bytesReclaimable).toBe(expectCompact.reduce((n, [, b]) => n + b, 0));
    expect(r.summary.bytesReclaimed).toBe(0);
  });

  let report: MaintainReport;

  it('the run: exit 1 for the broken files, a valid report and metrics', async () => {
    const { code, out: stdout, err } = await cli(['maintain', s.root, ...OPTS, '--json', '--report', reportFile, '--metrics', metricsFile]);
    expect(code).toBe(1);
    expect(err).toBe('');
    report = JSON.parse(stdout) as MaintainReport;
    // --json and --report carry the same object.
    expect(JSON.parse(readFileSync(reportFile, 'utf8'))).toEqual(report);
    expect(report.exitCode).toBe(1);
    expect(report.status).toBe('errors');
    expect(report.fatal).toBeNull();

    // Every broken file is reported with the right code, and nothing else is an error.
    const errs = new Map(report.errors.map((e) => [e.path, e.code]));
    const b = (...p: string[]) => path.join(s.root, 'broken', ...p);
    expect(errs).toEqual(new Map([
      [b('missing', 'child.vhd'), 'PARENT_NOT_FOUND'],
      [b('mismatch', 'child.vhd'), 'PARENT_MISMATCH'],
      [b('cparent', 'child.vhd'), 'PARENT_NOT_FOUND'],
      [b('cparent', 'base.vhd'), 'BAD_CHECKSUM'],
      [b('corrupt.vhd'), 'BAD_CHECKSUM'],
      [b('garbage.vhd'), 'BAD_FORMAT'],
    ]));
    expect(report.unreadable.map((u) => u.path).sort()).toEqual([b('cparent', 'base.vhd'), b('corrupt.vhd'), b('garbage.vhd')].sort());
    const failed = report.chains.filter((c) => c.status === 'failed').map((c) => c.base.path).sort();
    expect(failed).toEqual([b('cparent', 'child.vhd'), b('mismatch', 'child.vhd'), b('missing', 'child.vhd')].sort());
    // Families: golden, solo, fixed, deep, mismatch/base.vhd, and the three broken ones.
    expect(report.summary.chains).toBe(8);
    expect(report.summary.disksFound).toBe(s.disks.size + 3 /* broken children */ + 3 /* unreadable */);

    // Metrics: valid exposition, the names the issue asks for, values that agree with the report.
    const m = parsePrometheus(readFileSync(metricsFile, 'utf8'));
    const v = (name: string, extra = '') => m.get(`${name}{shard="0/1"${extra}}`);
    expect(v(METRIC_NAMES.reclaimed)).toBe(report.summary.bytesReclaimed);
    expect(v(METRIC_NAMES.compacted)).toBe(report.summary.disksCompacted);
    expect(v(METRIC_NAMES.shortened)).toBe(1);
    expect(v(METRIC_NAMES.errors)).toBe(6);
    expect(v(METRIC_NAMES.exitCode)).toBe(1);
    expect(v(METRIC_NAMES.duration)).toBeGreaterThan(0);
    expect(v(METRIC_NAMES.lastSuccess)).toBe(0);
    expect(v(METRIC_NAMES.chains, ',status="failed"')).toBe(3);
    for (const name of m.keys()) expect(name.startsWith('vhdtool_')).toBe(true);
    expect(leftovers(s.root)).toEqual([]);
    expect(readdirSync(out).sort()).toEqual(['report.json', 'vhdtool.prom']);
  });

  it('every disk keeps its guest content; broken files and untouched parents are byte-identical', async () => {
    const removed = new Set(s.deep.slice(2, 6));
    for (const m of s.disks.values()) {
      if (removed.has(m.path)) {
        expect(existsSync(m.path), m.path).toBe(false);
        continue;
      }
      expect(Buffer.from(await content(m.path)).equals(Buffer.from(modelOf(m))), m.path).toBe(true);
    }
    for (const [f, h] of brokenSha) expect(sha256File(f), f).toBe(h);
    for (const f of s.broken) expect(snapshotFiles(path.dirname(f)).get(f)).toBe(files0.get(f));
    // A disk with nothing to reclaim that was not coalesced is the very same file: parents are never written.
    for (const [p, n] of before) {
      if (n === 0 && p !== s.deep[6] && !removed.has(p)) expect(snapshotFiles(path.dirname(p)).get(p), p).toBe(files0.get(p));
    }
  });

  it('compaction is complete, and each disk shrank by exactly its dry-run figure', async () => {
    const after = await reclaimable(s);
    for (const [p, n] of after) expect(n, p).toBe(0);
    const compacted = new Map(report.chains.flatMap((c) => c.actions).filter((a) => a.action === 'compact').map((a) => [a.disk, a]));
    for (const [p, n] of before) {
      if (s.deep.includes(p) || n === 0) continue;
      const size0 = Number(files0.get(p)!.split(' ')[1]);
      expect(statSync(p).size, p).toBe(size0 - n);
      expect(compacted.get(p)?.reclaimedBytes, p).toBe(n);
    }
    expect(report.summary.bytesReclaimed).toBe([...compacted.values()].reduce((t, a) => t + a.reclaimedBytes!, 0));
  });

  it('the deep chain is shortened at the leaf, which keeps its path and UUID', async () => {
    const leaf = s.deep[6];
    const chain = await openChain(nodeFileSystem, leaf);
    try {
      const layers = chain.layersLeafFirst;
      expect(layers.map((l) => l.realPath)).toEqual([leaf, s.deep[1], s.deep[0]]);
      expect(layers[0].meta.footer.uniqueId).toBe(s.disks.get(leaf)!.uuid);
    } finally {
      await chain.close();
    }
    const fam = report.chains.find((c) => c.base.path === s.deep[0])!;
    expect(fam.chains).toEqual([[leaf, s.deep[1], s.deep[0]]]);
    expect(fam.disks.filter((d) => d.removed).map((d) => d.path).sort()).toEqual(s.deep.slice(2, 6).sort());
    // The golden family (depth 2 at most) was not shortened.
    const golden = report.chains.find((c) => c.base.path.endsWith('golden.vhd'))!;
    expect(golden.actions.some((a) => a.action !== 'compact')).toBe(false);
  });

  it('a second run changes nothing', async () => {
    const files1 = snapshotFiles(s.root);
    const r = await maintain([s.root], { minReclaim: 0, maxDepth: 2, removeOrphans: true, threads: 0 });
    expect(snapshotFiles(s.root)).toEqual(files1);
    expect(r.chains.flatMap((c) => c.actions)).toEqual([]);
    expect(r.exitCode).toBe(1);
    expect(r.errors.map((e) => e.path).sort()).toEqual(report.errors.map((e) => e.path).sort());
  });
});

describe('maintain: exit status and metrics over time', () => {
  it('0 when healthy (last success set), 1 after a disk breaks (last success kept), fatal codes', async () => {
    const root = tempDir('vhdtool-maintain-exit-');
    const s = await buildStorage(root, { only: ['golden', 'solo'] });
    const metrics = path.join(tempDir(), 'm.prom');
    const r1 = await maintain([root], { minReclaim: 0, threads: 0, metricsFile: metrics });
    expect(r1.exitCode).toBe(0);
    expect(r1.status).toBe('healthy');
    expect(r1.summary.disksCompacted).toBeGreaterThan(0);
    const m1 = parsePrometheus(readFileSync(metrics, 'utf8'));
    const last1 = m1.get(`${METRIC_NAMES.lastSuccess}{shard="0/1"}`)!;
    expect(last1).toBe(Math.floor(Date.parse(r1.finishedAt) / 1000));

    const { corruptHeader } = await import('./fixture.js');
    corruptHeader(path.join(root, 'solo', 'data.vhd'));
    await new Promise((r) => setTimeout(r, 1100));
    const r2 = await maintain([root], { minReclaim: 0, threads: 0, metricsFile: metrics });
    expect(r2.exitCode).toBe(1);
    const m2 = parsePrometheus(readFileSync(metrics, 'utf8'));
    expect(m2.get(`${METRIC_NAMES.lastSuccess}{shard="0/1"}`)).toBe(last1);
    expect(m2.get(`${METRIC_NAMES.lastRun}{shard="0/1"}`)).toBeGreaterThan(last1);
    expect(m2.get(`${METRIC_NAMES.exitCode}{shard="0/1"}`)).toBe(1);
    void s;

    // Fatal: a root that does not exist (storage not mounted?) is the error's own code, and still reported.
    const rep = path.join(tempDir(), 'r.json');
    const gone = path.join(root, 'no-such-folder');
    const f = await cli(['maintain', gone, '--report', rep, '--threads', '0']);
    expect(f.code).toBe(3);
    expect(f.err).toContain(gone);
    const fr = JSON.parse(readFileSync(rep, 'utf8')) as MaintainReport;
    expect(fr.status).toBe('fatal');
    expect(fr.fatal?.code).toBe('NOT_FOUND');
    expect(fr.exitCode).toBe(3);

    // Usage errors: exit 2.
    expect((await cli(['maintain', root, '--shard', '2/2'])).code).toBe(2);
    expect((await cli(['maintain', root, '--max-depth', '-1'])).code).toBe(2);
    expect((await cli(['maintain', root, '--min-reclaim', 'lots'])).code).toBe(2);
    expect((await cli(['maintain'])).code).toBe(2);
  });

  it('the default threshold skips small disks without reading them, with a true upper bound', async () => {
    const root = tempDir('vhdtool-maintain-default-');
    const s = await buildStorage(root, { only: ['golden', 'solo', 'fixed'] });
    const exact = await reclaimable(s);
    const files = snapshotFiles(root);
    const { code, out } = await cli(['maintain', root, '--threads', '0', '--json']);
    expect(code).toBe(0);
    const r = JSON.parse(out) as MaintainReport;
    expect(r.options.minReclaim).toBe(64 * 1024 * 1024);
    expect(snapshotFiles(root)).toEqual(files);
    expect(r.summary.disksCompacted).toBe(0);
    for (const d of r.chains.flatMap((c) => c.disks)) {
      if (d.type === 'fixed') continue;
      expect(d.reclaimableBytes, d.path).toBeNull();
      expect(d.reclaimableAtMost!, d.path).toBeGreaterThanOrEqual(exact.get(d.path)!);
      expect(d.reclaimableAtMost!, d.path).toBeLessThan(64 * 1024 * 1024);
    }
    // The human summary is the default output.
    const h = await cli(['maintain', root, '--threads', '0', '--min-reclaim', '1M']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/^vhdtool maintain: 8 disk files in 3 chain families/m);
    expect(h.out).toMatch(/reclaimed 0 B from 0 disks; 0 errors; .* exit 0$/);
  });

  it('--max-depth 0 makes every leaf standalone; the base stays, the unused layer goes', async () => {
    const root = tempDir('vhdtool-maintain-d0-');
    const s = await buildStorage(root, { only: ['golden'] });
    const g = (n: string) => path.join(root, 'golden', n);
    const r = await maintain([root], { minReclaim: 0, maxDepth: 0, removeOrphans: true, threads: 0 });
    expect(r.exitCode).toBe(0);
    expect(existsSync(g('vm3.vhd'))).toBe(false);
    expect(existsSync(g('golden.vhd'))).toBe(true);
    for (const leaf of ['vm1.vhd', 'vm2.vhd', 'vm3-snap.avhd']) {
      const c = await openChain(nodeFileSystem, g(leaf));
      expect(c.layersLeafFirst.map((l) => l.meta.type)).toEqual(['dynamic']);
      expect(c.layersLeafFirst[0].meta.footer.uniqueId).toBe(s.disks.get(g(leaf))!.uuid);
      await c.close();
    }
    for (const m of s.disks.values()) if (existsSync(m.path)) expect(Buffer.from(await content(m.path)).equals(Buffer.from(modelOf(m))), m.path).toBe(true);
    const files = snapshotFiles(root);
    const again = await maintain([root], { minReclaim: 0, maxDepth: 0, removeOrphans: true, threads: 0 });
    expect(again.chains.flatMap((c) => c.actions)).toEqual([]);
    expect(snapshotFiles(root)).toEqual(files);
  });

  it('--min-reclaim: exactly the disks whose dry-run figure reaches it are compacted', async () => {
    const root = tempDir('vhdtool-maintain-min-');
    const s = await buildStorage(root, { only: ['golden', 'solo', 'fixed'] });
    const exact = await reclaimable(s);
    const figures = [...new Set(exact.values())].filter((n) => n > 0).sort((a, b) => a - b);
    expect(figures.length).toBeGreaterThan(1);
    // Between the smallest and the next figure: some disks reach it, some do not.
    const min = figures[0] + 1;
    const r = await maintain([root], { minReclaim: min, threads: 0 });
    const compacted = r.chains.flatMap((c) => c.actions).filter((a) => a.action === 'compact').map((a) => a.disk).sort();
    expect(compacted).toEqual([...exact].filter(([, n]) => n >= min).map(([p]) => p).sort());
    expect(compacted.length).toBeGreaterThan(0);
    // Those below it were measured (their bound was above the threshold) and left as they were.
    const below = r.chains.flatMap((c) => c.disks).filter((d) => d.reclaimableBytes !== null && d.reclaimableBytes > 0 && d.reclaimableBytes < min);
    expect(below.length).toBeGreaterThan(0);
    for (const d of below) expect(d.changed).toBe(false);
  });

  it.each([
    // deep/ is done first and has 3 disks left after shortening: abort inside it, or right after it.
    [2, ['interrupted', 'interrupted', 'interrupted']],
    [3, ['ok', 'interrupted', 'interrupted']],
  ])('an interrupt (after %i disks) stops the run: exit 130, the rest skipped, every disk intact, nothing left behind', async (abortAt, statuses) => {
    const root = tempDir('vhdtool-maintain-int-');
    const s = await buildStorage(root, { only: ['deep', 'golden', 'solo'] });
    const ac = new AbortController();
    let advanced = 0;
    const progress = { start() {}, advance() { if (++advanced === abortAt) ac.abort(); }, done() {} };
    const r = await maintain([root], { minReclaim: 0, maxDepth: 2, removeOrphans: true, threads: 0, concurrency: 1, signal: ac.signal, progress });
    expect(r.exitCode).toBe(130);
    expect(r.fatal?.code).toBe('INTERRUPTED');
    expect(r.chains.map((c) => c.skip?.reason ?? c.status)).toEqual(statuses);
    expect(leftovers(root)).toEqual([]);
    for (const m of s.disks.values()) {
      if (existsSync(m.path)) expect(Buffer.from(await content(m.path)).equals(Buffer.from(modelOf(m))), m.path).toBe(true);
    }
    // The next run finishes the job.
    const r2 = await maintain([root], { minReclaim: 0, maxDepth: 2, removeOrphans: true, threads: 0 });
    expect(r2.exitCode).toBe(0);
    expect(r2.summary.disksCompacted).toBeGreaterThan(0);
  });
});
