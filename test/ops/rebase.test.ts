/**
 * rebase on synthetic chains: a template P, a user's child A of it, and an
 * updated template Q that changed, added and removed data. Every result must
 * read exactly as the disk did (vhdtool's reader and the model built from the
 * writes), and store exactly the sectors where the disk's view differs from
 * the new parent's (read from its bitmaps, not from the planner).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, linkSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { modelContent, writeSynthChain, writeSynthLayer, type SynthLayer, type SynthWrite } from '../../src/synth/build.js';
import { patternBytes } from '../../src/synth/random.js';
import { rebase } from '../../src/ops/rebase.js';
import { compare } from '../../src/ops/compare.js';
import { convert } from '../../src/ops/merge.js';
import { info } from '../../src/ops/info.js';
import { VhdToolError } from '../../src/errors.js';
import { dateToVhdTime, vhdTimeToIso } from '../../src/format/index.js';
import { content } from '../helpers/hash.js';
import { differingSectors, emptyBlocks, storedSectors, zerosOverZeros } from '../helpers/rebase.js';
import { patchFooter } from '../helpers/patch.js';
import { runCli } from '../helpers/cliRun.js';
import { tempDir } from '../helpers/tmp.js';

const S = 512;
const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 3 * MiB + 3 * S; // not a multiple of any block size

/** The writes of a layer holding `bytes` wherever they are not zero. */
function nonZeroWrites(bytes: Uint8Array): SynthWrite[] {
  const out: SynthWrite[] = [];
  const zero = (s: number) => bytes.subarray(s * S, (s + 1) * S).every((x) => x === 0);
  for (let s = 0; s < bytes.length / S;) {
    if (zero(s)) { s++; continue; }
    let e = s + 1;
    while (e < bytes.length / S && !zero(e)) e++;
    out.push({ sector: s, data: bytes.slice(s * S, e * S) });
    s = e;
  }
  return out;
}

interface Scene {
  dir: string;
  p: string;
  a: string;
  q: string;
  /** A's view, P's view and Q's view. */
  viewA: Uint8Array;
  viewP: Uint8Array;
  viewQ: Uint8Array;
}

/**
 * P: data in the first MiB and at 2 MiB. A (child of P, 512 KiB blocks):
 * new data, copies of P, zeros over P's data, zeros over nothing, a tweaked
 * copy. Q (standalone, 2 MiB blocks): P with a block rewritten, data removed
 * (where A shows P's data, and where A overwrote it), and new data both
 * under A's writes and where A reads zeros (which the result must hide).
 */
async function scene(blockSize = 512 * KiB): Promise<Scene> {
  const dir = tempDir();
  const p: SynthLayer = { type: 'dynamic', virtualSize: SIZE, blockSize, writes: [
    { sector: 0, data: patternBytes(1 * MiB, 1) },
    { sector: 4096, data: patternBytes(256 * KiB, 2) },
  ] };
  const viewP = modelContent([p]);
  const tweak = viewP.slice(300 * S, 340 * S);
  for (let i = 0; i < tweak.length; i += 2 * S) tweak[i + 7] ^= 0x5a;
  const a: SynthLayer = { type: 'differencing', virtualSize: SIZE, blockSize, writes: [
    { sector: 10, data: patternBytes(8 * KiB, 3) },            // new data over P's
    { sector: 100, data: viewP.slice(100 * S, 200 * S) },      // same as P
    { sector: 500, data: new Uint8Array(32 * KiB) },           // zeros over P's data
    { sector: 3000, data: new Uint8Array(16 * KiB) },          // zeros over nothing
    { sector: 300, data: tweak },                              // P with one byte changed every other sector
    { sector: 5200, data: patternBytes(64 * KiB, 4) },         // new data where P has none
    { sector: SIZE / S - 1, data: patternBytes(S, 5) },        // the last sector
  ] };
  const built = await writeSynthChain(nodeFileSystem, dir, [p, a], ['p.vhd', 'a.vhd']);
  const viewA = modelContent([p, a]);
  const q = viewP.slice();
  q.set(patternBytes(64 * KiB, 6), 1000 * S);                 // P's data rewritten, A unallocated there
  q.fill(0, 1500 * S, 1600 * S);                              // P's data removed where A shows it
  q.fill(0, 4096 * S, 4200 * S);
  q.set(patternBytes(32 * KiB, 7), 3000 * S);                 // new data under A's zeros over nothing
  q.set(patternBytes(128 * KiB, 8), 5800 * S);                // new data where A reads zeros
  q.set(patternBytes(16 * KiB, 10), 3500 * S);                // ... in a block neither P nor A holds
  q.set(viewA.slice(10 * S, 26 * S), 10 * S);                 // Q now holds exactly what A wrote there
  const qLayer: SynthLayer = { type: 'dynamic', virtualSize: SIZE, blockSize: 2 * MiB, writes: nonZeroWrites(q) };
  await writeSynthLayer(nodeFileSystem, path.join(dir, 'q.vhd'), qLayer, null);
  return { dir, p: built[0].path, a: built[1].path, q: path.join(dir, 'q.vhd'), viewA, viewP, viewQ: q };
}

