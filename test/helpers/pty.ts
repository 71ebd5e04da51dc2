/**
 * Running the built CLI the way an unattended job meets a terminal: inside a
 * pseudo-terminal made by `script` with no terminal of its own on standard
 * input, so the pseudo-terminal reports 0 columns and 0 rows (as some CI
 * runners and `docker -t` do). Optionally a signal is sent to the vhdtool
 * process after a delay. Everything is bounded in time: a hang is a failure,
 * not a stuck suite.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { BIN } from '../reliability/helpers/cli.js';

export const HAVE_SCRIPT = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

export interface PtyRun {
  /** vhdtool's exit status (script -e passes it on), null when it had to be killed. */
  code: number | null;
  /** Milliseconds from the signal (or the start) to the end. */
  msAfterSignal: number;
  /** Bytes vhdtool wrote to the terminal. */
  logBytes: number;
  log: string;
  killed: boolean;
}

const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `vhdtool ARGS` in a 0-column pseudo-terminal; sends `signal` after `afterMs` when given. */
export async function runInPty(dir: string, args: string[], opts: { signal?: NodeJS.Signals; afterMs?: number; limitMs: number }): Promise<PtyRun> {
  const pidFile = path.join(dir, `.pty-pid-${Math.random().toString(36).slice(2)}`);
  const log = path.join(dir, `.pty-log-${Math.random().toString(36).slice(2)}`);
  const cmd = `echo $$ > ${sh(pidFile)}; exec ${sh(process.execPath)} ${sh(BIN)} ${args.map(sh).join(' ')}`;
  const child = spawn('script', ['-qec', `sh -c ${sh(cmd)}`, log], {
    stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, VHDTOOL_DEBUG: '', TERM: 'xterm' }, detached: true,
  });
  const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  const vhdtoolPid = async (): Promise<number> => {
    for (let i = 0; i < 200; i++) {
      if (existsSync(pidFile)) {
        const t = readFileSync(pidFile, 'utf8').trim();
        if (t) return Number(t);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error('vhdtool did not start under script');
  };
  const pid = await vhdtoolPid();
  let t0 = performance.now();
  if (opts.signal) {
    await new Promise((r) => setTimeout(r, opts.afterMs ?? 0));
    t0 = performance.now();
    try {
      process.kill(pid, opts.signal);
    } catch {
      /* already gone */
    }
  }
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    for (const p of [pid, child.pid!]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }, opts.limitMs);
  const code = await exited;
  clearTimeout(timer);
  const ms = performance.now() - t0;
  const logBytes = existsSync(log) ? statSync(log).size : 0;
  return { code: killed ? null : code, msAfterSignal: ms, logBytes, log: logBytes < 1e5 ? readFileSync(log, 'latin1') : '', killed };
}
