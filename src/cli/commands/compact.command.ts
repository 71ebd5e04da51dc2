import type { Command } from 'commander';
import type { CompactResult } from '../../ops/compact.js';
import { DROP_KINDS, type DropKind } from '../../plan/dropPlan.js';
import { VhdToolError } from '../../errors.js';
import { plural } from '../../plural.js';
import { fmtBytes, json, parseDrops, parseThreads, progressFor, type CliIO } from '../context.js';

export function registerCompact(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('compact')
    .description('drop every child sector the parent chain already holds (differencing), or every all-zero block (dynamic); in place, atomically')
    .argument('<disk>', 'dynamic or differencing VHD')
    .option('-o, --output <out>', 'write the compacted disk here and leave DISK untouched')
    .option('--parent <path>', "the disk's parent, overriding its locators")
    .option('-n, --dry-run', 'change nothing; report what would be reclaimed')
    .option('--force', 'replace an existing --output')
    .option('--free-space', "also drop the sectors that lie wholly in clusters the guest's file systems mark free (read through the whole chain)")
    .option('--drop <list>', `with --free-space, also drop the content of: ${DROP_KINDS.join(', ')} (comma-separated; only with the VM shut down)`, parseDrops)
    .option('--threads <n>', 'worker threads (0 = compare on the main thread)', parseThreads)
    .option('--no-progress', 'no progress spinner')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExamples:\n  vhdtool compact user1.vhd --dry-run\n  vhdtool compact user1.vhd\n  vhdtool compact user1.vhd --output /tmp/user1-small.vhd --json\n  vhdtool compact user1.vhd --free-space --dry-run\n  vhdtool compact user1.vhd --free-space --drop pagefile,hiberfil')
    .action(async (disk: string, o: CompactFlags) => {
      if (o.drop && !o.freeSpace) throw new VhdToolError('USAGE', '--drop needs --free-space');
      const { compact } = await import('../../ops/compact.js');
      const r = await compact(disk, {
        output: o.output, parent: o.parent, dryRun: o.dryRun, force: o.force, threads: o.threads,
        freeSpace: o.freeSpace, drop: o.drop,
        progress: progressFor(io, o), signal: io.signal,
      });
      if (o.json) json(io, r);
      else renderCompact(io, r);
      done(0);
    });
}

interface CompactFlags {
  output?: string; parent?: string; dryRun?: boolean; force?: boolean; threads?: number; json?: boolean; progress?: boolean;
  freeSpace?: boolean; drop?: DropKind[];
}

function renderCompact(io: CliIO, r: CompactResult): void {
  const s = r.sectors;
  const b = r.blocks;
  const verb = r.dryRun ? 'would reclaim' : 'reclaimed';
  const bytes = r.dryRun ? r.reclaimableBytes : r.reclaimedBytes;
  if (r.type === 'differencing') {
    io.out(`${r.path}: examined ${plural(s.examined, 'sector')}: ${s.sameAsParent} same as parent, ${s.zeroOverZero} zero over zero, ${s.kept} kept`);
  }
  if (r.freeSpace) renderFreeSpace(io, r);
  io.out(`${r.path}: blocks ${b.before} -> ${b.after} (${b.zero} zero, ${b.emptied} emptied, ${b.empty} with no sector set${b.freed !== undefined ? `, ${b.freed} freed` : ''})`);
  if (!r.changed && !r.dryRun) io.out(`${r.path}: already compact; left unchanged`);
  else if (!r.changed) io.out(`${r.path}: already compact; nothing to reclaim`);
  else io.out(`${r.output}: ${verb} ${plural(bytes, 'byte')} (${fmtBytes(bytes)}): ${r.originalSize} -> ${plural(r.newSize, 'byte')}`);
}

function renderFreeSpace(io: CliIO, r: CompactResult): void {
  const f = r.freeSpace!;
  const verb = r.dryRun ? 'would drop' : 'dropped';
  const reasons = (b: Record<string, number>) => Object.entries(b).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${fmtBytes(n)}`).join(', ') || 'nothing';
  if (f.tableError) io.out(`${r.path}: partition table not read (${f.tableError}); no free space dropped`);
  for (const p of f.partitions) {
    const name = `partition ${p.index} (${p.fs}${p.label ? ` "${p.label}"` : ''})`;
    if (p.status === 'skipped') io.out(`${r.path}: ${name}: left as it is: ${p.reason}`);
    else io.out(`${r.path}: ${name}: ${verb} ${reasons(p.bytes)}`);
    for (const x of p.refused) io.out(`${r.path}: ${name}: --drop ${x.drop} refused: ${x.reason}`);
  }
  const out = reasons(f.outside);
  if (out !== 'nothing') io.out(`${r.path}: outside partitions: ${verb} ${out}`);
  if (f.blocksKept.count > 0) {
    io.out(`${r.path}: ${plural(f.blocksKept.count, 'block')} with freed sectors ${f.blocksKept.count === 1 ? 'stays' : 'stay'} allocated for ${fmtBytes(f.blocksKept.usedBytes)} of used sectors in ${f.blocksKept.count === 1 ? 'it' : 'them'}`);
  }
}
