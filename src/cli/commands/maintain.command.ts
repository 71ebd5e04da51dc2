import type { Command } from 'commander';
import type { MaintainEvent } from '../../ops/maintain.js';
import { InvalidArgumentError } from 'commander';
import { DEFAULT_CONCURRENCY } from '../../maintain/defaults.js';
import { parseShard, type Shard } from '../../maintain/shard.js';
import { MAX_MIN_RECLAIM } from '../../maintain/limits.js';
import { json, parseDrops, parseSize, parseThreads, progressFor, type CliIO } from '../context.js';
import type { DropKind } from '../../plan/dropPlan.js';
import { VhdToolError } from '../../errors.js';

function parseDepth(v: string): number {
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('must be a whole number (differencing layers above the base)');
  return Number(v);
}

function parseMinReclaim(v: string): number {
  const n = parseSize(v);
  if (!Number.isSafeInteger(n) || n > MAX_MIN_RECLAIM) throw new InvalidArgumentError('must be at most 2040G (no VHD holds more)');
  return n;
}

function parseConcurrency(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 64) throw new InvalidArgumentError('must be a whole number from 1 to 64');
  return Number(v);
}

function parseShardArg(v: string): Shard {
  try {
    return parseShard(v);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

const collect = (v: string, prev: string[]) => [...prev, v];

interface MaintainFlags {
  dryRun?: boolean;
  json?: boolean;
  report?: string;
  metrics?: string;
  minReclaim?: number;
  maxDepth?: number;
  removeOrphans?: boolean;
  relink?: boolean;
  exclude: string[];
  shard?: Shard;
  threads?: number;
  concurrency?: number;
  progress?: boolean;
  verbose?: boolean;
  freeSpace?: boolean;
  drop?: DropKind[];
}

export function registerMaintain(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('maintain')
    .description('the nightly job: find every VHD under the roots, compact what is worth it, shorten deep chains, report (cron, systemd, Kubernetes)')
    .argument('<roots...>', 'folders (or single disks) to search for .vhd and .avhd files')
    .option('-n, --dry-run', 'change nothing, take no lock; report what would be done')
    .option('--json', 'print the report as one JSON object')
    .option('--report <file>', 'also write the JSON report to FILE (atomically)')
    .option('--metrics <file>', 'write a Prometheus textfile for node_exporter to FILE (atomically)')
    .option('--min-reclaim <bytes>', 'compact a disk only if that frees at least this much (default 64M; 0 = any amount; at most 2040G)', parseMinReclaim)
    .option('--max-depth <n>', 'shorten chains with more than N differencing layers above their base (default: never)', parseDepth)
    .option('--remove-orphans', 'delete the intermediate layers shortening leaves unused (if no disk names them as parent)')
    .option('--relink', "rewrite the locators of children whose parent was found only by UUID under the roots, after relink's proof")
    .option('--exclude <glob>', 'skip files and folders matching GLOB (repeatable; "*.avhd", "archive", "clients/old/**")', collect, [])
    .option('--free-space', "compact leaves with --free-space: also drop the sectors in clusters the guest's file systems mark free")
    .option('--drop <list>', 'with --free-space, also drop the content of: pagefile, swapfile, hiberfil, swap (comma-separated; only with the VMs shut down)', parseDrops)
    .option('--shard <K/N>', 'work only on the chain families of shard K of N (K from 0), by the UUID of their base', parseShardArg)
    .option('--threads <n>', 'worker threads of the comparison pool (0 = none)', parseThreads)
    .option('--concurrency <n>', `disks worked on at once (default ${DEFAULT_CONCURRENCY})`, parseConcurrency)
    .option('-v, --verbose', 'list every chain family, also those with nothing to do')
    .option('--no-progress', 'no progress spinner')
    .addHelpText('after', [
      '',
      'Exit status: 0 every family healthy and maintained (a disk locked by another vhdtool, open in',
      'another process or in saved state is skipped, which is not an error); 1 some family failed or was',
      'skipped for an error (unreadable disk, missing or mismatched parent, failed operation); any other',
      'code: a fatal error (see vhdtool --help).',
      '',
      'Stale locators: a child whose parent is found by UUID under the roots, not where its locators',
      'point (a moved or renamed folder), is maintained through that UUID index but other tools cannot',
      'open it: it is reported as a warning. --relink rewrites its locators with `vhdtool relink`\'s',
      'proof (UUID, size, time stamp, parent chain, the guest\'s file systems); a refused relink is an',
      'error and that disk is not written in that run.',
      '',
      'Examples:',
      '  vhdtool maintain /srv/vhd --dry-run',
      '  vhdtool maintain /srv/vhd --min-reclaim 256M --max-depth 4 --remove-orphans \\',
      '      --report /var/log/vhdtool/maintain.json --metrics /var/lib/node_exporter/textfile/vhdtool.prom',
      '  vhdtool maintain /mnt/vhd --shard 2/8 --exclude "*.avhd" --json',
    ].join('\n'))
    .action(async (roots: string[], o: MaintainFlags) => {
      if (o.drop && !o.freeSpace) throw new VhdToolError('USAGE', '--drop needs --free-space');
      const [{ maintain }, { renderHuman }] = await Promise.all([import('../../ops/maintain.js'), import('../../maintain/report.js')]);
      // Off a terminal (cron mail, journald, a pod's log): one time-stamped line per disk as the run goes,
      // on standard output before the summary (not with --json, whose output is one object).
      const logLine = io.tty || o.json ? undefined : (e: MaintainEvent) => io.out(`${e.at.toISOString()} ${e.path}: ${e.text}`);
      const r = await maintain(roots, {
        dryRun: o.dryRun, minReclaim: o.minReclaim, maxDepth: o.maxDepth ?? null, removeOrphans: o.removeOrphans, relink: o.relink,
        exclude: o.exclude, shard: o.shard, threads: o.threads, concurrency: o.concurrency, freeSpace: o.freeSpace, drop: o.drop,
        reportFile: o.report, metricsFile: o.metrics, signal: io.signal, progress: progressFor(io, o), onEvent: logLine,
      });
      if (o.json) json(io, r);
      else for (const line of renderHuman(r, o.verbose)) io.out(line);
      if (r.fatal) io.err(`vhdtool: ${r.fatal.path ? `${r.fatal.path}: ` : ''}${r.fatal.message}`);
      done(r.exitCode);
    });
}
