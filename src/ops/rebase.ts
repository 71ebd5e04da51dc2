/**
 * `rebase DISK --onto NEWPARENT`: DISK's guest view, byte for byte, as a
 * differencing disk linked to NEWPARENT, holding exactly the sectors where
 * the two views differ (a zero sector only where NEWPARENT reads non-zero).
 *
 * DISK is any disk: a differencing disk with its chain, a dynamic or fixed
 * disk, or a raw image. In place (a VHD, no --output) the file is replaced
 * atomically and keeps its UUID, so DISK's own children stay valid; with
 * --output (always for a raw image) a new disk with a new UUID is written.
 *
 * It is compact's pipeline (planner -> workers -> executor) over a composite
 * chain: DISK's layers, then NEWPARENT's. The source is DISK's whole view
 * (sourceCount = DISK's layers), the reference NEWPARENT's view, and blocks
 * where only NEWPARENT holds data are visited too (visitReference): there
 * DISK reads zeros that the output must store.
 *
 * What proves the result before it replaces anything:
 *  1. while writing, every stored block is re-read and compared with DISK's
 *     view (ContentVerifier): a sector whose bit is 1 holds DISK's bytes;
 *  2. after the fsync, the file re-opens strictly and its BAT and bitmaps
 *     are the ones written (verifyStructure);
 *  3. then every other sector, where the output lets NEWPARENT show through,
 *     is compared between the output's view over NEWPARENT (read back from
 *     the new file's own bitmaps) and DISK's view (compareViews), reading
 *     only where either side holds data.
 * Together: the new file over NEWPARENT shows DISK's view at every sector.
 */
import * as path from 'node:path';
import { VhdToolError } from '../errors.js';
import { dateToVhdTime, newUuid, vhdTimeToIso, DEFAULT_BLOCK_SIZE, NULL_UUID, SECTOR, type Footer } from '../format/index.js';
import type { FileSystem } from '../io/fsys.js';
import { cleanStaleTemps } from '../io/atomic.js';
import { lockDisk, type DiskLock } from '../io/lock.js';
import { pidsHolding } from '../io/inUse.js';
import type { Chain, Layer } from '../chain/chain.js';
import { openChain } from '../chain/openChain.js';
import { openDiskOrRaw } from '../chain/openDisk.js';
import { ChainResolver } from '../chain/resolve.js';
import type { RewriteSpec } from '../plan/units.js';
import type { TaskRunner } from '../parallel/pool.js';
import { dryRunRewrite, writeRewrite, type OutputPlan } from '../exec/output.js';
import type { RewriteStats } from '../exec/rewrite.js';
import { compareViews } from '../exec/viewProof.js';
import { hyperVLocators, newFooter, newHeader } from '../vhd/build.js';
import { openVhd } from '../vhd/image.js';
import { noopProgress, type ProgressSink } from '../progress.js';
import { refuseExisting, refuseOutputIsInput, requireOutputDir } from './outputs.js';
import { assertUnchanged, refuseSavedState, resolveBase, unitSectorsFor, withBitmapCheck, type OpBase, type Resolved } from './common.js';

export interface RebaseOptions extends OpBase {
  /** DISK's parent, overriding its locators (a differencing DISK only). */
  parent?: string;
  /** Write the result here and leave DISK untouched (required for a raw image). */
  output?: string;
  /** Replace an existing --output. */
  force?: boolean;
  dryRun?: boolean;
}

export interface RebaseResult {
  path: string;
  output: string;
  inPlace: boolean;
  /** What DISK was. */
  inputType: 'raw' | 'fixed' | 'dynamic' | 'differencing';
  dryRun: boolean;
  /** The result's UUID: DISK's own in place; a new one otherwise (null in a dry run with --output). */
  uuid: string | null;
  uuidKept: boolean;
  /** DISK's parent before (a differencing DISK), else null. */
  oldParent: { path: string; uuid: string } | null;
  newParent: { path: string; uuid: string; timestamp: string };
  virtualSize: number;
  blockSize: number;
  /** DISK's file size, and the result's. */
  originalSize: number;
  newSize: number;
  /** originalSize - newSize: what the rebase saves (negative if the result is larger). */
  savedBytes: number;
  /**
   * Sectors examined (read and compared in the blocks visited), kept (differ
   * from the new parent; zero sectors over the new parent's data among them),
   * dropped (the new parent reads the same: non-zero, or zero over zero), and
   * shared: dropped unread, because both views read them from the same file
   * at the same offset (a layer DISK's chain and the new parent's share).
   */
  sectors: { examined: number; kept: number; sameAsParent: number; zeroOverZero: number; shared: number };
  /** Blocks stored in the result. */
  blocks: number;
  /** Data bytes written (that would be written, in a dry run). */
  bytesWritten: number;
  /**
   * Bytes of the view the final proof (step 3 above) read and compared: the
   * sectors the result does not store itself where either view reads data
   * from a file. 0 in a dry run.
   */
  verifiedBytes: number;
  removedTemporaries: string[];
  durationMs: number;
}

