import type { Command } from 'commander';
import type { CliIO } from '../context.js';

/** Placeholder registration; `maintain` is implemented in src/ops/maintain.ts. */
export function registerMaintain(program: Command, io: CliIO, done: (code: number) => void): void {
  void program; void io; void done;
}
