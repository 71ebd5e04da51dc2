/**
 * maintain and stale locators: folders moved and files renamed under the
 * roots leave children whose locators lead nowhere; discovery still finds
 * their parents by UUID. Without --relink they are reported (a warning, exit
 * 0); --dry-run --relink shows what would be relinked and writes nothing;
 * --relink rewrites them with relink's proof, parents first, so that every
 * other tool opens them again; a relink the proof refuses (a disk with the
 * parent's UUID whose file system does not fit the child) is an error, and
 * that child is left unwritten.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, unlinkSync, utimesSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { maintain } from '../../src/ops/maintain.js';
import { info } from '../../src/ops/info.js';
import { METRIC_NAMES } from '../../src/maintain/metrics.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { writeSynthLayer, type BuiltLayer, type SynthLayer } from '../../src/synth/build.js';
import { contentHash } from '../helpers/hash.js';
import { runCli } from '../helpers/cliRun.js';
import { HAVE_MKFS_FAT, HAVE_MTOOLS } from '../helpers/guest.js';
import { childOf, diskOf, fatScene } from '../helpers/relinkScenes.js';
import { tempDir } from '../helpers/tmp.js';
import { block, BS, VSIZE } from './fixture.js';

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const layer = (type: 'dynamic' | 'differencing', seeds: Array<[number, number]>): SynthLayer =>
  ({ type, virtualSize: VSIZE, blockSize: BS, writes: seeds.map(([b, s]) => block(b, s)) });

interface Tree {
  root: string;
  /** The children whose locators the moves make stale, parents before children. */
  stale: string[];
  /** Content of every child before the run. */
  content: Map<string, string>;
}

/**
 * root/golden/golden.vhd <- root/vms/vm1.vhd, vm2.vhd; root/Hyper-V/Virtual Hard Disks/Win10.vhd <-
 * Snapshots/Win10_<GUID>.avhd <- Snapshots/Win10_<GUID2>.avhd. Then: golden/ becomes archive/golden-2024/;
 * Win10.vhd goes to archive/ renamed Win10-template.vhd; the first snapshot moves into Snapshots/old/.
 */