export async function rebase(disk: string, onto: string, opts: RebaseOptions = {}): Promise<RebaseResult> {
  const t0 = Date.now();
  let ctx = resolveBase(opts);
  const fs = ctx.fs;
  let src: Chain | null = null;
  let np: Chain | null = null;
  let lock: DiskLock | null = null;
  try {
    src = await openDiskOrRaw(fs, disk, { parent: opts.parent, mode: 'strict', extraCandidates: opts.extraCandidates });
    const leaf = src.layersLeafFirst[0];
    if (leaf.meta.raw && opts.output === undefined) {
      throw new VhdToolError('USAGE', 'is a raw disk image, which cannot be rebased in place; name the new disk with --output', disk);
    }
    refuseSavedState(leaf);
    np = await openChain(fs, onto, { mode: 'strict' });
    const npLeaf = np.layersLeafFirst[0];
    refuseSavedState(npLeaf);
    refuseCycle(leaf, np, onto);
    if (npLeaf.meta.virtualSize < leaf.meta.virtualSize) {
      throw new VhdToolError('REFUSED', `new parent is smaller than ${disk} (${npLeaf.meta.virtualSize} < ${leaf.meta.virtualSize} bytes); DISK's view cannot sit on it`, onto);
    }
    const blockSize = leaf.meta.blockSize ?? npLeaf.meta.blockSize ?? DEFAULT_BLOCK_SIZE;
    if (!opts.runner) {
      await ctx.close();
      ctx = resolveBase(opts, blockSize);
      ctx.runner.warm();
    }
    if (npLeaf.meta.virtualSize > leaf.meta.virtualSize) await refuseDataPastEnd(ctx.runner, np, leaf.meta.virtualSize, disk, onto, ctx.signal);

    const inPlace = opts.output === undefined;
    const target = inPlace ? await fs.realpath(disk) : path.resolve(opts.output!);
    // Temporaries of killed runs go first, even when --output exists (a kill between link and unlink leaves both).
    const removedTemporaries = opts.dryRun ? [] : await cleanStaleTemps(fs, target);
    if (!inPlace) {
      await refuseOutputIsInput(fs, opts.output!, [src, np]);
      await requireOutputDir(fs, opts.output!);
      if (!opts.dryRun) await refuseExisting(fs, opts.output!, opts.force ?? false);
    } else if (!opts.dryRun) {
      lock = await lockDisk(fs, target);
      const holders = await pidsHolding(leaf.dev, leaf.ino);
      if (holders.length) throw new VhdToolError('LOCKED', `disk is open in another process (pid ${holders.join(', ')}); shut the VM down first`, disk);
    }

    const plan = outputPlan(leaf, npLeaf, blockSize, target, inPlace);
    const mode = inPlace ? (await fs.stat(disk)).mode & 0o7777 : 0o644;
    const run = await execute(ctx, src, np, plan, target, { dryRun: opts.dryRun ?? false, replace: inPlace || (opts.force ?? false), mode, keepTimes: inPlace });
    const oldParent = src.layersLeafFirst[1];
    return result(run.stats, {
      path: disk,
      output: opts.output ?? disk,
      inPlace,
      inputType: leaf.meta.raw ? 'raw' : leaf.meta.type,
      dryRun: opts.dryRun ?? false,
      uuid: inPlace || !opts.dryRun ? plan.footer.uniqueId : null,
      uuidKept: inPlace,
      oldParent: oldParent ? { path: oldParent.path, uuid: oldParent.meta.footer.uniqueId } : null,
      newParent: { path: onto, uuid: npLeaf.meta.footer.uniqueId, timestamp: vhdTimeToIso(plan.header!.parentTimestamp) },
      virtualSize: leaf.meta.virtualSize,
      blockSize,
      originalSize: leaf.meta.fileSize,
      newSize: run.size,
      verifiedBytes: run.verified,
      removedTemporaries,
      t0,
    });
  } finally {
    if (src) await src.close();
    if (np) await np.close();
    if (lock) await lock.release();
    await ctx.close();
  }
}

