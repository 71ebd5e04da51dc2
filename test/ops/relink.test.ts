/**
 * relink: links broken by moving and renaming files in temporary folders are
 * repaired with --search (or --parent), after the proof; the child's UUID,
 * data and file times never change and the parent is never written; copies,
 * modified parents, wrong UUIDs and sizes are handled as documented; libvhdi
 * reads the relinked chain.
 */
import { chmodSync, copyFileSync, cpSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, utimesSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { relink, type RelinkResult } from '../../src/ops/relink.js';
import { info } from '../../src/ops/info.js';
import { checkDisk } from '../../src/check/check.js';
import { createRunner } from '../../src/parallel/pool.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { dateToVhdTime, encodeUtf16Le, type Uuid } from '../../src/format/index.js';
import { writeSynthChain, writeSynthLayer, type SynthLayer } from '../../src/synth/build.js';
import { macXLocatorData } from '../../src/vhd/build.js';
import { contentHash } from '../helpers/hash.js';
import { runCli } from '../helpers/cliRun.js';
import { readHeader, readRange } from '../helpers/patch.js';
import { HAVE_PYVHDI, libvhdiHash } from '../helpers/peers.js';
import { tempDir } from '../helpers/tmp.js';

const MiB = 1024 * 1024;
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const fill = (n: number, v: number) => new Uint8Array(n).fill(v);

const BASE: SynthLayer = {
  type: 'dynamic', virtualSize: 10 * MiB,
  writes: [{ sector: 0, data: fill(8192, 1) }, { sector: 6000, data: fill(65536, 2) }, { sector: 15000, data: fill(4096, 3) }],
};
// Whole bitmap bytes (8 sectors): libvhdi 20210425 misreads a partly set bitmap byte (see MANIFEST.md).
const CHILD: SynthLayer = {
  type: 'differencing', virtualSize: 10 * MiB,
  writes: [{ sector: 8, data: fill(4096, 7) }, { sector: 6096, data: fill(4096, 8) }],
};

interface Tree {
  root: string;
  base: string;
  child: string;
  baseUuid: Uuid;
  content: string;
}

/**
 * root/golden/base.vhd and root/vms/<childName>, the child made while the
 * base sat where it is; `layers` override the child (Hyper-V's reserves by
 * default: the child is made by `vhdtool create`, then written by the synth).
 */
async function tree(opts: { childName?: string; baseName?: string; childLayer?: Partial<SynthLayer> } = {}): Promise<Tree> {
  const root = tempDir('vhdtool-relink-');
  mkdirSync(path.join(root, 'golden'));
  mkdirSync(path.join(root, 'vms'));
  const b = await writeSynthLayer(nodeFileSystem, path.join(root, 'golden', opts.baseName ?? 'base.vhd'), BASE, null);
  // A link made an hour after the base was last written.
  const t = new Date(Date.now() - 3_600_000);
  utimesSync(b.path, t, t);
  const child = path.join(root, 'vms', opts.childName ?? 'user1.vhd');
  await writeSynthLayer(nodeFileSystem, child, { ...CHILD, ...opts.childLayer }, b);
  return { root, base: b.path, child, baseUuid: b.uniqueId, content: await contentHash(child) };
}

/** Everything but the header and locator data: what a relink must never change. */
function dataBytes(p: string): Buffer {
  const buf = Buffer.from(readFileSync(p));
  const h = readHeader(p);
  buf.fill(0, 512, 1536);
  for (const l of h.locators) if (l.platform !== null) buf.fill(0, l.dataOffset, l.dataOffset + Math.max(l.dataLength, 4096));
  return buf;
}

async function opensTo(child: string): Promise<string> {
  const i = await info(child);
  return i.chain[1].path;
}

describe('relink', () => {
  it('a parent folder moved: --search finds it by UUID; in place; UUID, data, times and mode unchanged; parent untouched', async () => {
    const t = await tree();
    chmodSync(t.child, 0o640);
    const before = { data: dataBytes(t.child), st: statSync(t.child), size: statSync(t.child).size };
    const moved = path.join(t.root, 'archive', 'golden-2024');
    mkdirSync(path.dirname(moved), { recursive: true });
    renameSync(path.dirname(t.base), moved);
    const newBase = path.join(moved, 'base.vhd');
    const baseSha = sha(newBase);
    await expect(info(t.child)).rejects.toMatchObject({ code: 'PARENT_NOT_FOUND' });

    const r = await relink(t.child, { search: [t.root], threads: 0 });
    expect(r.method).toBe('in-place');
    expect(r.changed).toBe(true);
    expect(r.proof.verdict).toBe('proven');
    expect(r.proof.checks.map((c) => [c.name, c.status])).toEqual([
      ['parent-uuid', 'passed'], ['virtual-size', 'passed'], ['parent-time', 'passed'], ['parent-chain', 'passed'],
      // The synthetic disks hold no partition table or file system.
      ['guest-filesystems', 'not-applicable'],
    ]);
    expect(r.parent.foundBy).toMatch(/only disk with UUID/);
    expect(r.after.locators.map((l) => [l.platform, l.path])).toEqual([['W2ku', newBase], ['W2ru', '..\\archive\\golden-2024\\base.vhd']]);
    expect(r.after.parentUnicodeName).toBe('../archive/golden-2024/base.vhd');

    expect(await opensTo(t.child)).toBe(path.resolve(path.dirname(t.child), '../archive/golden-2024/base.vhd'));
    expect(await contentHash(t.child)).toBe(t.content);
    const after = statSync(t.child);
    expect(dataBytes(t.child).equals(before.data)).toBe(true);
    expect([after.size, after.ino, after.mode & 0o777]).toEqual([before.size, before.st.ino, 0o640]);
    // File times go through libuv as double seconds: kept to the microsecond.
    expect(Math.abs(after.mtimeMs - before.st.mtimeMs)).toBeLessThan(0.01);
    expect(readHeader(t.child).parentUniqueId).toBe(t.baseUuid);
    expect(sha(newBase)).toBe(baseSha);
    expect(readdirSync(path.dirname(t.child))).toEqual(['user1.vhd']);
    const runner = createRunner({ threads: 0, slotBytes: 512 });
    try {
      const c = await checkDisk(nodeFileSystem, t.child, runner);
      expect({ ok: c.ok, errors: c.errors, warnings: c.warnings }).toEqual({ ok: true, errors: [], warnings: [] });
    } finally {
      await runner.close();
    }
    if (HAVE_PYVHDI) expect(libvhdiHash(t.child, newBase).sha256).toBe(t.content);
  });

  it('a parent renamed in its folder, Hyper-V .avhd naming: the child finds it, and so does its own child', async () => {
    const t = await tree({ childName: 'Win10_7A2C4D1E-5B6F-4A3B-9C8D-0E1F2A3B4C5D.avhd', baseName: 'Win10.vhd' });
    // A second snapshot over the first, as Hyper-V chains them.
    const snap2 = path.join(path.dirname(t.child), 'Win10_1F2E3D4C-5B6A-4978-8796-A5B4C3D2E1F0.avhd');
    const first = { path: t.child, uniqueId: (await info(t.child)).uuid as Uuid };
    await writeSynthLayer(nodeFileSystem, snap2, { type: 'differencing', virtualSize: BASE.virtualSize, writes: [{ sector: 20000, data: fill(512, 9) }] }, first);
    const whole = await contentHash(snap2);
    renameSync(t.base, path.join(path.dirname(t.base), 'Win10 (restored).vhd'));
    await expect(contentHash(snap2)).rejects.toMatchObject({ code: 'PARENT_NOT_FOUND' });
    const r = await runCli(['relink', t.child, '--search', t.root, '--json']);
    expect(r.code, r.err.join('\n')).toBe(0);
    const j = JSON.parse(r.out.join('\n')) as RelinkResult;
    expect(j.after.locators.find((l) => l.platform === 'W2ru')!.path).toBe('..\\golden\\Win10 (restored).vhd');
    expect(await contentHash(snap2)).toBe(whole);
    expect(await contentHash(t.child)).toBe(t.content);
  });

  it('a copy of the parent (file times kept) is accepted and the proof passes; two copies are ambiguous unless one lies where the child\'s locators point', async () => {
    const t = await tree();
    const copyDir = path.join(t.root, 'backup');
    mkdirSync(copyDir);
    const copy = path.join(copyDir, 'base.vhd');
    cpSync(t.base, copy, { preserveTimestamps: true });
    mkdirSync(path.join(t.root, 'archive'));
    renameSync(t.base, path.join(t.root, 'archive', 'old-base.vhd'));
    // Two disks with the parent's UUID under the root, neither where the locators point.
    let r = await runCli(['relink', t.child, '--search', t.root]);
    expect(r.code).toBe(5);
    expect(r.err.join('\n')).toMatch(/2 disks carry the parent's UUID .*copies are ambiguous: name the parent with --parent/);
    // A copy in the child's own folder (where the relative locator's file name points): that one.
    const beside = path.join(path.dirname(t.child), 'golden-copy.vhd');
    cpSync(copy, beside, { preserveTimestamps: true });
    const s = await relink(t.child, { search: [t.root], threads: 0, dryRun: true });
    expect(s.parent.path).toBe(beside);
    expect(s.parent.foundBy).toMatch(/only copy in a folder the child's locators name/);
    // Or the copy named with --parent: the proof passes.
    const p = await relink(t.child, { parent: copy, threads: 0 });
    expect(p.proof.verdict).toBe('proven');
    expect(await opensTo(t.child)).toBe(copy);
    expect(await contentHash(t.child)).toBe(t.content);
  });

  it('a parent modified after the link (same UUID, later file time, other content): refused without --force, with the reason; accepted with it', async () => {
    const t = await tree();
    const orig = sha(t.child);
    // Rewrite the base with the same UUID and other content, now (later than the link).
    const moved = path.join(t.root, 'elsewhere');
    mkdirSync(moved);
    const other = path.join(moved, 'base.vhd');
    await writeSynthLayer(nodeFileSystem, other, { ...BASE, uniqueId: t.baseUuid, writes: [{ sector: 0, data: fill(8192, 0x44) }] }, null);
    execFileSync('rm', [t.base]);
    const r = await runCli(['relink', t.child, '--search', t.root]);
    expect(r.code).toBe(6);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(/relink refused by the parent-time check: the candidate file was last modified .*, after the link was made .*\(--force accepts this\)/);
    expect(sha(t.child)).toBe(orig);
    // The proof, with --json, comes with the refusal.
    const j = await runCli(['relink', t.child, '--search', t.root, '--json']);
    const err = (JSON.parse(j.out.join('\n')) as { error: { code: string; proof: { verdict: string; checks: Array<{ name: string; status: string; refuses: boolean }> } } }).error;
    expect(err.code).toBe('REFUSED');
    expect(err.proof.checks.filter((c) => c.refuses).map((c) => [c.name, c.status])).toEqual([['parent-time', 'warning']]);
    // Dry run: the proof and the refusal, exit 6, nothing written.
    const d = await runCli(['relink', t.child, '--search', t.root, '--dry-run']);
    expect(d.code).toBe(6);
    expect(d.out.join('\n')).toMatch(/parent-time +warning, needs --force/);
    expect(sha(t.child)).toBe(orig);
    // --force: accepted, and the header records the parent's time.
    const f = await relink(t.child, { search: [t.root], force: true, threads: 0 });
    expect(f.proof.verdict).toBe('accepted');
    expect(f.proof.checks.find((c) => c.name === 'parent-time')).toMatchObject({ status: 'warning', overridden: true, refuses: false });
    expect(readHeader(t.child).parentTimestamp).toBe(dateToVhdTime(new Date(statSync(other).mtimeMs)));
    // The next relink to it passes the time check.
    const again = await relink(t.child, { parent: other, threads: 0, dryRun: true });
    expect(again.proof.checks.find((c) => c.name === 'parent-time')!.status).toBe('passed');
    expect(again.method).toBe('unchanged');
  });

  it('another disk\'s UUID: refused (exit 5); --ignore-id-mismatch writes its UUID; a smaller candidate is refused', async () => {
    const t = await tree();
    const strange = path.join(t.root, 'strange.vhd');
    await writeSynthLayer(nodeFileSystem, strange, BASE, null);
    const past = new Date(Date.now() - 7_200_000);
    utimesSync(strange, past, past);
    const r = await runCli(['relink', t.child, '--parent', strange]);
    expect(r.code).toBe(5);
    expect(r.err[0]).toMatch(/parent-uuid check: the child names parent .* but .* is .* \(--ignore-id-mismatch accepts this\)/);
    const ok = await relink(t.child, { parent: strange, ignoreIdMismatch: true, threads: 0 });
    expect(ok.proof.checks[0]).toMatchObject({ name: 'parent-uuid', status: 'failed', overridden: true });
    expect(readHeader(t.child).parentUniqueId).toBe((await info(strange)).uuid);
    expect(await opensTo(t.child)).toBe(strange);
    const small = path.join(t.root, 'small.vhd');
    await writeSynthLayer(nodeFileSystem, small, { ...BASE, virtualSize: 4 * MiB, writes: [] }, null);
    const s = await runCli(['relink', t.child, '--parent', small, '--ignore-id-mismatch']);
    expect(s.code).toBe(5);
    expect(s.err[0]).toMatch(/virtual-size check: the child is 10485760 bytes, the candidate 4194304/);
  });

  it('a candidate whose own chain is broken fails the parent-chain check', async () => {
    const t = await tree();
    // A differencing candidate with the parent's UUID whose own parent is gone.
    const mid = path.join(t.root, 'mid.vhd');
    await writeSynthLayer(nodeFileSystem, mid, { ...CHILD, uniqueId: undefined }, { path: t.base, uniqueId: t.baseUuid });
    const midUuid = (await info(mid)).uuid;
    execFileSync('mv', [t.base, path.join(t.root, 'gone.bin')]);
    const r = await relink(t.child, { parent: mid, threads: 0, dryRun: true, ignoreIdMismatch: true, force: true });
    expect(r.proof.checks.find((c) => c.name === 'parent-chain')).toMatchObject({ status: 'failed', refuses: true, code: 'PARENT_NOT_FOUND' });
    expect(r.refusal).toMatchObject({ check: 'parent-chain', exitCode: 5 });
    expect(midUuid).not.toBe(t.baseUuid);
  });

  it('locators that do not fit the file\'s reserve: the file is rewritten atomically (UUID, data and times kept), with Hyper-V\'s reserves, so the next relink fits in place', async () => {
    // As qemu, XO and blktap write them: room for the path as it was, rounded to a sector.
    const short = [{ platform: 'W2ku' as const, data: encodeUtf16Le('C:\\golden\\base.vhd') }, { platform: 'W2ru' as const, data: encodeUtf16Le('..\\golden\\base.vhd') }];
    const t = await tree({ childLayer: { locators: short } });
    chmodSync(t.child, 0o600);
    const st = statSync(t.child);
    const uuid = (await info(t.child)).uuid;
    const deep = path.join(t.root, 'golden images kept for the long run, '.repeat(4), 'and another level below it '.repeat(5));
    mkdirSync(deep, { recursive: true });
    renameSync(t.base, path.join(deep, 'base.vhd'));
    const r = await relink(t.child, { search: [t.root], threads: 0 });
    expect(r.method).toBe('rewrite');
    expect(r.methodReason).toMatch(/fits no reserved locator space/);
    const st2 = statSync(t.child);
    expect(st2.ino).not.toBe(st.ino);
    expect(st2.mode & 0o777).toBe(0o600);
    expect(Math.abs(st2.mtimeMs - st.mtimeMs)).toBeLessThan(0.01);
    expect((await info(t.child)).uuid).toBe(uuid);
    expect(readHeader(t.child).parentUniqueId).toBe(t.baseUuid);
    expect(await contentHash(t.child)).toBe(t.content);
    const h = readHeader(t.child);
    expect(h.locators.filter((l) => l.platform).map((l) => [l.platform, l.dataOffset, l.dataSpace])).toEqual([['W2ku', 4096, 4096], ['W2ru', 12288, 65536]]);
    expect(readdirSync(path.dirname(t.child))).toEqual(['user1.vhd']);
    renameSync(path.join(deep, 'base.vhd'), path.join(t.root, 'base.vhd'));
    const again = await relink(t.child, { search: [t.root], threads: 0 });
    expect(again.method).toBe('in-place');
    expect(await contentHash(t.child)).toBe(t.content);
  });

  it('a child with no locators at all (only a parent name) is rewritten; a hard-linked child is rewritten at this name only', async () => {
    const root = tempDir('vhdtool-relink-');
    const [b, c] = await writeSynthChain(nodeFileSystem, root, [BASE, { ...CHILD, locators: [] }], ['base.vhd', 'child.vhd']);
    const content = await contentHash(c.path);
    const uuid = (await info(c.path)).uuid;
    mkdirSync(path.join(root, 'moved'));
    renameSync(b.path, path.join(root, 'moved', 'base.vhd'));
    const r = await relink(c.path, { search: [root], threads: 0 });
    expect(r.method).toBe('rewrite');
    expect(r.methodReason).toMatch(/no locator slots/);
    expect((await info(c.path)).uuid).toBe(uuid);
    expect(await contentHash(c.path)).toBe(content);

    const other = path.join(root, 'other-name.vhd');
    linkSync(c.path, other);
    const before = sha(other);
    renameSync(path.join(root, 'moved', 'base.vhd'), path.join(root, 'base.vhd'));
    const h = await relink(c.path, { search: [root], threads: 0 });
    expect(h.method).toBe('rewrite');
    expect(h.methodReason).toMatch(/2 hard links/);
    expect(sha(other)).toBe(before);
    expect(await contentHash(c.path)).toBe(content);
  });

  it('MacX is rewritten, a Mac alias dropped and its data zeroed; check stays clean', async () => {
    const locators = [
      { platform: 'W2ku' as const, data: encodeUtf16Le('C:\\golden\\base.vhd'), space: 4096 },
      { platform: 'W2ru' as const, data: encodeUtf16Le('..\\golden\\base.vhd'), space: 4096 },
      { platform: 'MacX' as const, data: macXLocatorData('/Volumes/old/golden/base.vhd'), space: 1024 },
      { platform: 'Mac ' as const, data: fill(300, 0xab), space: 512 },
    ];
    const t = await tree({ childLayer: { locators } });
    const macAt = readHeader(t.child).locators[3].dataOffset;
    renameSync(path.dirname(t.base), path.join(t.root, 'golden-moved'));
    const r = await relink(t.child, { search: [t.root], threads: 0 });
    expect(r.method).toBe('in-place');
    expect(r.dropped).toEqual([expect.stringMatching(/^Mac {2}\(an opaque Mac OS alias/)]);
    const i = await info(t.child);
    const paths = i.locators.map((l) => [l.platform, l.path]);
    expect(paths).toEqual([
      ['W2ku', path.join(t.root, 'golden-moved', 'base.vhd')],
      ['W2ru', '..\\golden-moved\\base.vhd'],
      ['MacX', path.join(t.root, 'golden-moved', 'base.vhd')],
    ]);
    expect(Buffer.from(readRange(t.child, macAt, 512)).equals(Buffer.alloc(512))).toBe(true);
    const runner = createRunner({ threads: 0, slotBytes: 512 });
    try {
      expect((await checkDisk(nodeFileSystem, t.child, runner)).errors).toEqual([]);
    } finally {
      await runner.close();
    }
  });

  it('usage, a fixed or dynamic disk, a missing search folder, and the candidate being the child are refused', async () => {
    const t = await tree();
    expect((await runCli(['relink', t.child])).code).toBe(2);
    expect((await runCli(['relink', t.child, '--parent', t.base, '--search', t.root])).code).toBe(2);
    expect((await runCli(['relink', t.child, '--search', t.root, '--ignore-id-mismatch'])).code).toBe(2);
    expect((await runCli(['relink', t.base, '--parent', t.base])).code).toBe(6);
    expect((await runCli(['relink', t.child, '--search', path.join(t.root, 'nope')])).code).toBe(3);
    expect((await runCli(['relink', t.child, '--parent', t.child, '--ignore-id-mismatch'])).code).toBe(6);
    expect(existsSync(path.join(path.dirname(t.child), '.user1.vhd.vhdtool.lock'))).toBe(false);
  });

  it('nothing under the search folders: exit 5 naming what was searched', async () => {
    const t = await tree();
    execFileSync('rm', [t.base]);
    const r = await runCli(['relink', t.child, '--search', t.root]);
    expect(r.code).toBe(5);
    expect(r.err[0]).toMatch(new RegExp(`no disk with the parent's UUID ${t.baseUuid} under .* \\(1 VHD file\\(s\\) examined\\)`));
  });

  it('folder symlinks under --search are not followed', async () => {
    const t = await tree();
    const outside = tempDir('vhdtool-relink-outside-');
    renameSync(t.base, path.join(outside, 'base.vhd'));
    execFileSync('ln', ['-s', outside, path.join(t.root, 'link-to-outside')]);
    expect((await runCli(['relink', t.child, '--search', t.root])).code).toBe(5);
    // Searched directly, it is found.
    expect((await runCli(['relink', t.child, '--search', outside])).code).toBe(0);
  });

  it('a copy made without keeping file times is, by its time stamp, indistinguishable from a modified parent: --force is needed', async () => {
    const t = await tree();
    const copy = path.join(t.root, 'fresh-copy.vhd');
    copyFileSync(t.base, copy);
    execFileSync('rm', [t.base]);
    const r = await relink(t.child, { search: [t.root], threads: 0, dryRun: true });
    expect(r.refusal?.check).toBe('parent-time');
    expect((await relink(t.child, { search: [t.root], threads: 0, force: true })).changed).toBe(true);
    expect(await contentHash(t.child)).toBe(t.content);
  });

  it('interrupted (SIGINT/SIGTERM abort the signal): nothing is written, no lock or journal is left', async () => {
    const t = await tree();
    renameSync(path.dirname(t.base), path.join(t.root, 'moved'));
    const before = sha(t.child);
    const ac = new AbortController();
    ac.abort();
    await expect(relink(t.child, { search: [t.root], threads: 0, signal: ac.signal })).rejects.toMatchObject({ code: 'INTERRUPTED' });
    expect(sha(t.child)).toBe(before);
    expect(readdirSync(path.dirname(t.child))).toEqual(['user1.vhd']);
  });
});
