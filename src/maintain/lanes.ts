/**
 * Bounded concurrency for maintain with ONE task runner (one worker pool).
 *
 * A rewrite uses every data slot of the runner it is given, so two rewrites
 * must never share slots. The runner's arena is therefore split into lanes:
 * each lane is a TaskRunner view over its own slots (slot i of lane k is slot
 * k*perLane + i of the runner), and an operation holds one lane while it runs.
 */
import { MAX_UNIT_SECTORS } from '../ops/common.js';
import { SECTOR } from '../format/index.js';
import { createRunner, type TaskRunner } from '../parallel/pool.js';
import type { WorkerTask } from '../plan/tasks.js';

export interface Lanes {
  readonly count: number;
  readonly runner: TaskRunner;
  /** Runs `fn` with a free lane, waiting for one. */
  with<T>(fn: (lane: TaskRunner) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A view of `r` over slots [first, first + slots). */
export function laneView(r: TaskRunner, first: number, slots: number): TaskRunner {
  const mapped = (task: WorkerTask): WorkerTask => ('slot' in task ? { ...task, slot: task.slot + first } : task);
  return {
    threads: r.threads,
    arena: r.arena.subarray(first * r.slotBytes, (first + slots) * r.slotBytes),
    slotBytes: r.slotBytes,
    slots,
    run<T>(task: WorkerTask): Promise<T> {
      return r.run<T>(mapped(task));
    },
    runHere<T>(task: WorkerTask): T {
      return r.runHere<T>(mapped(task));
    },
    warm() {
      r.warm();
    },
    async close() {
      /* the owner closes the runner */
    },
  };
}

/** A counting semaphore handing out lane indexes. */
export class LanePool<L> {
  private readonly free: L[];
  private readonly waiting: Array<(l: L) => void> = [];

  constructor(lanes: L[]) {
    this.free = [...lanes];
  }

  async with<T>(fn: (lane: L) => Promise<T>): Promise<T> {
    const lane = this.free.length ? this.free.pop()! : await new Promise<L>((resolve) => this.waiting.push(resolve));
    try {
      return await fn(lane);
    } finally {
      const w = this.waiting.shift();
      if (w) w(lane);
      else this.free.push(lane);
    }
  }
}

export function createLanes(opts: { threads: number; lanes: number }): Lanes {
  const count = Math.max(1, opts.lanes);
  const perLane = Math.max(3, opts.threads + 2);
  const runner = createRunner({ threads: opts.threads, slotBytes: MAX_UNIT_SECTORS * SECTOR, slots: count * perLane });
  const pool = new LanePool(Array.from({ length: count }, (_, k) => laneView(runner, k * perLane, perLane)));
  return {
    count,
    runner,
    with: (fn) => pool.with(fn),
    close: () => runner.close(),
  };
}
