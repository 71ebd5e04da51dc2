/**
 * `merge CHILD PARENT OUT`: a new disk holding CHILD over PARENT; the inputs
 * are never touched.
 *
 * - PARENT is a base (fixed or dynamic): OUT is a standalone disk.
 * - PARENT is a differencing disk: OUT is a differencing disk linked to
 *   PARENT's parent, holding only the sectors that differ from it.
 * - `flatten`: the whole chain becomes one standalone disk.
 *
 * Merging is sector-exact: a child sector whose bit is 0 never overwrites
 * the data below it. The output is as small as `compact` would make it.
 */
import * as path from 'node:path';
import { VhdToolError, fromSystemError } from '../errors.js';
import { nodeFileSystem } from '../io/fsys.js';
import { dateToVhdTime, newUuid, type Footer } from '../format/index.js';
import { openChain } from '../chain/openChain.js';
import { ChainResolver } from '../chain/resolve.js';
import type { Chain } from '../chain/chain.js';
import { hyperVLocators, newFooter, newHeader } from '../vhd/build.js';
import { writeRewrite, dryRunRewrite, type OutputPlan } from '../exec/output.js';
import type { OutputType } from '../exec/rewrite.js';
import type { RewriteSpec } from '../plan/units.js';
import { cleanStaleTemps } from '../io/atomic.js';
import { refuseExisting, refuseOutputIsInput, requireOutputDir } from './outputs.js';
import { lockDisk, type DiskLock } from '../io/lock.js';
import { pidsHolding } from '../io/inUse.js';
import { assertUnchanged, refuseOrphanData, refuseSavedState, resolveBase, unitSectorsFor, withBitmapCheck, type OpBase } from './common.js';

export interface MergeOptions extends OpBase {
  /** Resolve the whole chain into one standalone disk. */
  flatten?: boolean;
  /** Standalone output type (default dynamic). */
  type?: 'dynamic' | 'fixed';
  /** Replace an existing OUT. */
  force?: boolean;
  /** Plan and count only. */
  dryRun?: boolean;
}

/** Internal: how rewriteInto publishes. */
interface Publish {
  /** Replace the leaf itself (coalesceInPlace): keep its footer (UUID, time stamp, creator) and file mode. */
  inPlace?: boolean;
}

export interface MergeResult {
  child: string;
  parent: string | null;
  output: string;
  outputType: OutputType;
  /** UUID of the new disk (null in a dry run: the real run draws its own). */
  uuid: string | null;
  /** For a differencing output: the disk it is linked to. */
  linkedTo: { path: string; uuid: string } | null;
  layersMerged: number;
  blocks: number;
  bytesWritten: number;
  fileSize: number;
  sectors: { examined: number; kept: number; sameAsParent: number; zeroOverZero: number };
  dryRun: boolean;
  durationMs: number;
}

export async function merge(childPath: string, parentPath: string, outPath: string, opts: MergeOptions = {}): Promise<MergeResult> {
  // PARENT is an argument, not a locator to try: a missing one is "not found" (exit 3), like a missing CHILD.
  let st;
  try {
    st = await (opts.fs ?? nodeFileSystem).stat(parentPath);
  } catch (e) {
    throw fromSystemError(e, parentPath, false);
  }
  if (st.isDirectory) throw new VhdToolError('NOT_A_FILE', 'is a directory, not a VHD file', parentPath);
  if (!st.isFile) throw new VhdToolError('NOT_A_FILE', 'is not a regular file', parentPath);
  return withChain(childPath, parentPath, opts, async (chain, ctx) => {
    const layers = chain.layersLeafFirst;
    const child = layers[0];
    if (child.meta.type !== 'differencing') {
      throw new VhdToolError('REFUSED', `${childPath} is not a differencing disk, so it has no parent to merge with`, childPath);
    }
    const parent = layers[1];
    const standalone = opts.flatten || parent.meta.type !== 'differencing';
    if (!standalone && opts.type) {
      throw new VhdToolError('USAGE', `--type applies to a standalone output; ${parentPath} is itself a differencing disk (add --flatten to resolve the whole chain)`, parentPath);
    }
    const k = opts.flatten ? layers.length : 2;
    return rewriteInto(chain, ctx, k, standalone ? (opts.type ?? 'dynamic') : 'differencing', outPath, opts, parentPath);
  }, 'PARENT argument');
}