const eq = (x: Uint8Array, y: Uint8Array) => Buffer.from(x).equals(Buffer.from(y));
const snapshot = (dir: string) => Object.fromEntries(readdirSync(dir).sort().map((n) => [n, readFileSync(path.join(dir, n)).toString('base64')]));

/** The result reads as `view` and stores exactly the sectors where `view` differs from `parentView`. */
async function expectExact(out: string, view: Uint8Array, parentView: Uint8Array): Promise<void> {
  expect(eq(await content(out), view), 'view').toBe(true);
  const stored = await storedSectors(out);
  expect(stored).toEqual(differingSectors(view, parentView));
  expect(zerosOverZeros(stored, view, parentView)).toEqual([]);
  expect(await emptyBlocks(out)).toEqual([]);
}

describe('rebase a child onto an updated template', () => {
  for (const threads of [0, 2]) {
    it(`--output (threads ${threads}): the same view, exactly the differing sectors, a new UUID, the link written as Hyper-V does; inputs untouched`, async () => {
      const sc = await scene();
      const before = snapshot(sc.dir);
      const out = path.join(sc.dir, 'a2.vhd');
      const r = await rebase(sc.a, sc.q, { output: out, threads });
      expect(snapshot(sc.dir)).toEqual({ ...before, 'a2.vhd': expect.any(String) });
      await expectExact(out, sc.viewA, sc.viewQ);
      const stored = await storedSectors(out);
      // Zeros the result stores over the new template's data (A read zeros there).
      expect(stored).toContain(5800);
      expect(stored).toContain(3500);
      expect(stored).toContain(3000);
      expect(stored).not.toContain(10); // Q already holds what A wrote there
      expect(stored).toContain(1500);    // P's data that Q removed, shown by A
      const inA = await info(sc.a);
      const inQ = await info(sc.q);
      const o = await info(out);
      expect(o.type).toBe('differencing');
      expect(o.uuid).not.toBe(inA.uuid);
      expect(o.parentUuid).toBe(inQ.uuid);
      expect(o.virtualSize).toBe(SIZE);
      expect(o.header!.parentTimestamp).toBe(vhdTimeToIso(dateToVhdTime(new Date(statSync(sc.q).mtimeMs))));
      expect(o.header!.parentUnicodeName).toBe('q.vhd');
      expect(o.locators.map((l) => [l.platform, l.path])).toEqual([['W2ku', sc.q], ['W2ru', '.\\q.vhd']]);
      expect(r).toMatchObject({
        path: sc.a, output: out, inPlace: false, inputType: 'differencing', dryRun: false, uuid: o.uuid, uuidKept: false,
        oldParent: { uuid: inA.parentUuid }, newParent: { path: sc.q, uuid: inQ.uuid }, virtualSize: SIZE, blockSize: 512 * KiB,
        originalSize: statSync(sc.a).size, newSize: statSync(out).size, blocks: o.allocatedBlocks,
      });
      expect(r.savedBytes).toBe(r.originalSize - r.newSize);
      expect(r.sectors.kept).toBe(stored.length);
      expect(r.sectors.kept + r.sectors.sameAsParent + r.sectors.zeroOverZero).toBe(r.sectors.examined);
      expect(r.verifiedBytes).toBeGreaterThan(0);
      expect((await compare(out, sc.a, { threads: 0 })).identical).toBe(true);
      expect((await runCli(['check', out])).code).toBe(0);
    });
  }

  it('in place: the UUID and file mode are kept, the disk\'s own child still opens and reads the same, nothing is left behind', async () => {
    const sc = await scene(64 * KiB);
    const g = path.join(sc.dir, 'g.vhd');
    const gLayer: SynthLayer = { type: 'differencing', virtualSize: SIZE, blockSize: 64 * KiB, writes: [{ sector: 20, data: patternBytes(4 * KiB, 9) }, { sector: 5900, data: new Uint8Array(2 * KiB) }] };
    await writeSynthLayer(nodeFileSystem, g, gLayer, { path: sc.a, uniqueId: (await info(sc.a)).uuid as never });
    const viewG = await content(g);
    chmodSync(sc.a, 0o640);
    const pBytes = readFileSync(sc.p);
    const qBytes = readFileSync(sc.q);
    const uuid = (await info(sc.a)).uuid;
    const r = await rebase(sc.a, sc.q, { threads: 1 });
    expect(r.inPlace).toBe(true);
    expect(r.uuidKept).toBe(true);
    expect(r.uuid).toBe(uuid);
    expect((await info(sc.a)).uuid).toBe(uuid);
    expect((await info(sc.a)).parentUuid).toBe((await info(sc.q)).uuid);
    await expectExact(sc.a, sc.viewA, sc.viewQ);
    expect(statSync(sc.a).mode & 0o777).toBe(0o640);
    expect(r.newSize).toBe(statSync(sc.a).size);
    // The grandchild names A by UUID: it still opens through A, now over Q, and reads the same.
    expect(eq(await content(g), viewG)).toBe(true);
    expect((await info(g)).chain.map((c) => path.basename(c.path))).toEqual(['g.vhd', 'a.vhd', 'q.vhd']);
    expect(readFileSync(sc.p).equals(pBytes)).toBe(true);
    expect(readFileSync(sc.q).equals(qBytes)).toBe(true);
    expect(readdirSync(sc.dir).sort()).toEqual(['a.vhd', 'g.vhd', 'p.vhd', 'q.vhd']);
  });

  it('the dry run changes nothing and predicts the real run: the same size, sectors and blocks', async () => {
    const sc = await scene();
    const before = snapshot(sc.dir);
    const dry = await rebase(sc.a, sc.q, { dryRun: true, threads: 0 });
    const dryOut = await rebase(sc.a, sc.q, { dryRun: true, threads: 0, output: path.join(sc.dir, 'x.vhd') });
    expect(snapshot(sc.dir)).toEqual(before);
    expect(dry.uuid).toBe((await info(sc.a)).uuid);
    expect(dryOut.uuid).toBeNull();
    expect(dry.verifiedBytes).toBe(0);
    const real = await rebase(sc.a, sc.q, { threads: 0 });
    for (const k of ['newSize', 'savedBytes', 'blocks', 'bytesWritten', 'sectors'] as const) expect(real[k], k).toEqual(dry[k]);
    expect(dryOut.newSize).toBe(real.newSize);
  });
});

