/**
 * Opening a chain: open the leaf, then follow parent links until a fixed or
 * dynamic base, checking each link by UUID and refusing cycles and absurd
 * depth.
 */
import * as path from 'node:path';
import { VhdToolError, fromSystemError } from '../errors.js';
import type { FileSystem } from '../io/fsys.js';
import { openVhd, type OpenMode, type Vhd } from '../vhd/image.js';
import type { Uuid } from '../format/index.js';
import { parentCandidates, type Candidate } from './candidates.js';
import type { Chain, Layer } from './chain.js';

export const DEFAULT_MAX_DEPTH = 128;

export interface OpenChainOptions {
  /** Path of the leaf's parent, overriding locators and the parent name. */
  parent?: string;
  /** How messages name where `parent` came from (default "--parent"; merge says "PARENT argument"). */
  parentSource?: string;
  mode?: OpenMode;
  /** Mode for the leaf only (default: `mode`). */
  leafMode?: OpenMode;
  /** Longest chain accepted, counting the leaf. */
  maxDepth?: number;
  /** More places to look for a parent with a given UUID (maintain's index of its roots). */
  extraCandidates?: (uuid: Uuid) => string[];
}

export async function openChain(fs: FileSystem, leafPath: string, opts: OpenChainOptions = {}): Promise<Chain> {
  const mode = opts.mode ?? 'strict';
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  const layers: Layer[] = [];
  const closeAll = async () => {
    for (const l of layers) await l.vhd.close().catch(() => undefined);
  };
  try {
    layers.push(await openLayer(fs, leafPath, opts.leafMode ?? mode));
    for (;;) {
      const child = layers[layers.length - 1];
      if (child.meta.type !== 'differencing') break;
      if (layers.length >= maxDepth) {
        throw new VhdToolError('CHAIN_TOO_DEEP', `chain is deeper than ${maxDepth} layers; refusing to follow it further`, leafPath);
      }
      const want = child.meta.header!.parentUniqueId!;
      const candidates: Candidate[] = layers.length === 1 && opts.parent !== undefined
        ? [{ path: path.resolve(opts.parent), source: opts.parentSource ?? '--parent' }]
        : parentCandidates(child.path, child.meta.locators, child.meta.header!.parentUnicodeName);
      if (opts.extraCandidates && !(layers.length === 1 && opts.parent !== undefined)) {
        for (const p of opts.extraCandidates(want)) {
          const abs = path.resolve(p);
          if (!candidates.some((c) => c.path === abs)) candidates.push({ path: abs, source: 'search roots' });
        }
      }
      layers.push(await findParent(fs, child, want, candidates, layers, mode));
    }
    return { layersLeafFirst: layers, close: closeAll };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

async function openLayer(fs: FileSystem, p: string, mode: OpenMode): Promise<Layer> {
  const vhd = await openVhd(fs, p, { mode });
  try {
    const realPath = await fs.realpath(p);
    const st = await fs.stat(p);
    return { path: p, realPath, dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, vhd, meta: vhd.meta, parentFoundBy: null };
  } catch (e) {
    await vhd.close();
    throw fromSystemError(e, p, false);
  }
}

async function findParent(fs: FileSystem, child: Layer, want: Uuid, candidates: Candidate[], layers: Layer[], mode: OpenMode): Promise<Layer> {
  const tried: string[] = [];
  let mismatch = false;
  let broken: VhdToolError | null = null;
  for (const c of candidates) {
    let st;
    try {
      st = await fs.stat(c.path);
    } catch {
      tried.push(`${c.path} (${c.source}: not found)`);
      continue;
    }
    if (!st.isFile) {
      tried.push(`${c.path} (${c.source}: not a file)`);
      continue;
    }
    const loop = layers.find((l) => l.dev === st.dev && l.ino === st.ino);
    if (loop) {
      const msg = loop === child
        ? `disk names itself as its own parent (via ${c.source} ${c.path})`
        : `chain loops: the parent of ${child.path} is ${loop.path} again (via ${c.source})`;
      throw new VhdToolError('CHAIN_CYCLE', msg, layers[0].path);
    }
    let vhd: Vhd;
    try {
      vhd = await openVhd(fs, c.path, { mode });
    } catch (e) {
      const err = e instanceof VhdToolError ? e : fromSystemError(e, c.path, false);
      if (err.code === 'INTERNAL') throw err; // a bug, not a bad candidate: do not hide it behind "parent not found"
      tried.push(`${c.path} (${c.source}: ${err.message})`);
      if (!broken) broken = err;
      continue;
    }
    const got = vhd.meta.footer.uniqueId;
    if (got !== want) {
      await vhd.close();
      mismatch = true;
      tried.push(`${c.path} (${c.source}: UUID ${got})`);
      continue;
    }
    if (layers.some((l) => l.meta.footer.uniqueId === got)) {
      await vhd.close();
      throw new VhdToolError('CHAIN_CYCLE', `chain loops: UUID ${got} appears twice`, layers[0].path);
    }
    const realPath = await fs.realpath(c.path);
    child.parentFoundBy = c.source;
    return { path: c.path, realPath, dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, vhd, meta: vhd.meta, parentFoundBy: null };
  }
  const where = tried.length ? `; tried ${tried.join(', ')}` : '; no locator or parent name to follow';
  if (mismatch) {
    throw new VhdToolError('PARENT_MISMATCH', `parent UUID mismatch: ${child.path} expects parent ${want}${where}`, child.path, { expected: want, tried });
  }
  if (broken && tried.length === 1) throw broken;
  throw new VhdToolError('PARENT_NOT_FOUND', `parent ${want} not found${where}`, child.path, { expected: want, tried });
}