export interface ConvertOptions extends OpBase {
  type?: 'dynamic' | 'fixed';
  force?: boolean;
  dryRun?: boolean;
  /** The disk's parent, when it is a differencing disk (overrides its locators). */
  parent?: string;
}

/** `convert DISK OUT`: the disk's guest content (its whole chain) as a new standalone dynamic or fixed disk. */
export async function convert(disk: string, outPath: string, opts: ConvertOptions = {}): Promise<MergeResult> {
  return withChain(disk, opts.parent, opts, async (chain, ctx) =>
    rewriteInto(chain, ctx, chain.layersLeafFirst.length, opts.type ?? 'dynamic', outPath, opts, chain.layersLeafFirst[1]?.path ?? null));
}

type Ctx = ReturnType<typeof resolveBase>;

async function withChain<T>(disk: string, parent: string | undefined, opts: OpBase, fn: (chain: Chain, ctx: Ctx) => Promise<T>, parentSource?: string): Promise<T> {
  let ctx = resolveBase(opts);
  let chain: Chain | null = null;
  try {
    chain = await openChain(ctx.fs, disk, { parent, parentSource, mode: 'strict', extraCandidates: opts.extraCandidates });
    const leaf = chain.layersLeafFirst[0];
    refuseSavedState(leaf);
    if (!opts.runner && leaf.meta.blockSize) {
      await ctx.close();
      ctx = resolveBase(opts, leaf.meta.blockSize);
      ctx.runner.warm();
    }
    return await fn(chain, ctx);
  } finally {
    if (chain) await chain.close();
    await ctx.close();
  }
}

async function rewriteInto(
  chain: Chain, ctx: Ctx, k: number, outType: OutputType, outPath: string,
  opts: MergeOptions, parentPath: string | null, publish: Publish = {},
): Promise<MergeResult> {
  const t0 = Date.now();
  const fs = ctx.fs;
  const layers = chain.layersLeafFirst;
  const child = layers[0];
  const blockSize = child.meta.blockSize ?? 2 * 1024 * 1024;
  await refuseOrphanData(layers.slice(0, k));
  if (!publish.inPlace) {
    await refuseOutputIsInput(fs, outPath, [chain]);
    await requireOutputDir(fs, outPath);
  }
  if (!opts.dryRun) {
    // Temporaries of killed runs go first, even when OUT exists (a kill between link and unlink leaves both).
    await cleanStaleTemps(fs, path.resolve(outPath));
    if (!publish.inPlace) await refuseExisting(fs, outPath, opts.force ?? false);
  }

  const cf = child.meta.footer;
  const footer: Footer = publish.inPlace
    // Same content, same identity: the leaf's own children stay valid.
    ? { ...cf, diskType: outType, dataOffset: outType === 'fixed' ? null : 512, savedState: 0 }
    : {
      ...newFooter({ type: outType, virtualSize: child.meta.virtualSize, uniqueId: newUuid(), timestamp: dateToVhdTime(new Date()) }),
      // The output shows the child's disk: keep how its producer sized it.
      creatorApplication: cf.creatorApplication,
      creatorVersion: cf.creatorVersion,
      creatorHostOs: cf.creatorHostOs,
      originalSize: cf.originalSize,
      geometry: { ...cf.geometry },
    };
  let plan: OutputPlan;
  let linkedTo: MergeResult['linkedTo'] = null;
  if (outType === 'fixed') {
    plan = { type: 'fixed', footer, locators: [], align: 4096 };
  } else if (outType === 'dynamic') {
    plan = { type: 'dynamic', footer, header: newHeader(blockSize, Math.ceil(child.meta.virtualSize / blockSize), null), locators: [], align: 4096 };
  } else {
    const gp = layers[k];
    const ph = layers[k - 1].meta.header!;
    linkedTo = { path: gp.path, uuid: gp.meta.footer.uniqueId };
    plan = {
      type: 'differencing',
      footer,
      header: newHeader(blockSize, Math.ceil(child.meta.virtualSize / blockSize), {
        uniqueId: gp.meta.footer.uniqueId,
        timestamp: ph.parentTimestamp,
        unicodeName: path.basename(gp.path),
      }),
      locators: hyperVLocators(outPath, gp.realPath),
      align: 4096,
    };
  }
  const spec: RewriteSpec = {
    chain, sourceCount: k, blockSize: outType === 'fixed' ? Math.min(blockSize, 4 << 20) : blockSize,
    virtualSize: child.meta.virtualSize, unitSectors: unitSectorsFor(blockSize),
  };
  const resolver = new ChainResolver(chain);
  const mode = publish.inPlace ? (await fs.stat(outPath)).mode & 0o7777 : 0o644;
  const r = await withBitmapCheck(fs, layers.slice(0, k), ctx.runner, ctx.signal, async (signal, checked) => {
    const runCtx = { fs, runner: ctx.runner, progress: ctx.progress, signal };
    return opts.dryRun
      ? await dryRunRewrite(runCtx, spec, resolver, plan)
      : await writeRewrite(runCtx, spec, resolver, plan, path.resolve(outPath), {
        replace: publish.inPlace ? true : (opts.force ?? false),
        mode,
        // Shortening in place keeps the leaf's content and identity: its times too.
        keepTimes: publish.inPlace,
        beforePublish: async () => {
          await checked();
          await assertUnchanged(fs, layers.slice(0, publish.inPlace ? layers.length : k + 1));
        },
      });
  });
  return {
    child: child.path,
    parent: parentPath,
    output: outPath,
    outputType: outType,
    uuid: opts.dryRun && !publish.inPlace ? null : footer.uniqueId,
    linkedTo,
    layersMerged: k,
    blocks: outType === 'fixed' ? 0 : r.stats.blocksStored,
    bytesWritten: r.stats.bytesWritten,
    fileSize: r.size,
    sectors: {
      examined: r.stats.sectorsExamined, kept: r.stats.sectorsKept,
      sameAsParent: r.stats.sectorsSameAsParent, zeroOverZero: r.stats.sectorsZeroOverZero,
    },
    dryRun: opts.dryRun ?? false,
    durationMs: Date.now() - t0,
  };
}

