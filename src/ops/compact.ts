/**
 * `compact`: drop every sector of a differencing disk that its parent chain
 * already holds (and every all-zero block of a dynamic disk), keeping the
 * disk's UUID, parent link, sizes and time stamps.
 */
import * as path from 'node:path';
import { VhdToolError } from '../errors.js';
import { sparseFileSize, sparseLayout } from '../format/index.js';
import { cleanStaleTemps } from '../io/atomic.js';
import { lockDisk, type DiskLock } from '../io/lock.js';
import { pidsHolding } from '../io/inUse.js';
import { openChain } from '../chain/openChain.js';
import { ChainResolver } from '../chain/resolve.js';
import { visitedBlocks, type RewriteSpec } from '../plan/units.js';
import { hyperVLocators, locatorSlot, type LocatorData } from '../vhd/build.js';
import { dryRunRewrite, writeRewrite, type OutputPlan } from '../exec/output.js';
import type { RewriteStats } from '../exec/rewrite.js';
import { refuseExisting, refuseOutputIsInput, requireOutputDir } from './outputs.js';
import { assertUnchanged, refuseOrphanData, refuseSavedState, resolveBase, unitSectorsFor, withBitmapCheck, type OpBase } from './common.js';
import type { Chain } from '../chain/chain.js';
import { openVhd } from '../vhd/image.js';
import type { FileSystem } from '../io/fsys.js';
import { DropIndex } from '../plan/dropIndex.js';
import type { DropKind, DropPlan } from '../plan/dropPlan.js';
import { surveyDrops } from './dropSurvey.js';
import { freeSpaceReport, type FreeSpaceReport } from './dropReport.js';

export interface CompactOptions extends OpBase {
  /** The leaf's parent, overriding its locators. */
  parent?: string;
  /** Write the result here instead of replacing the disk. */
  output?: string;
  /** Replace an existing --output. */
  force?: boolean;
  dryRun?: boolean;
  /** Skip the lock and the open-by-another-process check (callers that hold them). */
  noLock?: boolean;
  /**
   * Also drop the leaf's sectors that lie wholly in clusters the guest's file
   * systems (read through the whole chain) mark free.
   */
  freeSpace?: boolean;
  /** With freeSpace: also drop these files' or areas' content (opt-in). */
  drop?: DropKind[];
  /** With freeSpace: do not look beside the disk for children (maintain knows the disk is a leaf). */
  noChildCheck?: boolean;
}

export interface CompactResult {
  path: string;
  output: string;
  type: 'dynamic' | 'differencing';
  dryRun: boolean;
  /** True when the file at `output` was (or would be) written. */
  changed: boolean;
  originalSize: number;
  newSize: number;
  /** Exact file-size reduction the real run achieves (or achieved). */
  reclaimableBytes: number;
  /** Bytes actually reclaimed (0 in a dry run). */
  reclaimedBytes: number;
  sectors: { examined: number; kept: number; sameAsParent: number; zeroOverZero: number } & Partial<Record<'freeSpace' | DropKind, number>>;
  blocks: { before: number; after: number; deallocated: number; zero: number; emptied: number; empty: number; freed?: number };
  /** With --free-space: what was dropped, by reason and partition, and what was left alone. */
  freeSpace?: FreeSpaceReport;
  layout: 'aligned' | 'packed';
  removedTemporaries: string[];
  durationMs: number;
}

