/** The pure parts of maintain: globs, shards, the forest, the report's exit status, metrics, lanes. */
import { createHash, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { globToRegExp, makeExcluder } from '../../src/maintain/glob.js';
import { inShard, parseShard, shardOf } from '../../src/maintain/shard.js';
import { ancestorsOf, buildForest, depthOf, heightOf, leavesOf, relinkToGrandparent, type Tree } from '../../src/maintain/forest.js';
import type { DiskInfo, UnreadableFile } from '../../src/maintain/types.js';
import type { Uuid } from '../../src/format/index.js';
import { finalize, type ChainReport, type MaintainReport } from '../../src/maintain/report.js';
import { lastSuccessFrom, renderMetrics } from '../../src/maintain/metrics.js';
import { LanePool, laneView } from '../../src/maintain/lanes.js';
import type { TaskRunner } from '../../src/parallel/pool.js';
import type { WorkerTask } from '../../src/plan/tasks.js';
import { parsePrometheus } from './fixture.js';

describe('glob', () => {
  it('matches like a shell glob, ** across folders', () => {
    const cases: Array<[string, string, boolean]> = [
      ['*.avhd', 'snap.avhd', true], ['*.avhd', 'a/snap.avhd', false], ['*.avhd', 'snap.vhd', false],
      ['a/**', 'a/b/c.vhd', true], ['a/**', 'a/', true], ['a/**', 'ab/c', false],
      ['**/old/*.vhd', 'old/x.vhd', true], ['**/old/*.vhd', 'p/q/old/x.vhd', true], ['**/old/*.vhd', 'p/old/q/x.vhd', false],
      ['vm?.vhd', 'vm1.vhd', true], ['vm?.vhd', 'vm10.vhd', false], ['vm[0-2].vhd', 'vm2.vhd', true], ['vm[!0-2].vhd', 'vm2.vhd', false],
      ['a.b(c)+.vhd', 'a.b(c)+.vhd', true], ['a.b(c)+.vhd', 'axb(c)+.vhd', false],
    ];
    for (const [g, s, want] of cases) expect(globToRegExp(g).test(s), `${g} vs ${s}`).toBe(want);
  });

  it('names match anywhere, paths from the root, absolute paths absolutely; folders prune', () => {
    const ex = makeExcluder(['*.avhd', 'archive', 'clients/old/**', '/mnt/vhd/tmp/*']);
    expect(ex('x/y/s.avhd', '/r/x/y/s.avhd', false)).toBe(true);
    expect(ex('deep/archive', '/r/deep/archive', true)).toBe(true);
    expect(ex('clients/old', '/r/clients/old', true)).toBe(true);
    expect(ex('clients/older', '/r/clients/older', true)).toBe(false);
    expect(ex('tmp/a.vhd', '/mnt/vhd/tmp/a.vhd', false)).toBe(true);
    expect(ex('x/a.vhd', '/r/x/a.vhd', false)).toBe(false);
    expect(makeExcluder([])('a', '/a', false)).toBe(false);
  });
});

describe('shard', () => {
  it('parses K/N with K from 0 and rejects the rest', () => {
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1 });
    expect(parseShard(' 3 / 8 ')).toEqual({ index: 3, count: 8 });
    for (const bad of ['1/1', '4/4', '-1/4', '1/0', 'a/b', '2', '1/2/3', '']) expect(() => parseShard(bad), bad).toThrow(RangeError);
  });

  it('is sha256 of the lower-case UUID mod N: stable across runs, hosts and versions', () => {
    const u = '6F1C2D3E-0000-4000-8000-00000000ABCD';
    const expected = Number(BigInt('0x' + createHash('sha256').update(u.toLowerCase()).digest('hex').slice(0, 12)) % 7n);
    expect(shardOf(u, 7)).toBe(expected);
    expect(shardOf(u.toLowerCase(), 7)).toBe(expected);
    expect(shardOf(u, 1)).toBe(0);
  });

  it('puts every key in exactly one shard, spread evenly', () => {
    const n = 4;
    const counts = new Array(n).fill(0);
    for (let i = 0; i < 4000; i++) {
      const u = randomUUID();
      const owners = [0, 1, 2, 3].filter((k) => inShard(u, { index: k, count: n }));
      expect(owners.length).toBe(1);
      counts[owners[0]]++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });
});

