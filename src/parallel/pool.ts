/**
 * Where compare tasks run: a piscina pool of worker threads, or inline on the
 * main thread (`--threads 0`). Both share one page-aligned arena of data
 * slots: a worker reads a unit's source data into its slot, and the executor
 * writes the kept data straight from that slot, with no copy.
 *
 * This is the only module that imports piscina.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Piscina } from 'piscina';
import { FormatError, VhdToolError } from '../errors.js';
import type { WorkerTask } from '../plan/tasks.js';
import { Kernel, TRUNCATED_MARK } from '../../workers/kernel.js';
import { closeEarly, earlyRunnerWaiting, holdEarly, takeEarly } from './early.js';

export interface TaskRunner {
  /** Worker threads (0 = inline). */
  readonly threads: number;
  /** Shared arena, viewed from the main thread. */
  readonly arena: Buffer;
  readonly slotBytes: number;
  readonly slots: number;
  run<T>(task: WorkerTask): Promise<T>;
  /**
   * Runs a task now on the calling thread, blocking it (a kernel of its own,
   * on the same arena). For a main thread that would otherwise only wait.
   */
  runHere<T>(task: WorkerTask): T;
  /** Starts the worker threads now, so their start-up overlaps the caller's own (opening files). */
  warm(): void;
  close(): Promise<void>;
}

export interface RunnerOptions {
  /** Worker threads; 0 runs tasks inline. Default: available parallelism. */
  threads?: number;
  /** Bytes per data slot (the unit size). */
  slotBytes: number;
  /** Number of data slots (tasks in flight). Default 2 x threads + 2. */
  slots?: number;
  /**
   * Tasks handed to each thread ahead of time (default 1). More keep a thread
   * busy while the main thread is itself busy and cannot hand out the next.
   */
  queuedPerThread?: number;
}

export function defaultThreads(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

function sharedArena(bytes: number): SharedArrayBuffer {
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  const WA = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer } } }).WebAssembly;
  return new WA.Memory({ initial: pages, maximum: pages, shared: true }).buffer;
}

type PiscinaClass = typeof import('piscina').Piscina;
const loadPiscina = (): PiscinaClass => (createRequire(import.meta.url)('piscina') as typeof import('piscina')).Piscina;

function workerFile(): string {
  const candidates = [
    // Beside the command line's bundle (dist/cli, see scripts/build-cli.ts).
    new URL('./compare.worker.cjs', import.meta.url),
    new URL('../../workers/compare.worker.js', import.meta.url),
    new URL('../../dist/workers/compare.worker.js', import.meta.url),
  ];
  for (const u of candidates) {
    const p = fileURLToPath(u);
    if (existsSync(p)) return p;
  }
  throw new VhdToolError('INTERNAL', 'compiled worker not found (run `npm run build`)');
}

/** Turns an error thrown by the kernel (possibly across a thread) into a typed error. */
export function kernelError(e: unknown): VhdToolError {
  if (e instanceof VhdToolError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  const at = msg.indexOf(TRUNCATED_MARK);
  if (at >= 0) {
    const [path, text] = msg.slice(at + TRUNCATED_MARK.length).split('\0');
    return new FormatError(text ?? 'file is truncated', path, 'TRUNCATED');
  }
  const sys = /^(E[A-Z]+): (.*?), \w+ '(.*)'$/.exec(msg);
  if (sys) return new VhdToolError('ACCESS', `cannot read (${sys[1]})`, sys[3]);
  const bare = /^(E[A-Z]+): ([^,\n]*)/.exec(msg);
  if (bare) return new VhdToolError('ACCESS', `read failed (${bare[1]}: ${bare[2]})`);
  return new VhdToolError('INTERNAL', `worker failed: ${msg.split('\n')[0]}`);
}

/**
 * A runner started before the operation that will use it is even loaded
 * (cli/prestart.ts), so that its threads' start-up overlaps the main
 * thread's. createRunner hands it out to the first caller asking for the
 * same shape; closeEarly closes it if no one did (parallel/early.ts holds it).
 */
const shapeOf = (o: RunnerOptions) => [o.threads ?? defaultThreads(), o.slotBytes, o.slots ?? '', o.queuedPerThread ?? 1].join('/');

export function startEarly(opts: RunnerOptions): void {
  if (earlyRunnerWaiting()) return;
  const runner = newRunner(opts);
  runner.warm();
  holdEarly(shapeOf(opts), runner);
}

export { closeEarly, earlyRunnerWaiting };

export function createRunner(opts: RunnerOptions): TaskRunner {
  return takeEarly(shapeOf(opts)) ?? newRunner(opts);
}

function newRunner(opts: RunnerOptions): TaskRunner {
  const threads = opts.threads ?? defaultThreads();
  const slots = opts.slots ?? Math.max(3, threads * 2 + 2);
  const arenaBuf = sharedArena(slots * opts.slotBytes);
  const arena = Buffer.from(arenaBuf);
  let here: Kernel | null = null;
  const runHere = <T>(task: WorkerTask): T => {
    try {
      return (here ??= new Kernel(arenaBuf, opts.slotBytes)).run(task) as T;
    } catch (e) {
      throw kernelError(e);
    }
  };
  if (threads === 0) {
    return {
      threads, arena, slotBytes: opts.slotBytes, slots, runHere,
      async run<T>(task: WorkerTask): Promise<T> {
        return runHere<T>(task);
      },
      warm() {},
      async close() {
        here?.closeAll();
      },
    };
  }
  // The threads start with the first task, not before: a command that fails before it has work
  // for them (a broken input, a refused output) never starts any, and a pool is not torn down
  // while its workers are still loading their module (terminating a worker in the middle of
  // loading an ES module has been seen to abort the whole process in Node 20).
  let pool: Piscina | null = null;
  let starting: Promise<Piscina> | null = null;
  let warming: Promise<unknown> | null = null;
  // piscina itself is loaded only when threads are used (it costs start-up time), through require:
  // it is CommonJS, and the command line's bundle (dist/cli) then needs no dynamic import.
  const started = () => (starting ??= Promise.resolve().then(() => (pool = new (loadPiscina())({
    filename: workerFile(),
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 60_000,
    concurrentTasksPerWorker: opts.queuedPerThread ?? 1,
    workerData: { arena: arenaBuf, slotBytes: opts.slotBytes },
  }))));
  return {
    threads, arena, slotBytes: opts.slotBytes, slots, runHere,
    async run<T>(task: WorkerTask): Promise<T> {
      try {
        return (await (await started()).run(task)) as T;
      } catch (e) {
        throw kernelError(e);
      }
    },
    warm() {
      // One no-op task per thread; close() waits for them, so a pool is never torn down mid-start.
      warming ??= Promise.all(Array.from({ length: threads }, () => started().then((p) => p.run({ kind: 'ping' })))).catch(() => undefined);
    },
    async close() {
      if (warming) await warming;
      if (starting) await starting.catch(() => undefined);
      const p = pool;
      pool = null;
      starting = null;
      if (p) await p.destroy();
    },
  };
}
