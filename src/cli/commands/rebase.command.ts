import type { Command } from 'commander';
import type { RebaseResult } from '../../ops/rebase.js';
import { fmtBytes, json, parseThreads, progressFor, type CliIO } from '../context.js';

interface RebaseFlags {
  onto: string;
  output?: string;
  parent?: string;
  dryRun?: boolean;
  force?: boolean;
  threads?: number;
  json?: boolean;
  progress?: boolean;
}

export function registerRebase(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('rebase')
    .description("make DISK a differencing disk of NEWPARENT showing exactly DISK's view, holding only the sectors that differ; in place (UUID kept) or as a new disk")
    .argument('<disk>', 'differencing, dynamic or fixed VHD, or a raw image (.img/.raw, raw by content; needs --output)')
    .requiredOption('--onto <newparent>', 'the new parent VHD (same virtual size, or larger with zeros past DISK\'s end)')
    .option('-o, --output <out>', 'write the result here with a new UUID and leave DISK untouched')
    .option('--parent <path>', "DISK's current parent, overriding its locators")
    .option('-n, --dry-run', 'change nothing; report what the result would hold')
    .option('--force', 'replace an existing --output')
    .option('--threads <n>', 'worker threads (0 = compare on the main thread)', parseThreads)
    .option('--no-progress', 'no progress spinner')
    .option('--json', 'print one JSON object')
    .addHelpText('after', `
In place the file is replaced atomically and keeps its UUID, so DISK's own children stay valid.
The new parent must not be DISK nor one of its descendants, nor in saved state.

Exit status: 0 done; 2 bad usage (a raw image without --output); 3 a path cannot be read;
4 not a VHD nor a raw image, or broken metadata; 5 a chain cannot be opened, or the new parent
is DISK or its descendant (a cycle); 6 refused (sizes, data past DISK's end, saved state, locked,
open elsewhere, output exists); 7 writing failed; 8 the result did not verify; 130 interrupted.
In every error case nothing was changed.

Examples:
  vhdtool rebase user1.vhd --onto golden-v2.vhd --dry-run
  vhdtool rebase user1.vhd --onto golden-v2.vhd
  vhdtool rebase user-full.vhd --onto golden.vhd --output user.vhd
  vhdtool rebase disk.img --onto golden.vhd --output user.vhd --json`)
    .action(async (disk: string, o: RebaseFlags) => {
      const { rebase } = await import('../../ops/rebase.js');
      const r = await rebase(disk, o.onto, {
        output: o.output, parent: o.parent, dryRun: o.dryRun, force: o.force, threads: o.threads,
        progress: progressFor(io, o), signal: io.signal,
      });
      if (o.json) json(io, r);
      else renderRebase(io, r);
      done(0);
    });
}

function renderRebase(io: CliIO, r: RebaseResult): void {
  const s = r.sectors;
  const verb = r.dryRun ? 'would hold' : 'holds';
  const id = r.uuid ? `${r.uuid}${r.uuidKept ? ' (kept)' : ' (new)'}` : 'a new UUID';
  io.out(`${r.output}: ${verb} ${r.path}'s view (${r.inputType}) over ${r.newParent.path} (${r.newParent.uuid}); UUID ${id}`);
  io.out(`${r.output}: examined ${s.examined} sectors: ${s.kept} differ from the new parent and are kept, ${s.sameAsParent} same as the new parent, ${s.zeroOverZero} zero over zero${s.shared ? `; ${s.shared} read from the same file by both (not read)` : ''}`);
  const saved = r.savedBytes >= 0 ? `saves ${r.savedBytes} bytes (${fmtBytes(r.savedBytes)})` : `grows by ${-r.savedBytes} bytes (${fmtBytes(-r.savedBytes)})`;
  io.out(`${r.output}: ${r.blocks} blocks, file ${r.originalSize} -> ${r.newSize} bytes: ${saved}${r.dryRun ? '' : `; proven to read as ${r.path} (${fmtBytes(r.verifiedBytes)} checked where the new parent shows through)`}`);
}