describe('rebase onto parents of its own chain', () => {
  it('onto its own parent: no sector of the view changes; what both read from the parent\'s file is not read at all', async () => {
    const sc = await scene();
    const out = path.join(sc.dir, 'same.vhd');
    const r = await rebase(sc.a, sc.p, { output: out, threads: 0 });
    await expectExact(out, sc.viewA, sc.viewP);
    // P's sectors that A does not store itself: both views read them from p.vhd at the same offset.
    const inA = new Set(await storedSectors(sc.a));
    const shared = (await storedSectors(sc.p)).filter((x) => !inA.has(x) && x < SIZE / S);
    expect(r.sectors.shared).toBe(shared.length);
    expect(r.sectors.examined).toBeLessThan(SIZE / S - shared.length);
  });

  it('onto an update layer above its own base: shared base sectors are left unread, the result is exact', async () => {
    const sc = await scene();
    const u = path.join(sc.dir, 'update.vhd');
    const upd: SynthLayer = { type: 'differencing', virtualSize: SIZE, blockSize: 512 * KiB, writes: [
      { sector: 1000, data: patternBytes(64 * KiB, 30) }, { sector: 1500, data: new Uint8Array(16 * KiB) }, { sector: 5900, data: patternBytes(8 * KiB, 31) },
    ] };
    await writeSynthLayer(nodeFileSystem, u, upd, { path: sc.p, uniqueId: (await info(sc.p)).uuid as never });
    const viewU = await content(u);
    const out = path.join(sc.dir, 'a-on-update.vhd');
    const r = await rebase(sc.a, u, { output: out, threads: 1 });
    await expectExact(out, sc.viewA, viewU);
    expect(r.sectors.shared).toBeGreaterThan(1000);
    expect((await info(out)).chain.map((c) => path.basename(c.path))).toEqual(['a-on-update.vhd', 'update.vhd', 'p.vhd']);
  });

  it('a depth-3 chain onto its base: the middle layer is folded in, the view kept', async () => {
    const sc = await scene();
    const b: SynthLayer = { type: 'differencing', virtualSize: SIZE, blockSize: 128 * KiB, writes: [{ sector: 12, data: patternBytes(2 * KiB, 11) }, { sector: 600, data: new Uint8Array(4 * KiB) }] };
    const bPath = path.join(sc.dir, 'b.vhd');
    await writeSynthLayer(nodeFileSystem, bPath, b, { path: sc.a, uniqueId: (await info(sc.a)).uuid as never });
    const viewB = await content(bPath);
    const out = path.join(sc.dir, 'b2.vhd');
    const r = await rebase(bPath, sc.p, { output: out, threads: 1 });
    expect(r.blockSize).toBe(128 * KiB);
    await expectExact(out, viewB, sc.viewP);
    expect((await info(out)).chain.length).toBe(2);
  });
});

