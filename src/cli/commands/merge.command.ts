import type { Command } from 'commander';
import { Option } from 'commander';
import type { MergeResult } from '../../ops/merge.js';
import { plural } from '../../plural.js';
import { fmtBytes, json, parseThreads, progressFor, type CliIO } from '../context.js';

export function registerMerge(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('merge')
    .description('write a new disk holding CHILD over PARENT (coalesced into one layer, or flattened); inputs are never touched')
    .argument('<child>', 'differencing VHD')
    .argument('<parent>', "CHILD's parent (checked by UUID)")
    .argument('<out>', 'new VHD to write')
    .option('--flatten', 'resolve the whole chain into one standalone disk')
    .addOption(new Option('--type <type>', 'standalone output type').choices(['dynamic', 'fixed']))
    .option('--force', 'replace an existing OUT')
    .option('-n, --dry-run', 'write nothing; report what OUT would hold')
    .option('--threads <n>', 'worker threads (0 = none)', parseThreads)
    .option('--no-progress', 'no progress spinner')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nPARENT a base disk: OUT is standalone. PARENT a differencing disk: OUT is a differencing disk\nlinked to PARENT\'s parent (two layers become one).\n\nExamples:\n  vhdtool merge user1.vhd golden.vhd user1-full.vhd\n  vhdtool merge snap2.avhd snap1.avhd snap12.vhd\n  vhdtool merge snap2.avhd snap1.avhd flat.vhd --flatten --type fixed')
    .action(async (child: string, parent: string, out: string, o: { flatten?: boolean; type?: 'dynamic' | 'fixed'; force?: boolean; dryRun?: boolean; threads?: number; json?: boolean; progress?: boolean }) => {
      const { merge } = await import('../../ops/merge.js');
      const r = await merge(child, parent, out, {
        flatten: o.flatten, type: o.type, force: o.force, dryRun: o.dryRun, threads: o.threads,
        progress: progressFor(io, o), signal: io.signal,
      });
      if (o.json) json(io, r);
      else renderMerge(io, r);
      done(0);
    });

  program
    .command('convert')
    .description("write a disk's guest content (its whole chain) as a new standalone dynamic or fixed disk")
    .argument('<disk>', 'any VHD')
    .argument('<out>', 'new VHD to write')
    .addOption(new Option('--type <type>', 'output type').choices(['dynamic', 'fixed']).default('dynamic'))
    .option('--parent <path>', "the disk's parent, overriding its locators")
    .option('--force', 'replace an existing OUT')
    .option('--threads <n>', 'worker threads (0 = none)', parseThreads)
    .option('--no-progress', 'no progress spinner')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExamples:\n  vhdtool convert fixed.vhd dynamic.vhd\n  vhdtool convert child.vhd standalone-fixed.vhd --type fixed')
    .action(async (disk: string, out: string, o: { type?: 'dynamic' | 'fixed'; parent?: string; force?: boolean; threads?: number; json?: boolean; progress?: boolean }) => {
      const { convert } = await import('../../ops/merge.js');
      const r = await convert(disk, out, { type: o.type, parent: o.parent, force: o.force, threads: o.threads, progress: progressFor(io, o), signal: io.signal });
      if (o.json) json(io, r);
      else renderMerge(io, r);
      done(0);
    });
}

function renderMerge(io: CliIO, r: MergeResult): void {
  const what = r.dryRun ? 'would write' : 'wrote';
  const link = r.linkedTo ? `, linked to ${r.linkedTo.path} (${r.linkedTo.uuid})` : '';
  const id = r.uuid ?? '(with a new UUID)';
  io.out(`${r.output}: ${what} a ${r.outputType} disk ${id} from ${plural(r.layersMerged, 'layer')}${link}`);
  io.out(`${r.output}: ${plural(r.blocks, 'block')}, ${plural(r.bytesWritten, 'data byte')}, file ${plural(r.fileSize, 'byte')} (${fmtBytes(r.fileSize)}), ${(r.durationMs / 1000).toFixed(2)} s`);
}
