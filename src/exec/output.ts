/**
 * Running a rewrite into a new file: writer, executor, fsync, verification and
 * atomic publication, in that order. Also the dry-run twin that only counts.
 */
import {
  bitmapBytes, sparseFileSize, sparseLayout, fixedFileSize,
  type DynamicHeader, type Footer,
} from '../format/index.js';
import { VhdToolError } from '../errors.js';
import type { FileSystem } from '../io/fsys.js';
import { writeAtomically } from '../io/atomic.js';
import type { ChainResolver } from '../chain/resolve.js';
import type { TaskRunner } from '../parallel/pool.js';
import type { RewriteSpec } from '../plan/units.js';
import type { ProgressSink } from '../progress.js';
import { locatorSlot, type LocatorData } from '../vhd/build.js';
import { FixedWriter, SparseWriter } from '../vhd/writer.js';
import { DigestLog } from './digestLog.js';
import { rewriteTotalBytes, runRewrite, type OutputType, type RewriteStats } from './rewrite.js';
import { ContentVerifier, verifyStructure } from './verify.js';

export interface OutputPlan {
  type: OutputType;
  /** Footer to write (UUID, sizes, creator...); data offset and checksum are set by the writer. */
  footer: Footer;
  /** Header template for sparse outputs. */
  header?: DynamicHeader;
  locators: LocatorData[];
  /** 4096 (Hyper-V) or 512 (packed). */
  align: number;
}

export interface RunContext {
  fs: FileSystem;
  runner: TaskRunner;
  progress: ProgressSink;
  signal?: AbortSignal;
}

/** The size of the output file when `blocksStored` blocks are stored. */
export function plannedSize(plan: OutputPlan, blocksStored: number): number {
  if (plan.type === 'fixed') return fixedFileSize(plan.footer.currentSize);
  const h = plan.header!;
  const layout = sparseLayout({
    maxTableEntries: h.maxTableEntries, blockSize: h.blockSize,
    locatorSpaces: plan.locators.map((l) => locatorSlot(l)), align: plan.align,
  });
  return sparseFileSize(layout, blocksStored, h.blockSize);
}

/** Counts what a rewrite would keep, reading and comparing but writing nothing. */
export async function dryRunRewrite(ctx: RunContext, spec: RewriteSpec, resolver: ChainResolver, plan: OutputPlan): Promise<{ stats: RewriteStats; size: number }> {
  ctx.progress.start('comparing', rewriteTotalBytes(spec));
  try {
    const stats = await runRewrite(spec, resolver, ctx.runner, { type: plan.type, bitmapBytes: bitmapBytes(spec.blockSize) }, { progress: ctx.progress, signal: ctx.signal });
    return { stats, size: plannedSize(plan, stats.blocksStored) };
  } finally {
    ctx.progress.done();
  }
}

export interface WriteResult {
  stats: RewriteStats;
  size: number;
  published: boolean;
}

/**
 * Writes the rewrite to `target` atomically. `decide(stats, size)` may veto
 * publication after verification (the target is then left untouched).
 */
export async function writeRewrite(
  ctx: RunContext, spec: RewriteSpec, resolver: ChainResolver, plan: OutputPlan, target: string,
  atomic: {
    replace: boolean; mode?: number; decide?: (stats: RewriteStats, size: number) => boolean; beforePublish?: () => Promise<void>;
    /** Keep the replaced file's times (see AtomicOptions.keepTimes). */
    keepTimes?: boolean;
    /** A further check of the fsynced temporary, after its structure verified (rebase proves the whole view with it). */
    verifyMore?: (temp: string) => Promise<void>;
  },
): Promise<WriteResult> {
  const bitmaps = new DigestLog();
  let stats: RewriteStats | null = null;
  let size = 0;
  let written: { footer: Footer; bat?: SparseWriter['bat']; header?: DynamicHeader } | null = null;
  let published = true;
  await writeAtomically(ctx.fs, target, async (file, temp) => {
    ctx.progress.start('writing', rewriteTotalBytes(spec));
    const verifier = new ContentVerifier(temp, ctx.runner, spec, resolver);
    const record = { bitmaps, verifier };
    try {
      if (plan.type === 'fixed') {
        const w = new FixedWriter(file, plan.footer);
        stats = await runRewrite(spec, resolver, ctx.runner, { type: 'fixed', fixed: w, bitmapBytes: 0 }, { progress: ctx.progress, signal: ctx.signal, record });
        const r = await w.finish();
        size = r.size;
        written = { footer: r.footer };
      } else {
        const w = new SparseWriter(file, { footer: plan.footer, header: plan.header!, locators: plan.locators, align: plan.align });
        stats = await runRewrite(spec, resolver, ctx.runner, { type: plan.type, sparse: w, bitmapBytes: w.layout.bitmapBytes }, { progress: ctx.progress, signal: ctx.signal, record });
        const r = await w.finish();
        size = r.size;
        written = { footer: r.footer, header: r.header, bat: w.bat };
      }
      await verifier.finish();
    } catch (e) {
      await verifier.abandon();
      // The workers open the inputs by path: a read that fails, or a block that does not verify,
      // mid-run may mean an input was replaced or rewritten meanwhile. Say that (the input check
      // throws) rather than "truncated" or "did not verify".
      if (e instanceof VhdToolError && (e.code === 'TRUNCATED' || e.code === 'ACCESS' || e.code === 'VERIFY_FAILED') && atomic.beforePublish) {
        await atomic.beforePublish();
      }
      // A block that did not verify names the temporary file: name the target instead.
      if (e instanceof VhdToolError && e.path === temp) throw new VhdToolError(e.code, e.message, target, e.data);
      throw e;
    } finally {
      ctx.progress.done();
    }
  }, {
    replace: atomic.replace,
    mode: atomic.mode,
    keepTimes: atomic.keepTimes,
    verify: async (temp) => {
      ctx.progress.start('verifying', 0);
      try {
        await verifyStructure(ctx.fs, temp, {
          type: plan.type, footer: written!.footer, bat: written!.bat, blockSize: written!.header?.blockSize,
          parentUniqueId: written!.header?.parentUniqueId ?? null, fileSize: size, bitmaps,
        });
      } finally {
        ctx.progress.done();
      }
      if (atomic.verifyMore) await atomic.verifyMore(temp);
    },
    shouldPublish: async () => {
      published = atomic.decide ? atomic.decide(stats!, size) : true;
      if (published && atomic.beforePublish) await atomic.beforePublish();
      return published;
    },
  });
  return { stats: stats!, size, published };
}
