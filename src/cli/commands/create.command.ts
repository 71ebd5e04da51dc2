import type { Command } from 'commander';
import { Option } from 'commander';
import type { CreateResult } from '../../ops/create.js';
import { fmtBytes, json, parseBlockSize, parseSize, parseThreads, progressFor, type CliIO } from '../context.js';
import { displaySafe } from '../../errors.js';

export function registerCreate(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('create')
    .description('create an empty disk: a dynamic or fixed base (--size), or a differencing disk over a parent (--parent)')
    .argument('<disk>', 'new VHD file')
    .option('--size <size>', 'virtual size of a base: 40G, 512M, 1T (a multiple of 512 bytes)', parseSize)
    .addOption(new Option('--type <type>', 'base type (default dynamic)').choices(['dynamic', 'fixed']))
    .option('--block-size <size>', 'block size of a dynamic or differencing disk (default 2M; a child: its parent\'s)', parseBlockSize)
    .option('--parent <path>', 'make an empty differencing disk over this parent (its size, UUID and time stamp)')
    .option('--force', 'replace an existing file')
    .option('--threads <n>', 'worker threads for checking the parent chain (0 = none)', parseThreads)
    .option('--no-progress', 'no progress spinner')
    .option('--json', 'print one JSON object')
    .addHelpText('after', `
A differencing disk is laid out as Hyper-V lays out its own: W2ku and W2ru
locators (4 KiB and 64 KiB reserved), BAT at 8 KiB, block data 4 KiB aligned.
The parent must pass \`vhdtool check\` and must not be in saved state. An
existing file is refused unless --force.

Examples:
  vhdtool create golden.vhd --size 40G
  vhdtool create small.vhd --size 512M --type fixed
  vhdtool create user1.vhd --parent golden.vhd
  vhdtool create "Snapshot 1.avhd" --parent base.vhd --json`)
    .action(async (disk: string, o: { size?: number; type?: 'dynamic' | 'fixed'; blockSize?: number; parent?: string; force?: boolean; threads?: number; json?: boolean; progress?: boolean }) => {
      const { create } = await import('../../ops/create.js');
      const r = await create(disk, {
        size: o.size, type: o.type, blockSize: o.blockSize, parent: o.parent, force: o.force,
        threads: o.threads,
        progress: progressFor(io, o), signal: io.signal,
      });
      if (o.json) json(io, r);
      else renderCreate(io, r);
      done(0);
    });
}

function renderCreate(io: CliIO, r: CreateResult): void {
  const what = r.type === 'differencing' ? `a differencing disk over ${r.parent!.path} (${r.parent!.uuid})` : `a ${r.type} disk`;
  io.out(`${r.path}: created ${what}, ${r.virtualSize} bytes (${fmtBytes(r.virtualSize)}) virtual, UUID ${r.uuid}${r.replaced ? ' (replaced the old file)' : ''}`);
  for (const l of r.locators) io.out(`${r.path}: ${l.platform} locator ${displaySafe(l.path)} (${l.dataSpace} bytes reserved)`);
}