let seq = 0;
function disk(p: string, type: DiskInfo['type'], parent: DiskInfo | string | null, extra: Partial<DiskInfo> = {}): DiskInfo {
  seq++;
  const uuid = `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}` as Uuid;
  const parentUuid = parent === null ? null : (typeof parent === 'string' ? parent : parent.uuid) as Uuid;
  return {
    path: p, realPath: p, root: '/r', rel: p.slice(3), dev: 1, ino: seq, size: 1000, mtimeMs: 0, uuid, type,
    parentUuid, parentCandidates: [], savedState: false, virtualSize: 1 << 20, minSize: 100, external: false, warnings: [], ...extra,
  };
}
const treeOf = (ts: Tree[], p: string) => ts.find((t) => t.nodes.some((n) => n.disk.path === p))!;

describe('forest', () => {
  it('links a parent with many children and computes depth and height', () => {
    const b = disk('/r/b.vhd', 'dynamic', null);
    const a = disk('/r/a.vhd', 'differencing', b);
    const c = disk('/r/c.vhd', 'differencing', b);
    const d = disk('/r/d.vhd', 'differencing', a);
    const { trees, duplicates } = buildForest([d, c, a, b]);
    expect(trees.length).toBe(1);
    expect(duplicates).toEqual([]);
    const t = trees[0];
    expect(t.key).toBe(b.uuid);
    expect(t.problem).toBeNull();
    expect(t.nodes.map((n) => n.disk.path)).toEqual(['/r/b.vhd', '/r/a.vhd', '/r/c.vhd', '/r/d.vhd']);
    const [nb, na, nc, nd] = t.nodes;
    expect([depthOf(nb), depthOf(na), depthOf(nc), depthOf(nd)]).toEqual([0, 1, 1, 2]);
    expect([heightOf(nb), heightOf(na), heightOf(nc), heightOf(nd)]).toEqual([2, 1, 0, 0]);
    expect(leavesOf(nb).map((n) => n.disk.path)).toEqual(['/r/d.vhd', '/r/c.vhd']);
    expect(ancestorsOf(nd)).toEqual([na, nb]);
    expect(na.wasIntermediate && nb.wasIntermediate && !nc.wasIntermediate).toBe(true);
    relinkToGrandparent(nd);
    expect(nd.parent).toBe(nb);
    expect(na.children).toEqual([]);
    expect(depthOf(nd)).toBe(1);
  });

  it('with duplicate UUIDs: the locator first, then the same folder, else ambiguous', () => {
    const b1 = disk('/r/x/b.vhd', 'dynamic', null);
    const b2 = { ...disk('/r/y/b.vhd', 'dynamic', null), uuid: b1.uuid };
    const b3 = { ...disk('/r/z/b.vhd', 'dynamic', null), uuid: b1.uuid };
    const byLocator = disk('/r/z/c1.vhd', 'differencing', b1, { parentCandidates: ['/r/gone.vhd', '/r/y/b.vhd'] });
    const sameDir = disk('/r/x/c2.vhd', 'differencing', b1);
    const ambiguous = disk('/r/w/c3.vhd', 'differencing', b1);
    const { trees, duplicates } = buildForest([b1, b2, b3, byLocator, sameDir, ambiguous]);
    expect(duplicates).toEqual([{ uuid: b1.uuid, paths: ['/r/x/b.vhd', '/r/y/b.vhd', '/r/z/b.vhd'] }]);
    expect(treeOf(trees, '/r/z/c1.vhd').root.disk.path).toBe('/r/y/b.vhd');
    expect(treeOf(trees, '/r/x/c2.vhd').root.disk.path).toBe('/r/x/b.vhd');
    const amb = treeOf(trees, '/r/w/c3.vhd');
    expect(amb.root.disk.path).toBe('/r/w/c3.vhd');
    expect(amb.problem?.reason).toBe('parent-ambiguous');
    // Copies share a UUID, hence a shard.
    expect(new Set(trees.filter((t) => !t.problem).map((t) => t.key)).size).toBe(1);
  });

  it('reports missing, mismatched and broken parents on the family, which keeps its children', () => {
    const missingParent = '11111111-1111-4111-8111-111111111111';
    const c = disk('/r/c.vhd', 'differencing', missingParent, { parentCandidates: ['/r/p.vhd'] });
    const cc = disk('/r/cc.vhd', 'differencing', c);
    const other = disk('/r/other.vhd', 'dynamic', null);
    const m = disk('/r/m.vhd', 'differencing', '22222222-2222-4222-8222-222222222222', { parentCandidates: ['/r/other.vhd'] });
    const probed = disk('/r/q.vhd', 'differencing', '33333333-3333-4333-8333-333333333333', { parentCandidates: ['/elsewhere/p.vhd'] });
    const brokenUuid = '44444444-4444-4444-8444-444444444444' as Uuid;
    const bad: UnreadableFile = { path: '/r/bad.vhd', root: '/r', rel: 'bad.vhd', kind: 'file', code: 'BAD_CHECKSUM', message: 'checksum', uuid: brokenUuid };
    const k = disk('/r/k.vhd', 'differencing', brokenUuid);
    const probes = new Map([['/elsewhere/p.vhd', { uuid: '55555555-5555-4555-8555-555555555555' as Uuid }]]);
    const { trees } = buildForest([c, cc, other, m, probed, k], [bad], probes);
    const fam = treeOf(trees, '/r/cc.vhd');
    expect(fam.root.disk.path).toBe('/r/c.vhd');
    expect(fam.problem).toMatchObject({ reason: 'parent-missing', code: 'PARENT_NOT_FOUND', path: '/r/c.vhd' });
    expect(fam.key).toBe(missingParent);
    expect(fam.nodes.length).toBe(2);
    expect(treeOf(trees, '/r/m.vhd').problem).toMatchObject({ reason: 'parent-mismatch', code: 'PARENT_MISMATCH' });
    expect(treeOf(trees, '/r/q.vhd').problem?.reason).toBe('parent-mismatch');
    expect(treeOf(trees, '/r/k.vhd').problem).toMatchObject({ reason: 'parent-broken' });
    expect(treeOf(trees, '/r/k.vhd').problem!.message).toContain('/r/bad.vhd');
    expect(treeOf(trees, '/r/other.vhd').problem).toBeNull();
  });

  it('cuts a cycle and reports it', () => {
    const a = disk('/r/a.vhd', 'differencing', null);
    const b = disk('/r/b.vhd', 'differencing', a);
    a.parentUuid = b.uuid;
    const top = disk('/r/top.vhd', 'differencing', b);
    const { trees } = buildForest([a, b, top]);
    expect(trees.length).toBe(1);
    expect(trees[0].problem?.reason).toBe('cycle');
    expect(trees[0].nodes.map((n) => n.disk.path).sort()).toEqual(['/r/a.vhd', '/r/b.vhd', '/r/top.vhd']);
  });
});