/**
 * The result's metadata: a differencing disk of DISK's size linked to the new
 * parent as Hyper-V links one (its UUID, its file's modification time as the
 * parent time stamp, W2ku and W2ru locators from the result's own place), in
 * Hyper-V's 4 KiB-aligned layout. The parent name is the file name (what
 * vhdtool's merge writes, and what blktap's check and vhd-lib expect).
 */
function outputPlan(leaf: Layer, npLeaf: Layer, blockSize: number, target: string, inPlace: boolean): OutputPlan {
  const size = leaf.meta.virtualSize;
  return {
    type: 'differencing',
    footer: outputFooter(leaf, inPlace, leaf.meta.raw === true),
    header: newHeader(blockSize, Math.ceil(size / blockSize), {
      uniqueId: npLeaf.meta.footer.uniqueId,
      timestamp: dateToVhdTime(new Date(npLeaf.mtimeMs)),
      unicodeName: path.basename(npLeaf.realPath),
    }),
    locators: hyperVLocators(target, npLeaf.realPath),
    align: 4096,
  };
}

/**
 * Runs the rewrite over the composite chain (DISK's layers, then the new
 * parent's) and, for a real run, the final proof before publishing. The
 * bitmap invariant of DISK's layers is checked alongside.
 */
async function execute(ctx: Resolved, src: Chain, np: Chain, plan: OutputPlan, target: string,
  o: { dryRun: boolean; replace: boolean; mode: number; keepTimes: boolean }): Promise<{ stats: RewriteStats; size: number; verified: number }> {
  const fs = ctx.fs;
  const size = src.layersLeafFirst[0].meta.virtualSize;
  const blockSize = plan.header!.blockSize;
  const composite: Chain = { layersLeafFirst: [...src.layersLeafFirst, ...np.layersLeafFirst], close: async () => {} };
  const spec: RewriteSpec = {
    chain: composite, sourceCount: src.layersLeafFirst.length, blockSize, virtualSize: size,
    unitSectors: unitSectorsFor(blockSize), visitReference: true, skipShared: true,
  };
  const resolver = new ChainResolver(composite);
  return withBitmapCheck(fs, src.layersLeafFirst, ctx.runner, ctx.signal, async (signal, checked) => {
    const runCtx = { fs, runner: ctx.runner, progress: ctx.progress, signal };
    if (o.dryRun) return { ...(await dryRunRewrite(runCtx, spec, resolver, plan)), verified: 0 };
    let verified = 0;
    const w = await writeRewrite(runCtx, spec, resolver, plan, target, {
      replace: o.replace,
      mode: o.mode,
      // In place the disk keeps its view and its UUID: its times too, so its own children's parent time stamp stays true.
      keepTimes: o.keepTimes,
      verifyMore: async (temp) => {
        verified = await proveView(fs, ctx.runner, temp, np, src, size, signal, ctx.progress);
      },
      beforePublish: async () => {
        await checked();
        await assertUnchanged(fs, composite.layersLeafFirst);
      },
    });
    return { stats: w.stats, size: w.size, verified };
  });
}

type ResultBase = Omit<RebaseResult, 'savedBytes' | 'sectors' | 'blocks' | 'bytesWritten' | 'durationMs'> & { t0: number };

function result(stats: RewriteStats, r: ResultBase): RebaseResult {
  return {
    path: r.path, output: r.output, inPlace: r.inPlace, inputType: r.inputType, dryRun: r.dryRun,
    uuid: r.uuid, uuidKept: r.uuidKept, oldParent: r.oldParent, newParent: r.newParent,
    virtualSize: r.virtualSize, blockSize: r.blockSize,
    originalSize: r.originalSize, newSize: r.newSize, savedBytes: r.originalSize - r.newSize,
    sectors: {
      examined: stats.sectorsExamined, kept: stats.sectorsKept, sameAsParent: stats.sectorsSameAsParent,
      zeroOverZero: stats.sectorsZeroOverZero, shared: stats.sectorsShared,
    },
    blocks: stats.blocksStored,
    bytesWritten: stats.bytesWritten,
    verifiedBytes: r.verifiedBytes,
    removedTemporaries: r.removedTemporaries,
    durationMs: Date.now() - r.t0,
  };
}