describe('the import path: a full copy becomes a child of the template', () => {
  it('a dynamic full copy and a fixed one, with --output and in place; the space saved is reported', async () => {
    const sc = await scene();
    for (const type of ['dynamic', 'fixed'] as const) {
      const full = path.join(sc.dir, `full-${type}.vhd`);
      await convert(sc.a, full, { type, threads: 0 });
      const fullUuid = (await info(full)).uuid;
      // Onto the template it came from: a small child, the space saved reported.
      const out = path.join(sc.dir, `user-${type}.vhd`);
      const r = await rebase(full, sc.p, { output: out, threads: 0 });
      expect(r.inputType).toBe(type);
      await expectExact(out, sc.viewA, sc.viewP);
      expect(r.savedBytes).toBe(statSync(full).size - statSync(out).size);
      expect(r.savedBytes).toBeGreaterThan(type === 'fixed' ? MiB : 0);
      // In place, onto the updated template: the file becomes a differencing disk with the same UUID.
      const inPlace = await rebase(full, sc.q, { threads: 0 });
      expect(inPlace.uuid).toBe(fullUuid);
      expect((await info(full)).type).toBe('differencing');
      expect((await info(full)).uuid).toBe(fullUuid);
      await expectExact(full, sc.viewA, sc.viewQ);
    }
  });

  it('a raw image (raw by content, whatever its name), with --output only', async () => {
    const sc = await scene();
    for (const name of ['user.img', 'user.raw', 'user.bin']) {
      const raw = path.join(sc.dir, name);
      writeFileSync(raw, sc.viewA);
      const out = path.join(sc.dir, `${name}.vhd`);
      const r = await rebase(raw, sc.q, { output: out, threads: 0 });
      expect(r).toMatchObject({ inputType: 'raw', inPlace: false, oldParent: null, originalSize: SIZE, blockSize: 2 * MiB });
      await expectExact(out, sc.viewA, sc.viewQ);
      const e = await rebase(raw, sc.q, { threads: 0 }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(VhdToolError);
      expect((e as VhdToolError).code).toBe('USAGE');
      expect(readFileSync(raw).equals(Buffer.from(sc.viewA))).toBe(true);
    }
  });
});

/** Expects `fn` to reject with `code` and the directory to be exactly as before. */
async function refused(dir: string, code: string, pattern: RegExp, fn: () => Promise<unknown>): Promise<void> {
  const before = snapshot(dir);
  const e = await fn().catch((x: unknown) => x);
  expect(e, String(e)).toBeInstanceOf(VhdToolError);
  expect((e as VhdToolError).code).toBe(code);
  expect((e as VhdToolError).message).toMatch(pattern);
  expect(snapshot(dir)).toEqual(before);
}

describe('refusals: one line, a documented code, nothing changed', () => {
  it('a new parent of another size: smaller, or larger with data past the disk\'s end; larger with zeros there is fine', async () => {
    const sc = await scene();
    const write = async (name: string, size: number, extra: SynthWrite[]) => {
      const l: SynthLayer = { type: 'dynamic', virtualSize: size, blockSize: 512 * KiB, writes: [...nonZeroWrites(sc.viewQ), ...extra] };
      await writeSynthLayer(nodeFileSystem, path.join(sc.dir, name), l, null);
      return path.join(sc.dir, name);
    };
    const bigZero = await write('big0.vhd', SIZE + 2 * MiB, []);
    const bigData = await write('big1.vhd', SIZE + 2 * MiB, [{ sector: SIZE / S + 3000, data: patternBytes(S, 12) }]);
    const small = await write('small.vhd', SIZE - 3 * S, []);
    await refused(sc.dir, 'REFUSED', new RegExp(`larger than .* holds data past its end \\(at byte ${SIZE + 3000 * S}\\)`), () => rebase(sc.a, bigData, { output: path.join(sc.dir, 'x.vhd'), threads: 0 }));
    await refused(sc.dir, 'REFUSED', /smaller than/, () => rebase(sc.a, small, { threads: 0 }));
    const out = path.join(sc.dir, 'ok.vhd');
    await rebase(sc.a, bigZero, { output: out, threads: 0 });
    expect((await info(out)).virtualSize).toBe(SIZE);
    await expectExact(out, sc.viewA, sc.viewQ);
  });

  it('a cycle: the disk itself (by any name), a descendant of it, a copy carrying its UUID', async () => {
    const sc = await scene();
    const child = path.join(sc.dir, 'child-of-a.vhd');
    await writeSynthLayer(nodeFileSystem, child, { type: 'differencing', virtualSize: SIZE, blockSize: 512 * KiB, writes: [] }, { path: sc.a, uniqueId: (await info(sc.a)).uuid as never });
    const linked = path.join(sc.dir, 'a-link.vhd');
    linkSync(sc.a, linked);
    const sym = path.join(sc.dir, 'a-sym.vhd');
    symlinkSync(sc.a, sym);
    const copyDir = tempDir();
    copyFileSync(sc.a, path.join(copyDir, 'a-copy.vhd'));
    copyFileSync(sc.p, path.join(copyDir, 'p.vhd'));
    for (const onto of [sc.a, linked, sym]) await refused(sc.dir, 'CHAIN_CYCLE', /the new parent is .* itself/, () => rebase(sc.a, onto, { threads: 0 }));
    await refused(sc.dir, 'CHAIN_CYCLE', /contains the disk being rebased \(.*a\.vhd is .*\)/, () => rebase(sc.a, child, { threads: 0 }));
    await refused(sc.dir, 'CHAIN_CYCLE', /carries .* UUID/, () => rebase(sc.a, path.join(copyDir, 'a-copy.vhd'), { output: path.join(sc.dir, 'x.vhd'), threads: 0 }));
    expect((await runCli(['rebase', sc.a, '--onto', child])).code).toBe(5);
  });

  it('a disk or a new parent in saved state', async () => {
    const sc = await scene();
    const saved = path.join(sc.dir, 'q-saved.vhd');
    copyFileSync(sc.q, saved);
    patchFooter(saved, (f) => ({ ...f, savedState: 1 }));
    await refused(sc.dir, 'SAVED_STATE', /saved state/, () => rebase(sc.a, saved, { threads: 0 }));
    patchFooter(sc.a, (f) => ({ ...f, savedState: 1 }));
    await refused(sc.dir, 'SAVED_STATE', /saved state/, () => rebase(sc.a, sc.q, { threads: 0 }));
    const r = await runCli(['rebase', sc.a, '--onto', sc.q]);
    expect(r.code).toBe(6);
    expect(r.err).toEqual([`vhdtool: ${sc.a}: disk is in saved state (a virtual machine was saved with it attached); resume and shut down the VM first`]);
  });

  it('an existing --output without --force, and an --output that is an input', async () => {
    const sc = await scene();
    const out = path.join(sc.dir, 'exists.vhd');
    writeFileSync(out, 'keep me');
    await refused(sc.dir, 'OUTPUT_EXISTS', /already exists/, () => rebase(sc.a, sc.q, { output: out, threads: 0 }));
    await refused(sc.dir, 'OUTPUT_IS_INPUT', /output is an input/, () => rebase(sc.a, sc.q, { output: sc.q, threads: 0 }));
    await refused(sc.dir, 'OUTPUT_IS_INPUT', /output is an input/, () => rebase(sc.a, sc.q, { output: sc.p, force: true, threads: 0 }));
    await rebase(sc.a, sc.q, { output: out, force: true, threads: 0 });
    await expectExact(out, sc.viewA, sc.viewQ);
  });
});

/** A process holding `file` open (as a running VM would), until killed. */
async function holdOpen(file: string): Promise<ChildProcess> {
  const c = spawn('sh', ['-c', 'exec 3<"$1"; exec sleep 120', 'sh', file], { stdio: 'ignore' });
  const real = realpathSync(file);
  for (let i = 0; i < 300; i++) {
    try {
      if (readdirSync(`/proc/${c.pid}/fd`).some((fd) => { try { return readlinkSync(`/proc/${c.pid}/fd/${fd}`) === real; } catch { return false; } })) return c;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 10));
  }
  c.kill('SIGKILL');
  throw new Error('holder did not open the file');
}