function emptyReport(): MaintainReport {
  return {
    tool: 'vhdtool', command: 'maintain', reportVersion: 1, startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:01:00.000Z', durationMs: 60_000,
    dryRun: false, roots: ['/r'], shard: { index: 1, count: 3 },
    options: { minReclaim: 0, maxDepth: null, removeOrphans: false, exclude: [], threads: 0, concurrency: 2 },
    exitCode: -1, status: 'healthy', fatal: null,
    summary: { disksFound: 0, unreadable: 0, chains: 0, chainsInShard: 0, chainsOk: 0, chainsChanged: 0, chainsSkipped: 0, chainsFailed: 0, disksCompacted: 0, bytesReclaimed: 0, bytesReclaimable: 0, chainsShortened: 0, layersCoalesced: 0, orphansRemoved: 0, disksSkipped: 0, errors: 0, discoveryMs: 5 },
    chains: [], unreadable: [], errors: [], warnings: [],
  };
}
const chain = (over: Partial<ChainReport>): ChainReport => ({
  base: { path: '/r/b.vhd', uuid: 'u', type: 'dynamic', external: false }, key: 'u', status: 'ok', changed: false, skip: null,
  disks: [], chains: [], actions: [], bytesReclaimed: 0, bytesReclaimable: 0, removedTemporaries: [], errors: [], ...over,
});