export interface CoalesceOptions extends OpBase {
  parent?: string;
  dryRun?: boolean;
  /** Skip the lock and the open-by-another-process check (callers that hold them). */
  noLock?: boolean;
}

/**
 * Shortens a chain by one layer: the leaf is coalesced with its parent and
 * the result replaces the leaf file at its own path, atomically, keeping the
 * leaf's UUID and footer (its content is unchanged, so disks that point at the
 * leaf stay valid). The parent is never written; it may become unused.
 * When the parent is a base disk, the leaf becomes a standalone dynamic disk.
 */
export async function coalesceInPlace(leafPath: string, opts: CoalesceOptions = {}): Promise<MergeResult> {
  const fs = opts.fs ?? (await import('../io/fsys.js')).nodeFileSystem;
  const target = await fs.realpath(leafPath).catch(() => path.resolve(leafPath));
  let lock: DiskLock | null = null;
  try {
    if (!opts.dryRun && !opts.noLock) lock = await lockDisk(fs, target);
    return await withChain(leafPath, opts.parent, opts, async (chain, ctx) => {
      const layers = chain.layersLeafFirst;
      const leaf = layers[0];
      if (leaf.meta.type !== 'differencing') {
        throw new VhdToolError('REFUSED', 'not a differencing disk: there is no parent to coalesce with', leafPath);
      }
      if (!opts.dryRun && !opts.noLock) {
        const holders = await pidsHolding(leaf.dev, leaf.ino);
        if (holders.length) throw new VhdToolError('LOCKED', `disk is open in another process (pid ${holders.join(', ')})`, leafPath);
      }
      const outType: OutputType = layers[1].meta.type === 'differencing' ? 'differencing' : 'dynamic';
      return rewriteInto(chain, ctx, 2, outType, target, { dryRun: opts.dryRun }, layers[1].path, { inPlace: true });
    });
  } finally {
    if (lock) await lock.release();
  }
}
