/** The ora-backed progress sink: the only module that imports ora. */
import type { Ora } from 'ora';
import { noopProgress, type ProgressSink } from '../progress.js';
import { stderrTerminal } from './stdio.js';

function fmtBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(0)} MB`;
  return `${(n / 1e3).toFixed(0)} kB`;
}

function fmtEta(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '';
  if (s < 60) return `${Math.ceil(s)}s`;
  return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
}

type OraFactory = (typeof import('ora'))['default'];
let oraFactory: OraFactory | null = null;

/** Loads ora only when a spinner will really be shown (it costs start-up time). */
export async function loadSpinner(): Promise<void> {
  if (!oraFactory) oraFactory = (await import('ora')).default;
}

/** A spinner with percent, MB/s and ETA on a TTY; silent otherwise. Call loadSpinner() first. */
export function spinnerProgress(enabled: boolean): ProgressSink {
  if (!enabled) return noopProgress;
  let spinner: Ora | null = null;
  let label = '';
  let total = 0;
  let done = 0;
  let t0 = 0;
  let last = 0;
  const render = () => {
    if (!spinner) return;
    const secs = (Date.now() - t0) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const pct = total > 0 ? Math.min(100, (done / total) * 100) : 0;
    const eta = rate > 0 && total > 0 ? fmtEta((total - done) / rate) : '';
    spinner.text = total > 0
      ? `${label} ${pct.toFixed(0)}%  ${fmtBytes(rate)}/s${eta ? `  ETA ${eta}` : ''}`
      : `${label}…`;
  };
  return {
    start(l, t) {
      label = l;
      total = t;
      done = 0;
      t0 = Date.now();
      // ora redraws by counting lines over the terminal width: with no width it would never stop.
      const stream = stderrTerminal();
      const sized = (stream?.columns ?? 0) > 0 && (stream?.rows ?? 0) > 0;
      spinner = oraFactory && stream && sized ? oraFactory({ text: `${l}…`, stream, discardStdin: false }).start() : null;
    },
    advance(n) {
      done += n;
      const now = Date.now();
      if (now - last > 100) {
        last = now;
        render();
      }
    },
    done() {
      spinner?.stop();
      spinner = null;
    },
  };
}
