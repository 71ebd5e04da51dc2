import type { Command } from 'commander';
import type { CompactResult } from '../../ops/compact.js';
import { plural } from '../../plural.js';
import { fmtBytes, json, parseThreads, progressFor, type CliIO } from '../context.js';

export function registerCompact(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('compact')
    .description('drop every child sector the parent chain already holds (differencing), or every all-zero block (dynamic); in place, atomically')
    .argument('<disk>', 'dynamic or differencing VHD')
    .option('-o, --output <out>', 'write the compacted disk here and leave DISK untouched')
    .option('--parent <path>', "the disk's parent, overriding its locators")
    .option('-n, --dry-run', 'change nothing; report what would be reclaimed')
    .option('--force', 'replace an existing --output')
    .option('--threads <n>', 'worker threads (0 = compare on the main thread)', parseThreads)
    .option('--no-progress', 'no progress spinner')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExamples:\n  vhdtool compact user1.vhd --dry-run\n  vhdtool compact user1.vhd\n  vhdtool compact user1.vhd --output /tmp/user1-small.vhd --json')
    .action(async (disk: string, o: { output?: string; parent?: string; dryRun?: boolean; force?: boolean; threads?: number; json?: boolean; progress?: boolean }) => {
      const { compact } = await import('../../ops/compact.js');
      const r = await compact(disk, {
        output: o.output, parent: o.parent, dryRun: o.dryRun, force: o.force, threads: o.threads,
        progress: progressFor(io, o), signal: io.signal,
      });
      if (o.json) json(io, r);
      else renderCompact(io, r);
      done(0);
    });
}

function renderCompact(io: CliIO, r: CompactResult): void {
  const s = r.sectors;
  const b = r.blocks;
  const verb = r.dryRun ? 'would reclaim' : 'reclaimed';
  const bytes = r.dryRun ? r.reclaimableBytes : r.reclaimedBytes;
  if (r.type === 'differencing') {
    io.out(`${r.path}: examined ${plural(s.examined, 'sector')}: ${s.sameAsParent} same as parent, ${s.zeroOverZero} zero over zero, ${s.kept} kept`);
  }
  io.out(`${r.path}: blocks ${b.before} -> ${b.after} (${b.zero} zero, ${b.emptied} emptied, ${b.empty} with no sector set)`);
  if (!r.changed && !r.dryRun) io.out(`${r.path}: already compact; left unchanged`);
  else if (!r.changed) io.out(`${r.path}: already compact; nothing to reclaim`);
  else io.out(`${r.output}: ${verb} ${plural(bytes, 'byte')} (${fmtBytes(bytes)}): ${r.originalSize} -> ${plural(r.newSize, 'byte')}`);
}
