/** What every command handler gets: output helpers, progress, cancellation. */
import { InvalidArgumentError } from 'commander';
import type { ProgressSink } from '../progress.js';
import { DROP_KINDS, type DropKind } from '../plan/dropPlan.js';
import { spinnerProgress } from './progress.js';

export interface CliIO {
  out(line: string): void;
  err(line: string): void;
  /** True when stderr is a terminal with a real size (progress is shown; otherwise maintain logs lines). */
  tty: boolean;
  /** True when standard output is a terminal (cat refuses to write a disk there). */
  stdoutTty?: boolean;
  signal: AbortSignal;
}

export interface CommonFlags {
  json?: boolean;
  threads?: number;
  progress?: boolean;
}

export function progressFor(io: CliIO, flags: CommonFlags): ProgressSink {
  return spinnerProgress(io.tty && !flags.json && flags.progress !== false);
}

export function parseThreads(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('must be a whole number (0 = no worker threads)');
  const n = Number(v);
  if (n > 64) throw new InvalidArgumentError('must be at most 64');
  return n;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1e6, mib: 1024 ** 2, g: 1024 ** 3, gb: 1e9, gib: 1024 ** 3, t: 1024 ** 4, tb: 1e12, tib: 1024 ** 4 };

/** Parses "0", "64M", "1.5GiB", "100MB" into bytes. */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(v.trim());
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError('must be a size such as 0, 512K, 64M, 1G');
  return Math.round(Number(m[1]) * unit);
}

export function parseBlockSize(v: string): number {
  const n = parseSize(v);
  if (n < 512 || (n & (n - 1)) !== 0) throw new InvalidArgumentError('must be a power of two, at least 512');
  return n;
}

export function json(io: CliIO, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}

export { fmtBytes } from '../plural.js';

/** "pagefile,hiberfil" -> the drop kinds; unknown names are a usage error. */
export function parseDrops(v: string): DropKind[] {
  const out: DropKind[] = [];
  for (const name of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(DROP_KINDS as readonly string[]).includes(name)) throw new InvalidArgumentError(`unknown drop "${name}"; one or more of ${DROP_KINDS.join(', ')}`);
    if (!out.includes(name as DropKind)) out.push(name as DropKind);
  }
  if (out.length === 0) throw new InvalidArgumentError(`name one or more of ${DROP_KINDS.join(', ')}`);
  return out;
}