async function movedTree(): Promise<Tree> {
  const root = tempDir('vhdtool-mrelink-');
  const at = (...p: string[]) => path.join(root, ...p);
  for (const d of ['golden', 'vms', 'Hyper-V/Virtual Hard Disks', 'Hyper-V/Snapshots/old', 'archive']) mkdirSync(at(d), { recursive: true });
  const w = async (p: string, l: SynthLayer, parent: BuiltLayer | null) => {
    const b = await writeSynthLayer(nodeFileSystem, p, l, parent);
    const t = new Date(Date.now() - 3_600_000);
    utimesSync(p, t, t);
    return b;
  };
  const golden = await w(at('golden', 'golden.vhd'), layer('dynamic', [[0, 1], [5, 2], [40, 3]]), null);
  const vm1 = await w(at('vms', 'vm1.vhd'), layer('differencing', [[5, 11]]), golden);
  const vm2 = await w(at('vms', 'vm2.vhd'), layer('differencing', [[7, 12]]), golden);
  const win = await w(at('Hyper-V', 'Virtual Hard Disks', 'Win10.vhd'), layer('dynamic', [[1, 4], [9, 5]]), null);
  const s1 = await w(at('Hyper-V', 'Snapshots', 'Win10_7A2C4D1E-5B6F-4A3B-9C8D-0E1F2A3B4C5D.avhd'), layer('differencing', [[9, 21]]), win);
  const s2 = await w(at('Hyper-V', 'Snapshots', 'Win10_1F2E3D4C-5B6A-4978-8796-A5B4C3D2E1F0.avhd'), layer('differencing', [[2, 22]]), s1);
  const content = new Map<string, string>();
  for (const d of [vm1, vm2, s1, s2]) content.set(d.path, await contentHash(d.path));
  renameSync(at('golden'), at('archive', 'golden-2024'));
  renameSync(win.path, at('archive', 'Win10-template.vhd'));
  const s1moved = at('Hyper-V', 'Snapshots', 'old', path.basename(s1.path));
  renameSync(s1.path, s1moved);
  content.set(s1moved, content.get(s1.path)!);
  content.delete(s1.path);
  return { root, stale: [s1moved, s2.path, vm1.path, vm2.path].sort(), content };
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`));
  return Number(line!.split(' ').pop());
}

describe('maintain over a tree with moved folders', () => {
  it('without --relink: stale locators are a warning (exit 0), counted per disk, in the summary and the metrics; other tools cannot open those disks', async () => {
    const t = await movedTree();
    for (const p of t.stale) await expect(info(p), p).rejects.toMatchObject({ code: 'PARENT_NOT_FOUND' });
    const metrics = path.join(t.root, '..', `${path.basename(t.root)}.prom`);
    const r = await maintain([t.root], { threads: 0, metricsFile: metrics });
    expect(r.exitCode, JSON.stringify(r.errors)).toBe(0);
    const disks = r.chains.flatMap((c) => c.disks);
    expect(disks.filter((d) => d.staleLocators).map((d) => d.path).sort()).toEqual(t.stale);
    expect(r.summary.staleLocators).toBe(4);
    expect(r.summary.disksRelinked).toBe(0);
    const warnings = r.warnings.filter((w) => w.startsWith('stale locators:'));
    expect(warnings).toHaveLength(2);
    expect(warnings.join('\n')).toMatch(/2 disks of the family of .*golden-2024\/golden\.vhd open only through maintain's UUID index.*maintain --relink/);
    const m = readFileSync(metrics, 'utf8');
    expect([metric(m, METRIC_NAMES.stale), metric(m, METRIC_NAMES.relinked)]).toEqual([4, 0]);
    for (const p of t.stale) await expect(info(p), p).rejects.toMatchObject({ code: 'PARENT_NOT_FOUND' });
  });

  it('--relink --dry-run shows what would be relinked and writes nothing', async () => {
    const t = await movedTree();
    const before = new Map(t.stale.map((p) => [p, sha(p)]));
    const r = await runCli(['maintain', t.root, '--relink', '--dry-run', '--json', '--threads', '0']);
    expect(r.code, r.out.join('\n')).toBe(0);
    const rep = JSON.parse(r.out.join('\n'));
    const acts = rep.chains.flatMap((c: { actions: Array<{ action: string; disk: string; dryRun: boolean; method: string; proof: string }> }) => c.actions)
      .filter((a: { action: string }) => a.action === 'relink');
    expect(acts.map((a: { disk: string }) => a.disk).sort()).toEqual(t.stale);
    for (const a of acts) expect([a.dryRun, a.method, a.proof]).toEqual([true, 'in-place', 'proven']);
    expect([rep.summary.disksRelinked, rep.summary.staleLocators, rep.options.relink]).toEqual([4, 0, true]);
    for (const [p, h] of before) expect(sha(p), p).toBe(h);
    const human = await runCli(['maintain', t.root, '--relink', '--dry-run', '--threads', '0']);
    expect(human.out.join('\n')).toMatch(/vm1\.vhd: would relink: its stale locators would lead to its parent .*golden-2024\/golden\.vhd \(in-place, proof proven\)/);
    expect(human.out.at(-1)).toMatch(/; would relink 4 disks; 0 errors;/);
  });

  it('--relink rewrites them (a snapshot over a moved snapshot too, parents first): every tool opens them, content unchanged; the next run has nothing to do', async () => {
    const t = await movedTree();
    const metrics = path.join(t.root, '..', `${path.basename(t.root)}.prom`);
    const r = await maintain([t.root], { threads: 0, relink: true, metricsFile: metrics });
    expect(r.exitCode, JSON.stringify(r.errors)).toBe(0);
    const acts = r.chains.flatMap((c) => c.actions).filter((a) => a.action === 'relink');
    expect(acts.map((a) => a.disk).sort()).toEqual(t.stale);
    // The moved snapshot is relinked before the snapshot above it.
    const order = acts.map((a) => path.basename(a.disk));
    expect(order.indexOf('Win10_7A2C4D1E-5B6F-4A3B-9C8D-0E1F2A3B4C5D.avhd')).toBeLessThan(order.indexOf('Win10_1F2E3D4C-5B6A-4978-8796-A5B4C3D2E1F0.avhd'));
    expect(r.summary.disksRelinked).toBe(4);
    expect(r.summary.staleLocators).toBe(0);
    expect(r.warnings.filter((w) => w.startsWith('stale locators:'))).toEqual([]);
    expect(r.chains.flatMap((c) => c.disks).filter((d) => t.stale.includes(d.path)).every((d) => d.changed && !d.staleLocators)).toBe(true);
    const m = readFileSync(metrics, 'utf8');
    expect([metric(m, METRIC_NAMES.relinked), metric(m, METRIC_NAMES.stale)]).toEqual([4, 0]);
    for (const p of t.stale) {
      const i = await info(p);
      expect(i.chain.length, p).toBeGreaterThan(1);
      expect(await contentHash(p), p).toBe(t.content.get(p));
    }
    expect((await info(t.stale.find((p) => p.endsWith('vm1.vhd'))!)).chain[1].path).toBe(path.join(t.root, 'archive', 'golden-2024', 'golden.vhd'));
    const again = await maintain([t.root], { threads: 0, relink: true });
    expect([again.exitCode, again.summary.disksRelinked, again.summary.staleLocators]).toEqual([0, 0, 0]);
  });
});

describe.skipIf(!HAVE_MKFS_FAT || !HAVE_MTOOLS)('maintain --relink and a parent the proof refuses', () => {
  it('the only disk with the parent\'s UUID under the roots has other files in the child\'s clusters: an error (exit 1), the child is neither relinked nor compacted', async () => {
    const dir = tempDir('vhdtool-mrelink-fs-');
    const scene = fatScene(dir);
    const root = path.join(dir, 'root');
    for (const d of ['golden', 'vms', 'restored']) mkdirSync(path.join(root, d), { recursive: true });
    const t = new Date(Date.now() - 3_600_000);
    const base = await diskOf(scene.template, path.join(root, 'golden', 'base.vhd'), t);
    const child = await childOf(scene, base, path.join(root, 'vms', 'user1.vhd'));
    // The template is lost; what is restored under its UUID is another disk.
    unlinkSync(base.path);
    await diskOf(scene.other, path.join(root, 'restored', 'base.vhd'), t, base.uniqueId);
    const before = sha(child);
    const r = await maintain([root], { threads: 0, relink: true, minReclaim: 0 });
    expect(r.exitCode).toBe(1);
    const fam = r.chains.find((c) => c.disks.some((d) => d.path === child))!;
    expect(fam.errors.map((e) => [e.path, e.during, e.code, e.exitCode])).toEqual([[child, 'relink', 'BAD_FILESYSTEM', 9]]);
    expect(fam.errors[0].message).toMatch(/^relink refused by the guest-filesystems check: partition 1 \(fat16.*double-owned/);
    const d = fam.disks.find((x) => x.path === child)!;
    expect([d.changed, d.staleLocators, d.skip?.reason]).toEqual([false, true, 'relink-refused']);
    expect(fam.actions.filter((a) => a.disk === child)).toEqual([]);
    expect(r.summary.disksRelinked).toBe(0);
    expect(sha(child)).toBe(before);
  });
});
