/**
 * A Prometheus textfile (node_exporter's textfile collector) describing the
 * last maintain run. Pure: the report in, the text out. Every sample carries
 * the label shard="K/N", so N shards can be told apart once scraped.
 *
 * The last-success time stamp survives failed runs: it is carried over from
 * the previous file (0 when maintain never succeeded there).
 */
import { shardLabel } from './shard.js';
import type { MaintainReport } from './report.js';
import { DROP_REASONS } from '../plan/dropPlan.js';

export interface MetricDef {
  name: string;
  help: string;
}

export const METRIC_NAMES = {
  reclaimed: 'vhdtool_maintain_reclaimed_bytes',
  reclaimable: 'vhdtool_maintain_reclaimable_bytes',
  dropped: 'vhdtool_maintain_dropped_bytes',
  compacted: 'vhdtool_maintain_disks_compacted',
  shortened: 'vhdtool_maintain_chains_shortened',
  coalesced: 'vhdtool_maintain_layers_coalesced',
  orphans: 'vhdtool_maintain_orphans_removed',
  relinked: 'vhdtool_maintain_disks_relinked',
  stale: 'vhdtool_maintain_stale_locators',
  errors: 'vhdtool_maintain_errors',
  disks: 'vhdtool_maintain_disks',
  unreadable: 'vhdtool_maintain_unreadable_disks',
  chains: 'vhdtool_maintain_chains',
  skipped: 'vhdtool_maintain_disks_skipped',
  duration: 'vhdtool_maintain_duration_seconds',
  discovery: 'vhdtool_maintain_discovery_seconds',
  lastRun: 'vhdtool_maintain_last_run_timestamp_seconds',
  lastSuccess: 'vhdtool_maintain_last_success_timestamp_seconds',
  exitCode: 'vhdtool_maintain_exit_code',
  dryRun: 'vhdtool_maintain_dry_run',
} as const;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** The last-success time stamp recorded for `shard` in a previous file, or null. */
export function lastSuccessFrom(text: string, shard: string): number | null {
  const want = `shard="${escapeLabel(shard)}"`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(METRIC_NAMES.lastSuccess + '{')) continue;
    const m = /^[a-z_]+\{(.*)\}\s+(\S+)/.exec(line);
    if (!m || !m[1].split(',').includes(want)) continue;
    const v = Number(m[2]);
    return Number.isFinite(v) && v > 0 ? v : null;
  }
  return null;
}

/** A run that counts as a success for the last-success time stamp. */
export function isSuccess(r: MaintainReport): boolean {
  return r.exitCode === 0 && !r.dryRun;
}

export function renderMetrics(r: MaintainReport, previous: string | null, now: Date = new Date(r.finishedAt)): string {
  const shard = shardLabel(r.shard);
  const base = `shard="${escapeLabel(shard)}"`;
  const s = r.summary;
  const nowS = Math.floor(now.getTime() / 1000);
  const last = isSuccess(r) ? nowS : (previous ? lastSuccessFrom(previous, shard) : null) ?? 0;
  const lines: string[] = [];
  const gauge = (name: string, help: string, samples: Array<[string, number]>) => {
    lines.push(`# HELP ${name} ${help}`);
    lines.push(`# TYPE ${name} gauge`);
    for (const [labels, v] of samples) lines.push(`${name}{${labels}} ${Number.isFinite(v) ? v : 0}`);
  };
  const one = (name: string, help: string, v: number) => gauge(name, help, [[base, v]]);
  one(METRIC_NAMES.reclaimed, 'Bytes reclaimed by compaction in the last maintain run.', s.bytesReclaimed);
  one(METRIC_NAMES.reclaimable, 'Bytes the dry-run figures promised for the disks chosen for compaction in the last run.', s.bytesReclaimable);
  // Sector bytes by reason: a metric of its own, not a label on reclaimable_bytes, whose figure is a
  // file-size reduction (block-granular) and whose sum over labels must stay that figure.
  gauge(METRIC_NAMES.dropped, 'Sector bytes the compactions chosen in the last run dropped (a dry run: would drop), by reason.',
    DROP_REASONS.map((reason) => [`${base},reason="${reason}"`, s.droppedBytes?.[reason] ?? 0]));
  one(METRIC_NAMES.compacted, 'Disks compacted in the last maintain run (a dry run: that would be).', s.disksCompacted);
  one(METRIC_NAMES.shortened, 'Chains shortened (leaves coalesced with their parent at least once) in the last run.', s.chainsShortened);
  one(METRIC_NAMES.coalesced, 'Coalesce steps (layers removed from chains) in the last run.', s.layersCoalesced);
  one(METRIC_NAMES.orphans, 'Unused intermediate layers deleted in the last run (--remove-orphans).', s.orphansRemoved);
  one(METRIC_NAMES.relinked, 'Children whose stale locators were rewritten after relink\'s proof in the last run (--relink; a dry run: would be).', s.disksRelinked);
  one(METRIC_NAMES.stale, 'Disks left with stale locators (parent found only by UUID under the roots) at the end of the last run.', s.staleLocators);
  one(METRIC_NAMES.errors, 'Errors in the last run: unreadable disks, broken chains, failed operations (and a fatal error).', s.errors);
  one(METRIC_NAMES.disks, 'Disk files found under the roots in the last run.', s.disksFound);
  one(METRIC_NAMES.unreadable, 'Disk files or folders that could not be read in the last run (this shard).', s.unreadable);
  gauge(METRIC_NAMES.chains, 'Chain families of this shard in the last run, by status.', [
    [`${base},status="ok"`, s.chainsOk],
    [`${base},status="skipped"`, s.chainsSkipped],
    [`${base},status="failed"`, s.chainsFailed],
  ]);
  one(METRIC_NAMES.skipped, 'Disks left alone for a reason that is not an error (locked, in use, saved state...).', s.disksSkipped);
  one(METRIC_NAMES.duration, 'Duration of the last maintain run.', r.durationMs / 1000);
  one(METRIC_NAMES.discovery, 'Duration of discovery (reading every header) in the last run.', s.discoveryMs / 1000);
  one(METRIC_NAMES.lastRun, 'Unix time the last maintain run finished.', nowS);
  one(METRIC_NAMES.lastSuccess, 'Unix time of the last maintain run that exited 0 (not a dry run); 0 if none yet.', last);
  one(METRIC_NAMES.exitCode, 'Exit status of the last maintain run (0 healthy, 1 chain errors, >=2 fatal).', r.exitCode);
  one(METRIC_NAMES.dryRun, '1 if the last run was a dry run.', r.dryRun ? 1 : 0);
  return lines.join('\n') + '\n';
}
