/** `check` as a library operation, called like the others: `check(path, options)`. */
import { checkDisk, type CheckOptions, type CheckReport } from '../check/check.js';
import { nodeFileSystem, type FileSystem } from '../io/fsys.js';
import { createRunner, defaultThreads, type TaskRunner } from '../parallel/pool.js';

export interface CheckDiskOptions extends CheckOptions {
  fs?: FileSystem;
  /** Worker threads for the bitmap rule (0 = the main thread). Default: cores, at most 8. */
  threads?: number;
  /** Use this runner instead of creating one (it is not closed). */
  runner?: TaskRunner;
}

/** Checks one disk; resolves to its report (problems are in the report, not thrown). */
export async function check(disk: string, opts: CheckDiskOptions = {}): Promise<CheckReport> {
  const runner = opts.runner ?? createRunner({ threads: opts.threads ?? defaultThreads(), slotBytes: 512 });
  try {
    return await checkDisk(opts.fs ?? nodeFileSystem, disk, runner, { parent: opts.parent, fast: opts.fast });
  } finally {
    if (!opts.runner) await runner.close();
  }
}