export async function compact(disk: string, opts: CompactOptions = {}): Promise<CompactResult> {
  const t0 = Date.now();
  const base0 = resolveBase(opts);
  const fs = base0.fs;
  let lock: DiskLock | null = null;
  let chain: Chain | null = null;
  let ctx = base0;
  try {
    const target = opts.output ? path.resolve(opts.output) : await fs.realpath(disk).catch(() => path.resolve(disk));
    chain = await openChain(fs, disk, { parent: opts.parent, mode: 'strict', extraCandidates: opts.extraCandidates });
    const leaf = chain.layersLeafFirst[0];
    const m = leaf.meta;
    if (m.type === 'fixed') {
      throw new VhdToolError('REFUSED', 'a fixed disk has no unallocated space to reclaim; convert it first: `vhdtool convert DISK OUT.vhd --type dynamic` (or `vhdtool merge ... --type dynamic` for a chain)', disk);
    }
    refuseSavedState(leaf);
    await refuseOrphanData([leaf]);
    if (!opts.runner) {
      await base0.close();
      ctx = resolveBase(opts, m.blockSize!);
      ctx.runner.warm();
    }
    // Temporaries of killed runs go first, even when --output exists (a kill between link and unlink leaves both).
    const removedTemporaries = opts.dryRun ? [] : await cleanStaleTemps(fs, target);
    if (opts.output) {
      await refuseOutputIsInput(fs, opts.output, [chain]);
      await requireOutputDir(fs, opts.output);
      if (!opts.dryRun) await refuseExisting(fs, opts.output, opts.force ?? false);
    }
    if (!opts.dryRun && !opts.output && !opts.noLock) {
      lock = await lockDisk(fs, target);
      const holders = await pidsHolding(leaf.dev, leaf.ino);
      if (holders.length) throw new VhdToolError('LOCKED', `disk is open in another process (pid ${holders.join(', ')}); shut the VM down first`, disk);
    }

    const blockSize = m.blockSize!;
    const spec: RewriteSpec = { chain, sourceCount: 1, blockSize, virtualSize: m.virtualSize, unitSectors: unitSectorsFor(blockSize) };
    let dropPlan: DropPlan | null = null;
    if (opts.freeSpace) {
      if (!opts.noChildCheck) await refuseChildren(fs, leaf.realPath, m.footer.uniqueId, disk);
      dropPlan = await surveyDrops(chain, { drops: opts.drop ?? [], signal: ctx.signal, progress: ctx.progress });
      spec.drops = new DropIndex(dropPlan);
    }
    const locators: LocatorData[] = m.locators
      .filter((l) => l.data !== null && typeof l.entry.platform === 'string')
      .map((l) => ({
        platform: l.entry.platform as LocatorData['platform'],
        data: l.data!,
        // Keep the room the producer reserved (Hyper-V: 4 KiB and 64 KiB) when it really lay in the file.
        space: l.spaceBytes !== null && l.spaceBytes <= 1024 * 1024 && l.entry.dataOffset + l.spaceBytes <= m.footerOffset ? l.spaceBytes : undefined,
      }));
    if (opts.output && m.type === 'differencing' && path.dirname(path.resolve(opts.output)) !== path.dirname(leaf.realPath)) {
      // Written elsewhere: the relative locators must lead from the new place to the same parent.
      const rel = hyperVLocators(opts.output, chain.layersLeafFirst[1].realPath).find((l) => l.platform === 'W2ru')!;
      for (let i = 0; i < locators.length; i++) {
        if (locators[i].platform === 'W2ru') locators[i] = { ...locators[i], data: rel.data };
        if (locators[i].platform === 'Wi2r') locators[i] = { ...locators[i], data: new TextEncoder().encode(new TextDecoder('utf-16le').decode(rel.data)) };
      }
    }
    const header = m.header!;
    // Hyper-V's 4 KiB-aligned layout, unless it could make the file larger than it is (packed originals).
    let visited = 0;
    for (const _ of visitedBlocks(spec)) visited++;
    const alignedMax = sparseFileSize(sparseLayout({
      maxTableEntries: header.maxTableEntries, blockSize, locatorSpaces: locators.map((l) => locatorSlot(l)), align: 4096,
    }), visited, blockSize);
    const align = alignedMax <= m.fileSize ? 4096 : 512;
    const plan: OutputPlan = { type: m.type, footer: { ...m.footer }, header: { ...header }, locators, align };
    const resolver = new ChainResolver(chain);

    const before = m.bat!.countAllocated();
    /** Publish only when something is dropped and the file does not grow. */
    const decide = (stats: RewriteStats, size: number) => {
      const dropped = stats.blocksStored < before ||
        (m.type === 'differencing' && stats.sectorsSameAsParent + stats.sectorsZeroOverZero > 0) ||
        (stats.tally !== null && stats.tally.planned() > 0);
      return dropped && size <= m.fileSize;
    };
    const mode = (await fs.stat(disk)).mode & 0o7777;
    const { stats, size, changed } = await withBitmapCheck(fs, [leaf], ctx.runner, ctx.signal, async (signal, checked) => {
      const runCtx = { fs, runner: ctx.runner, progress: ctx.progress, signal };
      if (opts.dryRun) {
        const d = await dryRunRewrite(runCtx, spec, resolver, plan);
        return { ...d, changed: opts.output ? true : decide(d.stats, d.size) };
      }
      const r = await writeRewrite(runCtx, spec, resolver, plan, target, {
        replace: !opts.output || (opts.force ?? false), mode, decide: opts.output ? undefined : decide,
        // In place, the disk keeps its content and identity, so its children's parent time stamp stays true.
        keepTimes: !opts.output,
        beforePublish: async () => {
          await checked();
          await assertUnchanged(fs, chain!.layersLeafFirst);
        },
      });
      return { stats: r.stats, size: r.size, changed: r.published };
    });
    const after = changed || opts.dryRun ? stats.blocksStored : before;
    const deallocated = Math.max(0, before - stats.blocksStored);
    const reclaimable = (opts.output || decide(stats, size)) ? m.fileSize - size : 0;
    const result: CompactResult = {
      path: disk,
      output: opts.output ?? disk,
      type: m.type,
      dryRun: opts.dryRun ?? false,
      changed,
      originalSize: m.fileSize,
      newSize: changed ? size : m.fileSize,
      reclaimableBytes: reclaimable,
      reclaimedBytes: opts.dryRun || !changed ? 0 : m.fileSize - size,
      sectors: {
        examined: stats.sectorsExamined,
        kept: stats.sectorsKept,
        sameAsParent: m.type === 'differencing' ? stats.sectorsSameAsParent : 0,
        zeroOverZero: m.type === 'differencing' ? stats.sectorsZeroOverZero : 0,
      },
      blocks: {
        before,
        after: opts.dryRun ? stats.blocksStored : after,
        deallocated,
        zero: m.type === 'dynamic' ? deallocated - stats.emptyBlocks - stats.blocksFreed : 0,
        emptied: m.type === 'differencing' ? deallocated - stats.emptyBlocks - stats.blocksFreed : 0,
        empty: stats.emptyBlocks,
      },
      layout: align === 4096 ? 'aligned' : 'packed',
      removedTemporaries,
      durationMs: Date.now() - t0,
    };
    if (dropPlan) {
      const report = freeSpaceReport(dropPlan, stats, m.type);
      for (const r of ['freeSpace', 'pagefile', 'swapfile', 'hiberfil', 'swap'] as const) result.sectors[r] = report.bytes[r] / 512;
      result.blocks.freed = stats.blocksFreed;
      result.freeSpace = report;
    }
    return result;
  } finally {
    if (chain) await chain.close();
    if (lock) await lock.release();
    await ctx.close();
  }
}

/**
 * Refuses --free-space on a disk that is the parent of a disk beside it:
 * dropping what this disk's own view calls free changes what its children
 * read wherever they show this disk through (maintain applies --free-space
 * to leaves only). Only the disk's folder is looked at (Hyper-V keeps
 * snapshots there); unreadable files are passed over.
 */
async function refuseChildren(fs: FileSystem, realPath: string, uuid: string, disk: string): Promise<void> {
  const dir = path.dirname(realPath);
  let entries;
  try {
    entries = await fs.readdir(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    if (!e.isFile() || !/\.a?vhd$/i.test(e.name)) continue;
    const p = path.join(dir, e.name);
    if (p === realPath) continue;
    let vhd;
    try {
      vhd = await openVhd(fs, p, { mode: 'lenient' });
    } catch {
      continue;
    }
    try {
      if (vhd.meta.header?.parentUniqueId === uuid) {
        throw new VhdToolError('REFUSED', `is the parent of ${e.name}: --free-space would change what that disk reads where it shows this one; compact the leaf instead`, disk);
      }
    } finally {
      await vhd.close();
    }
  }
}
