import type { Command } from 'commander';
import { json, parseThreads, progressFor, type CliIO } from '../context.js';

export function registerCompare(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('compare')
    .description('compare the guest-visible content of two disks, each through its own parents')
    .argument('<a>', 'first VHD')
    .argument('<b>', 'second VHD')
    .option('--parent-a <path>', "A's parent, overriding its locators")
    .option('--parent-b <path>', "B's parent, overriding its locators")
    .option('--strict', 'sizes must be equal too (by default extra space that reads zero is fine)')
    .option('--threads <n>', 'threads that compare, the main thread one of them (default: cores; 0 or 1 = the main thread alone)', parseThreads)
    .option('--no-progress', 'no progress spinner')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExit status (as qemu-img compare): 0 identical, 1 different, 2 or more an error.\n\nExamples:\n  vhdtool compare user1.vhd user1-merged.vhd\n  vhdtool compare a.vhd b.vhd --json')
    .action(async (a: string, b: string, o: { parentA?: string; parentB?: string; strict?: boolean; threads?: number; json?: boolean; progress?: boolean }) => {
      const { compare } = await import('../../ops/compare.js');
      const r = await compare(a, b, { parentA: o.parentA, parentB: o.parentB, strict: o.strict, threads: o.threads, progress: progressFor(io, o), signal: io.signal });
      if (o.json) json(io, r);
      else if (r.identical) io.out(`Images are identical.${r.sizeA !== r.sizeB ? ` (sizes differ: ${r.sizeA} vs ${r.sizeB}; the extra space reads zero)` : ''}`);
      else {
        if (r.firstDifference !== null) io.out(`Content mismatch at offset ${r.firstDifference}.`);
        else io.out(`Sizes differ: ${r.sizeA} vs ${r.sizeB}.`);
        for (const [s, e] of r.ranges) io.out(`  differs: bytes ${s}..${e - 1} (${e - s} bytes)`);
      }
      done(r.identical ? 0 : 1);
    });
}
