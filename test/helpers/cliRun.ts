/** Runs the vhdtool CLI in-process with captured output. */
import { main } from '../../src/cli/main.js';

export interface CliRun {
  code: number;
  out: string[];
  err: string[];
}

export async function runCli(args: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'vhdtool', ...args], {
    out: (l) => out.push(...l.split('\n')),
    err: (l) => err.push(...l.split('\n')),
    tty: false,
  });
  return { code, out, err };
}

/** True when any line looks like a stack frame. */
export function hasStackTrace(lines: string[]): boolean {
  return lines.some((l) => /^\s+at\s/.test(l) || /\.ts:\d+:\d+/.test(l) || /\.js:\d+:\d+/.test(l));
}
