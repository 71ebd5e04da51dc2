/** Pieces shared by the operations: the task runner, preflight checks, timing. */
import { VhdToolError } from '../errors.js';
import { SECTOR } from '../format/index.js';
import type { FileSystem } from '../io/fsys.js';
import { nodeFileSystem } from '../io/fsys.js';
import { createRunner, defaultThreads, type TaskRunner } from '../parallel/pool.js';
import { findDirtyUnsetSectors } from '../check/unset.js';
import { describeOrphan, scanGaps } from '../check/gaps.js';
import type { Layer } from '../chain/chain.js';
import type { Uuid } from '../format/index.js';
import { noopProgress, type ProgressSink } from '../progress.js';

/** Largest unit of work: 4 MiB (8192 sectors). Bounds memory whatever the block size. */
export const MAX_UNIT_SECTORS = 8192;

export interface OpBase {
  fs?: FileSystem;
  /** Worker threads; 0 runs inline. Default: available cores (at most 8). */
  threads?: number;
  /** Use this runner instead of creating one (it is not closed). */
  runner?: TaskRunner;
  progress?: ProgressSink;
  signal?: AbortSignal;
  /** More places to look for a parent with a given UUID, passed to openChain (maintain's index of its roots). */
  extraCandidates?: (uuid: Uuid) => string[];
}

export interface Resolved {
  fs: FileSystem;
  runner: TaskRunner;
  progress: ProgressSink;
  signal?: AbortSignal;
  close(): Promise<void>;
}

export function unitSectorsFor(blockSize: number): number {
  return Math.min(blockSize / SECTOR, MAX_UNIT_SECTORS);
}

export function resolveBase(o: OpBase, blockSize = 2 * 1024 * 1024): Resolved {
  const fs = o.fs ?? nodeFileSystem;
  if (o.runner) return { fs, runner: o.runner, progress: o.progress ?? noopProgress, signal: o.signal, close: async () => {} };
  const runner = createRunner({ threads: o.threads ?? defaultThreads(), slotBytes: unitSectorsFor(blockSize) * SECTOR });
  return { fs, runner, progress: o.progress ?? noopProgress, signal: o.signal, close: () => runner.close() };
}

/** Refuses layers that `check` would reject for the bitmap invariant. */
export async function refuseDirtyBitmaps(layers: Layer[], runner: TaskRunner): Promise<void> {
  for (const l of layers) {
    const dirty = await findDirtyUnsetSectors(l.vhd, runner);
    if (dirty.length) {
      const d = dirty[0];
      throw new VhdToolError('BAD_FORMAT',
        `block ${d.block} holds data in ${d.count} sector(s) whose bitmap bit is clear (${dirty.length} block(s) in all); run \`vhdtool check\``, l.path);
    }
  }
}

/**
 * Refuses layers holding bytes no structure accounts for (check's
 * orphan-data, possibly a block whose BAT entry was lost): rewriting or
 * merging them would leave that data behind for good.
 */
export async function refuseOrphanData(layers: Layer[]): Promise<void> {
  for (const l of layers) {
    if (l.meta.type === 'fixed') continue;
    const g = await scanGaps(l.vhd);
    if (g.orphans.length) {
      throw new VhdToolError('BAD_FORMAT', `${describeOrphan(g.orphans[0])}; refusing to rewrite or merge it, which would lose that data: see \`vhdtool check\``, l.path);
    }
  }
}

/**
 * Runs `work` with the bitmap-invariant check (refuseDirtyBitmaps) alongside
 * it rather than before it: the check reads the clear-bit sectors, the work
 * the set ones, and neither waits for the other. `work` gets a signal that
 * aborts as soon as a dirty block is found, and `checked()`, which it must
 * await before publishing anything. When the check refuses, that refusal is
 * the error the caller sees, whatever the work then threw (unless a layer
 * changed meanwhile: then that is).
 */
export async function withBitmapCheck<T>(fs: FileSystem, layers: Layer[], runner: TaskRunner, outer: AbortSignal | undefined,
  work: (signal: AbortSignal, checked: () => Promise<void>) => Promise<T>): Promise<T> {
  const guard = new AbortController();
  const onOuter = () => guard.abort();
  if (outer?.aborted) guard.abort();
  outer?.addEventListener('abort', onOuter, { once: true });
  const check = refuseDirtyBitmaps(layers, runner);
  check.catch(() => guard.abort());
  try {
    const r = await work(guard.signal, () => check);
    await check;
    return r;
  } catch (e) {
    const refusal = await check.then(() => null, (x: unknown) => x);
    // The check reads the layers by path: data under a clear bit may only mean that another
    // process replaced a layer meanwhile. Say that (assertUnchanged throws) when it is so.
    if (refusal) await assertUnchanged(fs, layers);
    throw refusal ?? e;
  } finally {
    outer?.removeEventListener('abort', onOuter);
  }
}

export function refuseSavedState(l: Layer): void {
  if (l.meta.footer.savedState !== 0) {
    throw new VhdToolError('SAVED_STATE', 'disk is in saved state (a virtual machine was saved with it attached); resume and shut down the VM first', l.path);
  }
}

/**
 * Refuses to publish when any input changed since it was opened (same
 * inode, size and modification time expected): something wrote to the chain
 * while vhdtool ran, and replacing or deriving from it could lose that write.
 */
export async function assertUnchanged(fs: FileSystem, layers: Layer[], consequence = 'nothing was replaced'): Promise<void> {
  for (const l of layers) {
    let st;
    try {
      st = await fs.stat(l.path);
    } catch {
      throw new VhdToolError('VERIFY_FAILED', `input disappeared while vhdtool ran; ${consequence}`, l.path);
    }
    if (st.ino !== l.ino || st.dev !== l.dev || st.size !== l.meta.fileSize || st.mtimeMs !== l.mtimeMs) {
      throw new VhdToolError('VERIFY_FAILED', `input changed while vhdtool ran (another process wrote to it); ${consequence}`, l.path);
    }
  }
}
