/**
 * The piscina worker: one Kernel per thread, bound to the shared arena the
 * pool passes as workerData. Each task is a typed message from src/plan/tasks.
 */
import { workerData } from 'node:worker_threads';
import type { WorkerData, WorkerTask } from '../src/plan/tasks.js';
import { Kernel } from './kernel.js';

const data = workerData as WorkerData;
const kernel = new Kernel(data.arena, data.slotBytes);

export default function run(task: WorkerTask): unknown {
  return kernel.run(task);
}
