/**
 * Running the built CLI (`node bin/vhdtool.js ...`) as a child process, the
 * way a user does, and measuring it: exit code, output, wall time and the
 * peak resident memory of the process (worker threads included).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The CLI under test (VHDTOOL_BIN runs the suite against another build, e.g. to check that a reverted fix is caught). */
export const BIN = process.env.VHDTOOL_BIN ?? path.join(ROOT, 'bin', 'vhdtool.js');
/** GNU time, for the peak RSS of the child (`%M`, KiB). */
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

export interface CliRun {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak resident set of the vhdtool process in bytes (null when it could not be measured). */
  maxRss: number | null;
}

export interface CliOptions {
  cwd?: string;
  /** Kill with SIGKILL after this many ms (a hang is a failure, not a stuck suite). */
  timeoutMs?: number;
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
  /** Measure peak memory with GNU time (default true when available). */
  measure?: boolean;
}

export function hasBuild(): boolean {
  return existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'));
}

/** Starts the CLI; returns the child and a promise of its run. */
export function startCli(args: string[], opts: CliOptions = {}): { child: ChildProcess; done: Promise<CliRun> } {
  const measure = (opts.measure ?? true) && GNU_TIME !== null;
  let rssDir: string | null = null;
  let cmd = process.execPath;
  let argv = [BIN, ...args];
  if (measure) {
    rssDir = mkdtempSync(path.join(tmpdir(), 'vhdtool-rss-'));
    if (opts.uid !== undefined) chownSync(rssDir, opts.uid, opts.gid ?? opts.uid);
    cmd = GNU_TIME!;
    argv = ['-f', '%M', '-o', path.join(rssDir, 'rss'), process.execPath, BIN, ...args];
  }
  const t0 = performance.now();
  const child = spawn(cmd, argv, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, VHDTOOL_DEBUG: '', FORCE_COLOR: '0', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: opts.uid,
    gid: opts.gid,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : null;
  const done = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const ms = performance.now() - t0;
      let maxRss: number | null = null;
      if (rssDir) {
        try {
          // GNU time writes "Command terminated by signal N" before the value when the child was killed.
          const lines = readFileSync(path.join(rssDir, 'rss'), 'utf8').trim().split('\n');
          const kb = Number(lines[lines.length - 1]);
          if (Number.isFinite(kb)) maxRss = kb * 1024;
        } catch { /* not written */ }
        rmSync(rssDir, { recursive: true, force: true });
      }
      // Through GNU time a killed child shows as a non-zero code; report the signal as such.
      resolve({ args, code, signal, stdout, stderr, ms, maxRss });
    });
  });
  return { child, done };
}

export function runCli(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  return startCli(args, opts).done;
}

/** Lines of a stream, without the empty last one. */
export function lines(s: string): string[] {
  return s.split('\n').filter((l, i, a) => !(l === '' && i === a.length - 1));
}

/** A stack-trace line, or an uncaught-error banner from Node. */
export function stackLines(s: string): string[] {
  return lines(s).filter((l) => /^\s+at\s/.test(l) || /^(node:internal|Error:|TypeError:|RangeError:|file:\/\/)/.test(l));
}

/** Runs `fn` over `items` with at most `n` in flight; results in order. */
export async function pool<T, R>(items: T[], n: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}