describe('in place, as compact: the lock, a disk open elsewhere, temporaries of killed runs', () => {
  it.skipIf(!existsSync('/proc/self/fd'))('a disk open in another process is refused (exit 6), and so is one another vhdtool holds', async () => {
    const sc = await scene();
    const holder = await holdOpen(sc.a);
    try {
      await refused(sc.dir, 'LOCKED', new RegExp(`open in another process \\(pid ${holder.pid}\\)`), () => rebase(sc.a, sc.q, { threads: 0 }));
    } finally {
      holder.kill('SIGKILL');
    }
    // A live vhdtool's lock (this very process stands for it).
    const lock = path.join(sc.dir, '.a.vhd.vhdtool.lock');
    writeFileSync(lock, `${process.pid} ${hostname()}\n`);
    await refused(sc.dir, 'LOCKED', /locked by another vhdtool/, () => rebase(sc.a, sc.q, { threads: 0 }));
    rmSync(lock);
    // With --output DISK is only read: neither matters.
    await rebase(sc.a, sc.q, { output: path.join(sc.dir, 'out.vhd'), threads: 0 });
  });

  it('a killed run\'s temporary and lock are removed by the next run, which reports them', async () => {
    const sc = await scene();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const pid = Number(dead.stdout.toString());
    const temp = path.join(sc.dir, `.a.vhd.vhdtool-${pid}-k1ll3d.tmp`);
    writeFileSync(temp, 'half a disk');
    writeFileSync(path.join(sc.dir, '.a.vhd.vhdtool.lock'), `${pid} ${hostname()}\n`);
    const r = await rebase(sc.a, sc.q, { threads: 0 });
    expect(r.removedTemporaries).toEqual([temp]);
    expect(readdirSync(sc.dir).sort()).toEqual(['a.vhd', 'p.vhd', 'q.vhd']);
    await expectExact(sc.a, sc.viewA, sc.viewQ);
  });
});

