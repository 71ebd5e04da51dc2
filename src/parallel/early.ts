/**
 * The runner started ahead of the operation that will use it (cli/prestart.ts),
 * held here, in a module free of piscina and the kernel: every command line
 * asks it whether threads are left to close, and only compare loads the pool.
 */
import type { TaskRunner } from './pool.js';

let early: { shape: string; runner: TaskRunner } | null = null;

/** Holds `runner` (of the given shape) until an operation takes it. */
export function holdEarly(shape: string, runner: TaskRunner): void {
  early = { shape, runner };
}

/** The held runner if it has this shape (it is then no longer held), else null. */
export function takeEarly(shape: string): TaskRunner | null {
  if (!early || early.shape !== shape) return null;
  const r = early.runner;
  early = null;
  return r;
}

/** Is an early runner waiting to be taken? */
export function earlyRunnerWaiting(): boolean {
  return early !== null;
}

/** Closes the early runner if no operation took it (the command failed before, or wanted other threads). */
export async function closeEarly(): Promise<void> {
  const e = early;
  early = null;
  if (e) await e.runner.close();
}