/**
 * The new parent must be neither DISK nor a disk whose chain holds DISK
 * (a descendant of DISK: the result would be its own ancestor). Recognised
 * by device and inode, and by UUID (a copy of DISK carries its UUID).
 */
export function refuseCycle(leaf: Layer, np: Chain, onto: string): void {
  const uuid = leaf.meta.raw ? NULL_UUID : leaf.meta.footer.uniqueId;
  for (const [i, l] of np.layersLeafFirst.entries()) {
    const sameFile = l.dev === leaf.dev && l.ino === leaf.ino;
    const sameUuid = uuid !== NULL_UUID && l.meta.footer.uniqueId === uuid;
    if (!sameFile && !sameUuid) continue;
    if (i === 0 && sameFile) throw new VhdToolError('CHAIN_CYCLE', `the new parent is ${leaf.path} itself`, onto);
    const how = sameFile ? `${l.path} is ${leaf.path}` : `${l.path} carries ${leaf.path}'s UUID ${uuid}`;
    throw new VhdToolError('CHAIN_CYCLE', `the new parent's chain contains the disk being rebased (${how}): a disk cannot sit on its own descendant`, onto);
  }
}

/** A new parent larger than DISK must read zeros past DISK's end (as `compare` allows a size difference). */
async function refuseDataPastEnd(runner: TaskRunner, np: Chain, size: number, disk: string, onto: string, signal?: AbortSignal): Promise<void> {
  const npSize = np.layersLeafFirst[0].meta.virtualSize;
  const r = await compareViews(runner, np, null, { first: size / SECTOR, end: npSize / SECTOR, signal });
  if (r.difference !== null) {
    throw new VhdToolError('REFUSED',
      `new parent is larger than ${disk} (${npSize} > ${size} bytes) and holds data past its end (at byte ${r.difference}); the views would differ there`, onto);
  }
}

/** In place: DISK's own footer (identity, creator, time stamp) as a differencing disk. Otherwise a new identity. */
function outputFooter(leaf: Layer, inPlace: boolean, raw: boolean): Footer {
  const f = leaf.meta.footer;
  if (inPlace) return { ...f, diskType: 'differencing', dataOffset: 512, savedState: 0 };
  const fresh = newFooter({ type: 'differencing', virtualSize: leaf.meta.virtualSize, uniqueId: newUuid(), timestamp: dateToVhdTime(new Date()) });
  if (raw) return fresh;
  // The result shows DISK's disk: keep how its producer sized it (as merge does).
  return { ...fresh, creatorApplication: f.creatorApplication, creatorVersion: f.creatorVersion, creatorHostOs: f.creatorHostOs, originalSize: f.originalSize, geometry: { ...f.geometry } };
}

/**
 * Step 3 of the proof: the written file, re-opened from disk, over the new
 * parent's chain shows DISK's view wherever its own bits are 0. Returns the
 * bytes of the view the comparison covered.
 */
async function proveView(fs: FileSystem, runner: TaskRunner, temp: string, np: Chain, src: Chain, size: number,
  signal: AbortSignal, progress: ProgressSink = noopProgress): Promise<number> {
  const vhd = await openVhd(fs, temp, { mode: 'strict' });
  try {
    const m = vhd.meta;
    const npLeaf = np.layersLeafFirst[0];
    if (m.type !== 'differencing' || m.virtualSize !== size || m.header!.parentUniqueId !== npLeaf.meta.footer.uniqueId) {
      throw new VhdToolError('VERIFY_FAILED', 'output did not verify (its type, size or parent link is not the one planned); nothing was replaced', temp);
    }
    const st = await fs.stat(temp);
    const out: Layer = { path: temp, realPath: temp, dev: st.dev, ino: st.ino, mtimeMs: st.mtimeMs, vhd, meta: m, parentFoundBy: null };
    const view: Chain = { layersLeafFirst: [out, ...np.layersLeafFirst], close: async () => {} };
    const r = await compareViews(runner, view, src, { first: 0, end: size / SECTOR, maskLeafOfA: true, signal, progress, label: 'proving' });
    if (r.difference !== null) {
      throw new VhdToolError('VERIFY_FAILED', `output did not verify (over the new parent it reads differently from the disk at byte ${r.difference}); nothing was replaced`, temp);
    }
    return r.bytesChecked;
  } finally {
    await vhd.close();
  }
}
