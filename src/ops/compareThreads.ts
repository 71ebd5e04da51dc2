/**
 * How compare uses threads. Its main thread would otherwise only wait for
 * the workers, so it compares a share of the disk itself: N threads are the
 * main thread and N - 1 workers. Each worker is handed several tasks ahead
 * (it cannot be handed the next one while the main thread is comparing).
 *
 * A module of its own, small and free of the format code, so that the
 * command line can start these threads before loading the rest (cli/prestart.ts).
 */
import type { RunnerOptions } from '../parallel/pool.js';

/** Tasks queued at each worker at most. */
export const MAX_QUEUED_PER_WORKER = 16;

/** Data slot size of compare's runner: one 4 MiB unit (MAX_UNIT_SECTORS sectors; diff tasks use no slot). */
const SLOT_BYTES = 8192 * 512;

export function compareRunnerOptions(threads: number): RunnerOptions {
  return { threads: Math.max(0, threads - 1), slotBytes: SLOT_BYTES, queuedPerThread: MAX_QUEUED_PER_WORKER };
}
