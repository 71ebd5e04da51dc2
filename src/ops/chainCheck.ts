/**
 * `check` over every layer of an opened chain, for the operations that link
 * a new disk to it (create --parent, relink): a parent that `check` rejects
 * must not get a child.
 */
import { VhdToolError } from '../errors.js';
import type { FileSystem } from '../io/fsys.js';
import type { Chain } from '../chain/chain.js';
import { checkDisk, type CheckReport } from '../check/check.js';
import type { TaskRunner } from '../parallel/pool.js';
import type { ProgressSink } from '../progress.js';

/** Runs `check` on each layer of `chain`, leaf first, each with its parent as the chain holds it. */
export async function checkChain(fs: FileSystem, chain: Chain, runner: TaskRunner, progress?: ProgressSink, signal?: AbortSignal): Promise<CheckReport[]> {
  const layers = chain.layersLeafFirst;
  const reports: CheckReport[] = [];
  progress?.start('checking the parent chain', 0);
  try {
    for (let i = 0; i < layers.length; i++) {
      reports.push(await checkDisk(fs, layers[i].path, runner, { parent: layers[i + 1]?.path, signal }));
    }
  } finally {
    progress?.done();
  }
  return reports;
}

/** The first error of the first failing report, as one line; null when every layer passes. */
export function firstFailure(reports: CheckReport[]): { path: string; rule: string; message: string } | null {
  for (const r of reports) {
    const e = r.errors[0];
    if (!r.ok && e) return { path: r.path, rule: e.rule, message: e.message };
  }
  return null;
}

/** Refuses a chain any layer of which `check` rejects. */
export async function refuseFailingChain(fs: FileSystem, chain: Chain, runner: TaskRunner, progress?: ProgressSink, signal?: AbortSignal): Promise<void> {
  const bad = firstFailure(await checkChain(fs, chain, runner, progress, signal));
  if (bad) {
    throw new VhdToolError('BAD_FORMAT', `fails \`vhdtool check\` (${bad.rule}: ${bad.message}); refusing to link a new disk to it`, bad.path);
  }
}