describe('raw images are recognised by content, and only rebase takes them', () => {
  it('other commands say "not a VHD" (exit 4); rebase refuses other image formats, broken VHDs and odd sizes', async () => {
    const sc = await scene();
    const raw = path.join(sc.dir, 'disk.img');
    writeFileSync(raw, sc.viewA);
    for (const args of [['info', raw], ['check', raw], ['compact', raw], ['compare', raw, sc.a], ['cat', raw], ['convert', raw, path.join(sc.dir, 'c.vhd')]]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(args[0] === 'check' ? 1 : 4);
      expect(r.err.join('\n') + r.out.join('\n'), args.join(' ')).toMatch(/not a VHD/);
    }
    const qcow = path.join(sc.dir, 'disk.qcow2');
    writeFileSync(qcow, Buffer.concat([Buffer.from('QFI\xfb', 'latin1'), Buffer.alloc(SIZE - 4)]));
    const vdi = path.join(sc.dir, 'disk.vdi');
    const vdiBytes = Buffer.alloc(SIZE);
    vdiBytes.writeUInt32LE(0xbeda107f, 0x40);
    writeFileSync(vdi, vdiBytes);
    const odd = path.join(sc.dir, 'odd.img');
    writeFileSync(odd, Buffer.alloc(SIZE - 100, 1));
    const broken = path.join(sc.dir, 'broken.vhd');
    copyFileSync(sc.a, broken);
    patchFooter(broken, (f) => ({ ...f, checksum: f.checksum ^ 1 }), { reseal: false, copy: false });
    const fixedBroken = path.join(sc.dir, 'fixed-broken.vhd');
    await convert(sc.a, fixedBroken, { type: 'fixed', threads: 0 });
    patchFooter(fixedBroken, (f) => ({ ...f, currentSize: f.currentSize + 512 }), { reseal: true });
    for (const [file, pattern] of [[qcow, /is a qcow image/], [vdi, /VDI/], [odd, /not a multiple of 512/], [broken, /checksum/], [fixedBroken, /truncated/]] as const) {
      const r = await runCli(['rebase', file, '--onto', sc.q, '--output', path.join(sc.dir, 'o.vhd')]);
      expect(r.code, file).toBe(4);
      expect(r.err, file).toHaveLength(1);
      expect(r.err[0], file).toMatch(pattern);
      expect(existsSync(path.join(sc.dir, 'o.vhd'))).toBe(false);
    }
    const noOut = await runCli(['rebase', raw, '--onto', sc.q]);
    expect(noOut.code).toBe(2);
    expect(noOut.err).toEqual([`vhdtool: ${raw}: is a raw disk image, which cannot be rebased in place; name the new disk with --output`]);
    expect((await runCli(['rebase', raw, '--onto', sc.q, '--parent', sc.p, '-o', path.join(sc.dir, 'o.vhd')])).code).toBe(2);
  });
});