describe('report and metrics', () => {
  it('exit 0 when healthy, even with families skipped as locked; 1 on any error; the fatal code when fatal', () => {
    const r = emptyReport();
    r.chains = [chain({ status: 'skipped', skip: { reason: 'locked', message: 'x' } }), chain({ actions: [{ action: 'compact', disk: '/r/b.vhd', dryRun: false, reclaimedBytes: 10, durationMs: 1 }], bytesReclaimed: 10 })];
    finalize(r);
    expect([r.exitCode, r.status, r.summary.disksCompacted, r.summary.bytesReclaimed, r.summary.chainsSkipped]).toEqual([0, 'healthy', 1, 10, 1]);
    r.unreadable = [{ path: '/r/x.vhd', kind: 'file', code: 'BAD_FORMAT', message: 'bad', uuid: null }];
    finalize(r);
    expect([r.exitCode, r.status, r.summary.errors, r.errors[0].exitCode]).toEqual([1, 'errors', 1, 4]);
    r.fatal = { path: '/r', code: 'NOT_FOUND', exitCode: 3, message: 'no such file', during: 'maintain' };
    finalize(r);
    expect([r.exitCode, r.status, r.summary.errors]).toEqual([3, 'fatal', 2]);
  });

  it('metrics carry the last success over failed runs and dry runs, per shard', () => {
    const ok = finalize(emptyReport());
    const t1 = renderMetrics(ok, null);
    const m1 = parsePrometheus(t1);
    expect(m1.get('vhdtool_maintain_last_success_timestamp_seconds{shard="1/3"}')).toBe(Date.parse(ok.finishedAt) / 1000);
    expect(lastSuccessFrom(t1, '1/3')).toBe(Date.parse(ok.finishedAt) / 1000);
    expect(lastSuccessFrom(t1, '0/3')).toBeNull();
    const bad = emptyReport();
    bad.finishedAt = '2026-01-02T00:00:00.000Z';
    bad.unreadable = [{ path: '/r/x.vhd', kind: 'file', code: 'BAD_FORMAT', message: 'bad', uuid: null }];
    finalize(bad);
    const m2 = parsePrometheus(renderMetrics(bad, t1));
    expect(m2.get('vhdtool_maintain_last_success_timestamp_seconds{shard="1/3"}')).toBe(Date.parse(ok.finishedAt) / 1000);
    expect(m2.get('vhdtool_maintain_last_run_timestamp_seconds{shard="1/3"}')).toBe(Date.parse(bad.finishedAt) / 1000);
    expect(m2.get('vhdtool_maintain_errors{shard="1/3"}')).toBe(1);
    const dry = finalize({ ...emptyReport(), dryRun: true, finishedAt: '2026-01-03T00:00:00.000Z' });
    expect(parsePrometheus(renderMetrics(dry, null)).get('vhdtool_maintain_last_success_timestamp_seconds{shard="1/3"}')).toBe(0);
  });
});

describe('lanes', () => {
  it('a lane maps its slots onto its own part of the arena, and at most N lanes run at once', async () => {
    const seen: WorkerTask[] = [];
    const arena = Buffer.alloc(4 * 6);
    const runner: TaskRunner = {
      threads: 0, arena, slotBytes: 4, slots: 6,
      run: async <T>(t: WorkerTask) => { seen.push(t); return null as T; },
      close: async () => {},
    };
    const lane = laneView(runner, 3, 3);
    expect(lane.slots).toBe(3);
    lane.arena[0] = 7;
    expect(arena[12]).toBe(7);
    await lane.run({ kind: 'compare', slot: 2, sectors: 1, files: [], src: [], ref: null, write: false });
    await lane.run({ kind: 'digest', file: 'f', offset: 0, length: 1 });
    expect(seen.map((t) => ('slot' in t ? t.slot : null))).toEqual([5, null]);

    const pool = new LanePool([0, 1]);
    let inFlight = 0;
    let peak = 0;
    const used = new Set<number>();
    await Promise.all(Array.from({ length: 8 }, () => pool.with(async (l) => {
      expect(used.has(l)).toBe(false);
      used.add(l);
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      used.delete(l);
    })));
    expect(peak).toBe(2);
  });
});
