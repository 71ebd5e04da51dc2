/**
 * The first thing the command line runs (bin/vhdtool.js), before loading the
 * rest of vhdtool: for `compare` with the default thread count, it starts
 * compare's worker threads at once. A worker takes tens of milliseconds to
 * start; this way its start overlaps the loading of the modules instead of
 * following it. The operation takes the running threads over (createRunner);
 * main() closes them if it never gets that far.
 *
 * Only the plain default is recognized here (no --threads, no --help): any
 * other command line goes the ordinary way, through commander.
 */
import { defaultThreads, startEarly } from '../parallel/pool.js';
import { compareRunnerOptions } from '../ops/compareThreads.js';

export function prestart(argv: string[]): void {
  const args = argv.slice(2);
  if (args[0] !== 'compare') return;
  if (args.some((a) => a.startsWith('--threads') || a === '--help' || a === '-h')) return;
  const o = compareRunnerOptions(defaultThreads());
  if (o.threads) startEarly(o);
  // Load the operation's modules alongside the command line's (their file reads overlap).
  import('../ops/compare.js').catch(() => undefined);
}
