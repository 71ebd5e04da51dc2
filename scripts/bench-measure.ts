/**
 * Timing helpers for `npm run bench`: run one command as a child process and
 * measure its wall time, CPU time and peak RSS, plus the CPU that everything
 * else on the machine used meanwhile (the VM is shared: that figure says how
 * far to trust a sample).
 *
 * Peak RSS and CPU come from GNU time (`/usr/bin/time -f '%U %S %M'`). Where
 * that is missing, Node commands run with an --import hook that records
 * process.resourceUsage() at exit (worker threads included: same process);
 * other commands then have no RSS or CPU figure.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';

export type RusageMode = 'gnu-time' | 'node-hook';

export interface Sample {
  /** Seconds, measured around the child process. */
  wall: number;
  user: number | null;
  sys: number | null;
  /** Peak resident set size, KiB. */
  maxRssKiB: number | null;
  code: number | null;
  signal: string | null;
  /** Cores busy outside the measured command during the run (other tenants, kernel writeback). */
  otherCores: number | null;
  /** Cores stolen by the hypervisor during the run. */
  stealCores: number | null;
  stdout: string;
  stderr: string;
}

const scratch = mkdtempSync(path.join(tmpdir(), 'vhdtool-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));

export function detectRusage(): RusageMode {
  const f = path.join(scratch, 'probe');
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', '-o', f, '--', 'true'], { stdio: 'ignore' });
  if (r.status === 0) {
    try {
      if (/^\d+(\.\d+)? \d+(\.\d+)? \d+$/m.test(readFileSync(f, 'utf8'))) return 'gnu-time';
    } catch { /* not GNU time */ }
  }
  return 'node-hook';
}

const HOOK = 'data:text/javascript,' + encodeURIComponent(
  "import{writeFileSync}from'node:fs';process.on('exit',()=>{const f=process.env.BENCH_RUSAGE_FILE;" +
  "if(f){const r=process.resourceUsage();writeFileSync(f,`${r.userCPUTime/1e6} ${r.systemCPUTime/1e6} ${r.maxRSS}\\n`);}});",
);

interface CpuTimes { busy: number; total: number; steal: number }

function cpuTimes(): CpuTimes {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = v;
  return { busy: user + nice + system + irq + softirq, total: user + nice + system + idle + iowait + irq + softirq + steal, steal };
}

const NCPU = availableParallelism();

/** Cores busy (and stolen) between two snapshots. */
function busyCores(a: CpuTimes, b: CpuTimes): { busy: number; steal: number } {
  const dt = b.total - a.total;
  if (dt <= 0) return { busy: 0, steal: 0 };
  return { busy: ((b.busy - a.busy) / dt) * NCPU, steal: ((b.steal - a.steal) / dt) * NCPU };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Waits until the machine looks idle: busy < `threshold` cores over a 0.5 s
 * window, at most `maxSeconds`. Returns the last window's busy cores.
 */
export async function waitQuiet(threshold: number, maxSeconds: number): Promise<number> {
  const end = performance.now() + maxSeconds * 1000;
  let busy = 0;
  do {
    const a = cpuTimes();
    await sleep(500);
    busy = busyCores(a, cpuTimes()).busy;
    if (busy < threshold) return busy;
  } while (performance.now() < end);
  return busy;
}

/** What is kept of a command's stdout and stderr (maintain's JSON report over 1000 disks is 1.3 MB). */
const MAX_CAPTURE = 16 << 20;

/** Runs argv (argv[0] a program path or name) and measures it. */
export function runTimed(argv: string[], opts: { cwd: string; mode: RusageMode; env?: NodeJS.ProcessEnv }): Promise<Sample> {
  const statFile = path.join(scratch, `rusage-${process.pid}-${Date.now()}`);
  let cmd: string;
  let args: string[];
  const env = { ...process.env, ...opts.env };
  const isNode = argv[0] === process.execPath;
  if (opts.mode === 'gnu-time') {
    cmd = '/usr/bin/time';
    args = ['-f', '%U %S %M', '-o', statFile, '--', ...argv];
  } else {
    cmd = argv[0];
    args = isNode ? ['--import', HOOK, ...argv.slice(1)] : argv.slice(1);
    if (isNode) env.BENCH_RUSAGE_FILE = statFile;
  }
  return new Promise((resolve, reject) => {
    const before = cpuTimes();
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { if (stdout.length < MAX_CAPTURE) stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < MAX_CAPTURE) stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const wall = (performance.now() - t0) / 1000;
      const cores = busyCores(before, cpuTimes());
      let user: number | null = null;
      let sys: number | null = null;
      let rss: number | null = null;
      try {
        const lines = readFileSync(statFile, 'utf8').trim().split('\n');
        const m = /^(\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+)$/.exec(lines[lines.length - 1]);
        if (m) { user = Number(m[1]); sys = Number(m[2]); rss = Number(m[3]); }
      } catch { /* no figures */ }
      rmSync(statFile, { force: true });
      const own = user !== null && sys !== null ? (user + sys) / wall : null;
      resolve({
        wall, user, sys, maxRssKiB: rss, code, signal,
        otherCores: own === null ? null : Math.max(0, cores.busy - own),
        stealCores: cores.steal,
        stdout, stderr,
      });
    });
  });
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}
