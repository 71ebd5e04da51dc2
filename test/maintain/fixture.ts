/**
 * A storage tree for the maintain tests: real VHD files written by the
 * synthesizer, with the guest content of every disk known from the layer
 * descriptions alone (modelContent), independent of vhdtool's reader.
 *
 *   golden/   golden.vhd (dynamic) <- vm1.vhd, vm2.vhd, vm3.vhd <- vm3-snap.avhd   (a parent with many children)
 *   solo/     data.vhd (dynamic, with all-zero blocks)
 *   fixed/    base.vhd (fixed) <- child.vhd
 *   deep/     base.vhd <- l1.vhd <- l2.vhd <- ... <- l6.vhd                      (6 differencing layers)
 *   broken/   missing/child.vhd       (its parent was deleted)
 *             mismatch/child.vhd      (base.vhd there is another disk, another UUID)
 *             cparent/child.vhd       (its parent cparent/base.vhd is corrupt)
 *             corrupt.vhd             (header checksum broken)
 *             garbage.vhd             (not a VHD at all)
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { nodeFileSystem as fs } from '../../src/io/fsys.js';
import { decodeFooter, encodeFooter, sealFooter, FOOTER_SIZE } from '../../src/format/index.js';
import { modelContent, writeSynthLayer, type BuiltLayer, type SynthLayer, type SynthWrite } from '../../src/synth/build.js';

export const BS = 64 * 1024;
export const VSIZE = 4 * 1024 * 1024;
const SPB = BS / 512;

/** Deterministic bytes. */
export function pattern(seed: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Whole block `block` filled from `seed` (0 = zeros). */
export function block(blockIndex: number, seed: number): SynthWrite {
  return { sector: blockIndex * SPB, data: seed === 0 ? new Uint8Array(BS) : pattern(seed, BS) };
}

export function sectors(first: number, count: number, seed: number): SynthWrite {
  return { sector: first, data: pattern(seed, count * 512) };
}

const dyn = (writes: SynthWrite[]): SynthLayer => ({ type: 'dynamic', virtualSize: VSIZE, blockSize: BS, writes });
const diff = (writes: SynthWrite[]): SynthLayer => ({ type: 'differencing', virtualSize: VSIZE, blockSize: BS, writes });

export interface DiskModel {
  path: string;
  uuid: string;
  /** Layers base first, ending with this disk. */
  layers: SynthLayer[];
}

export interface Storage {
  root: string;
  /** Every healthy disk, by path. */
  disks: Map<string, DiskModel>;
  /** Files a run must leave byte for byte as they are. */
  broken: string[];
  /** Paths of the deep chain, base first. */
  deep: string[];
  leaves: string[];
}

async function put(s: Storage, file: string, layer: SynthLayer, parent: DiskModel | null): Promise<DiskModel> {
  mkdirSync(path.dirname(file), { recursive: true });
  const pb: BuiltLayer | null = parent ? { path: parent.path, uniqueId: parent.uuid as BuiltLayer['uniqueId'] } : null;
  const built = await writeSynthLayer(fs, file, layer, pb);
  const m: DiskModel = { path: file, uuid: built.uniqueId, layers: [...(parent?.layers ?? []), layer] };
  s.disks.set(file, m);
  return m;
}

/** Flips one byte of the dynamic header's checksum field (it no longer matches). */
export function corruptHeader(file: string): void {
  const b = readFileSync(file);
  b[512 + 39] ^= 0x5a;
  writeFileSync(file, b);
}

/** Sets the footer's saved-state byte (both copies), keeping the checksums right. */
export function setSavedState(file: string): void {
  const b = readFileSync(file);
  const end = b.length - FOOTER_SIZE;
  const f = decodeFooter(b.subarray(end));
  const enc = encodeFooter(sealFooter({ ...f, savedState: 1 }));
  b.set(enc, end);
  if (f.diskType !== 'fixed') b.set(enc, 0);
  writeFileSync(file, b);
}

export interface BuildOptions {
  broken?: boolean;
  /** Build only some families. */
  only?: Array<'golden' | 'solo' | 'fixed' | 'deep'>;
  /** Prefix of the family folders (several copies in one root). */
  prefix?: string;
}

export async function buildStorage(root: string, opts: BuildOptions = {}): Promise<Storage> {
  const s: Storage = { root, disks: new Map(), broken: [], deep: [], leaves: [] };
  const want = (f: string) => !opts.only || opts.only.includes(f as never);
  const d = (...p: string[]) => path.join(root, (opts.prefix ?? '') + p[0], ...p.slice(1));

  if (want('golden')) {
    const g = await put(s, d('golden', 'golden.vhd'), dyn([block(0, 1), block(1, 2), block(2, 3), block(3, 4), block(5, 6), block(6, 7), block(10, 0)]), null);
    // vm1: blocks 0-1 rewritten with what the parent holds (redundant), block 20 new.
    const vm1 = await put(s, d('golden', 'vm1.vhd'), diff([block(0, 1), block(1, 2), block(20, 21)]), g);
    // vm2: zeros over zeros (block 30), and a few sectors changed in block 3.
    const vm2 = await put(s, d('golden', 'vm2.vhd'), diff([block(30, 0), sectors(3 * SPB + 5, 3, 33)]), g);
    const vm3 = await put(s, d('golden', 'vm3.vhd'), diff([block(5, 55)]), g);
    // vm3-snap: block 5 again as vm3 has it (redundant), block 6 new.
    const snap = await put(s, d('golden', 'vm3-snap.avhd'), diff([block(5, 55), block(6, 66)]), vm3);
    s.leaves.push(vm1.path, vm2.path, snap.path);
  }
  if (want('solo')) {
    const solo = await put(s, d('solo', 'data.vhd'), dyn([block(0, 100), block(4, 0), block(8, 0), block(9, 101), block(12, 0)]), null);
    s.leaves.push(solo.path);
  }
  if (want('fixed')) {
    const fb = await put(s, d('fixed', 'base.vhd'), { type: 'fixed', virtualSize: VSIZE, writes: [block(0, 200), block(1, 201)] }, null);
    const fc = await put(s, d('fixed', 'child.vhd'), diff([block(1, 201), block(7, 207)]), fb);
    s.leaves.push(fc.path);
  }
  if (want('deep')) {
    let prev = await put(s, d('deep', 'base.vhd'), dyn([block(0, 300), block(1, 301)]), null);
    s.deep.push(prev.path);
    for (let i = 1; i <= 6; i++) {
      // Each layer changes a few sectors; l6 also rewrites block 1 as the base has it.
      const w = [sectors(i * 7, 2, 310 + i), block(2 + i, 320 + i)];
      if (i === 6) w.push(block(1, 301));
      prev = await put(s, d('deep', `l${i}.vhd`), diff(w), prev);
      s.deep.push(prev.path);
    }
    s.leaves.push(prev.path);
  }
  if (opts.broken) {
    const b = (...p: string[]) => d('broken', ...p);
    // A child whose parent is gone.
    const mb = await put(s, b('missing', 'base.vhd'), dyn([block(0, 400)]), null);
    const mc = await put(s, b('missing', 'child.vhd'), diff([block(1, 401)]), mb);
    unlinkSync(mb.path);
    s.disks.delete(mb.path);
    s.disks.delete(mc.path);
    s.broken.push(mc.path);
    // A child whose parent file is now another disk.
    const xb = await put(s, b('mismatch', 'base.vhd'), dyn([block(0, 410)]), null);
    const xc = await put(s, b('mismatch', 'child.vhd'), diff([block(0, 410), block(1, 411)]), xb);
    unlinkSync(xb.path);
    s.disks.delete(xb.path);
    s.disks.delete(xc.path);
    await put(s, b('mismatch', 'base.vhd'), dyn([block(2, 412)]), null);
    s.broken.push(xc.path);
    // A child whose parent is corrupt.
    const cb = await put(s, b('cparent', 'base.vhd'), dyn([block(0, 420)]), null);
    const cc = await put(s, b('cparent', 'child.vhd'), diff([block(0, 420), block(1, 421)]), cb);
    corruptHeader(cb.path);
    s.disks.delete(cb.path);
    s.disks.delete(cc.path);
    s.broken.push(cb.path, cc.path);
    // Corrupt, and not a VHD at all.
    const co = await put(s, b('corrupt.vhd'), dyn([block(0, 0), block(3, 430)]), null);
    corruptHeader(co.path);
    s.disks.delete(co.path);
    writeFileSync(b('garbage.vhd'), pattern(440, 3000));
    s.broken.push(co.path, b('garbage.vhd'));
  }
  return s;
}

export function modelOf(m: DiskModel): Uint8Array {
  return modelContent(m.layers);
}

/** sha256, size, inode and mtime of every file under `dir`. */
export function snapshotFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string) => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const f = path.join(p, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.isFile()) {
        const st = statSync(f);
        out.set(f, `${createHash('sha256').update(readFileSync(f)).digest('hex')} ${st.size} ${st.ino} ${st.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out;
}

export function sha256File(f: string): string {
  return createHash('sha256').update(readFileSync(f)).digest('hex');
}

/** A minimal validator of the Prometheus text exposition format; returns samples by "name{labels}". */
export function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  const helped = new Set<string>();
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (m) {
      if (m[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3])) throw new Error(`bad type: ${line}`);
        if (typed.has(m[2])) throw new Error(`TYPE twice: ${m[2]}`);
        typed.add(m[2]);
      } else helped.add(m[2]);
      continue;
    }
    if (line.startsWith('#')) continue;
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${JSON.stringify(line)}`);
    if (!typed.has(m[1])) throw new Error(`sample before its TYPE: ${m[1]}`);
    const v = Number(m[4]);
    if (Number.isNaN(v) && m[4] !== 'NaN') throw new Error(`bad value: ${line}`);
    const key = `${m[1]}{${m[3] ?? ''}}`;
    if (samples.has(key)) throw new Error(`duplicate sample: ${key}`);
    samples.set(key, v);
  }
  for (const t of typed) if (!helped.has(t)) throw new Error(`no HELP for ${t}`);
  return samples;
}