describe('interruption', () => {
  for (const inPlace of [true, false]) {
    it(`an abort mid-run stops it: INTERRUPTED, the disk untouched, no temporary left (${inPlace ? 'in place' : '--output'})`, async () => {
      const sc = await scene(64 * KiB);
      const before = snapshot(sc.dir);
      const ac = new AbortController();
      let advanced = 0;
      const progress = { start() {}, done() {}, advance() { if (++advanced === 3) ac.abort(); } };
      const out = inPlace ? undefined : path.join(sc.dir, 'out.vhd');
      const e = await rebase(sc.a, sc.q, { output: out, threads: 1, progress, signal: ac.signal }).catch((x: unknown) => x);
      expect((e as VhdToolError).code).toBe('INTERRUPTED');
      expect(snapshot(sc.dir)).toEqual(before);
    });
  }
});

describe('progress', () => {
  it('measures the real work: each phase advances exactly to its total (rebase\'s writing and proving, compact\'s and merge\'s writing)', async () => {
    const sc = await scene(64 * KiB);
    const phases: Array<{ label: string; total: number; done: number }> = [];
    const progress = {
      start(label: string, total: number) { phases.push({ label, total, done: 0 }); },
      advance(n: number) { phases[phases.length - 1].done += n; },
      done() {},
    };
    await rebase(sc.a, sc.q, { output: path.join(sc.dir, 'r.vhd'), threads: 1, progress });
    const { compact } = await import('../../src/ops/compact.js');
    await compact(sc.a, { output: path.join(sc.dir, 'c.vhd'), threads: 1, progress });
    const { merge } = await import('../../src/ops/merge.js');
    await merge(sc.a, sc.p, path.join(sc.dir, 'm.vhd'), { threads: 1, progress });
    const measured = phases.filter((p) => p.total > 0);
    expect(measured.map((p) => p.label)).toEqual(['writing', 'proving', 'writing', 'writing']);
    for (const p of measured) expect(p.done, p.label).toBe(p.total);
    // Rebase's writing goes over every block either view holds data in; compact's over the child's blocks only.
    expect(measured[0].total).toBeGreaterThan(measured[2].total);
  });
});

describe('vhdtool rebase on the command line', () => {
  it('--json prints the documented shape; the text form names the output, the sectors and the space saved', async () => {
    const sc = await scene();
    const out = path.join(sc.dir, 'user.vhd');
    const r = await runCli(['rebase', sc.a, '--onto', sc.q, '--output', out, '--json', '--threads', '0']);
    expect(r.code, r.err.join('\n')).toBe(0);
    const j = JSON.parse(r.out.join('\n')) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(['path', 'output', 'inPlace', 'inputType', 'dryRun', 'uuid', 'uuidKept', 'oldParent', 'newParent',
      'virtualSize', 'blockSize', 'originalSize', 'newSize', 'savedBytes', 'sectors', 'blocks', 'bytesWritten', 'verifiedBytes',
      'removedTemporaries', 'durationMs']);
    expect(Object.keys(j.sectors as object)).toEqual(['examined', 'kept', 'sameAsParent', 'zeroOverZero', 'shared']);
    expect(Object.keys(j.newParent as object)).toEqual(['path', 'uuid', 'timestamp']);
    const t = await runCli(['rebase', sc.a, '--onto', sc.q, '--dry-run']);
    expect(t.code).toBe(0);
    expect(t.out.join('\n')).toMatch(/would hold .* differ from the new parent and are kept.* (saves|grows by) \d+ bytes/s);
    const missing = await runCli(['rebase', sc.a]);
    expect(missing.code).toBe(2);
    expect(missing.err.join(' ')).toMatch(/--onto/);
  });
});
