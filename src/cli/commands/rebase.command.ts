import type { Command } from 'commander';
import { VhdToolError } from '../../errors.js';
import type { RebaseResult } from '../../ops/rebase.js';
import { fmtBytes, json, parseThreads, progressFor, type CliIO } from '../context.js';
import { renderCheck, renderCheckRoots } from '../templateCheckRender.js';

interface RebaseFlags {
  onto: string;
  output?: string;
  parent?: string;
  dryRun?: boolean;
  force?: boolean;
  check?: boolean;
  old?: string;
  threads?: number;
  json?: boolean;
  progress?: boolean;
}

export function registerRebase(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('rebase')
    .description("make DISK a differencing disk of NEWPARENT showing exactly DISK's view, holding only the sectors that differ; in place (UUID kept) or as a new disk")
    .argument('<disk...>', 'differencing, dynamic or fixed VHD, or a raw image (.img/.raw, raw by content; needs --output); with --check, a child or folders of children')
    .requiredOption('--onto <newparent>', 'the new parent VHD (same virtual size, or larger with zeros past DISK\'s end)')
    .option('-o, --output <out>', 'write the result here with a new UUID and leave DISK untouched')
    .option('--parent <path>', "DISK's current parent, overriding its locators")
    .option('-n, --dry-run', 'change nothing; report what the result would hold')
    .option('--force', 'replace an existing --output')
    .option('--check', 'change nothing: report which files the update (old parent -> NEWPARENT) and the user changed, the conflicts, and whether a naive relink would corrupt the disk')
    .option('--old <template>', 'with --check over folders: the old template the children sit on (default: the one disk outside the folders they all sit on)')
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

--check (the template update report; writes nothing): DISK sits on the old
template OLD. It lists the files the update changed (OLD -> NEWPARENT), the
files the user changed (OLD -> DISK), the conflicts (files both changed, files
one side changed in a directory the other deleted), the file-system metadata
both changed, and whether a naive relink (vhd-util modify -p, Set-VHD
-ParentPath) would corrupt the disk (it does when both changed metadata or
any common sector). The verdict is always safe-to-rebase: rebase keeps the
user's view. Given folders, every child of OLD found under them is checked
(one line per user). Exit status with --check: 0 no conflict; 1 conflicts;
2 or more an error (9: a file system cannot be read; the message names the
disk and the partition).

Examples:
  vhdtool rebase user1.vhd --onto golden-v2.vhd --dry-run
  vhdtool rebase user1.vhd --onto golden-v2.vhd
  vhdtool rebase user-full.vhd --onto golden.vhd --output user.vhd
  vhdtool rebase disk.img --onto golden.vhd --output user.vhd --json
  vhdtool rebase user1.vhd --onto golden-v2.vhd --check
  vhdtool rebase /srv/users --onto /srv/golden/golden-v2.vhd --check --json`)
    .action(async (disks: string[], o: RebaseFlags) => {
      if (o.check) {
        done(await check(io, disks, o));
        return;
      }
      if (o.old !== undefined) throw new VhdToolError('USAGE', '--old applies only with --check');
      if (disks.length > 1) throw new VhdToolError('USAGE', `rebase takes one disk (${disks.length} given); several disks or folders only with --check`);
      const disk = disks[0];
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

/** --check: one child (a file), or every child of the old template under folders. */
async function check(io: CliIO, disks: string[], o: RebaseFlags): Promise<number> {
  const bad = (['output', 'dryRun', 'force'] as const).find((k) => o[k] !== undefined);
  if (bad) throw new VhdToolError('USAGE', `--check writes nothing; --${bad === 'dryRun' ? 'dry-run' : bad} does not apply`);
  const { statSync } = await import('node:fs');
  const single = disks.length === 1 && o.old === undefined && !isDirectory(statSync, disks[0]);
  const progress = progressFor(io, o);
  if (single) {
    const { templateCheck, checkExitCode } = await import('../../ops/templateCheck.js');
    const r = await templateCheck(disks[0], o.onto, { parent: o.parent, threads: o.threads, progress, signal: io.signal });
    if (o.json) json(io, r);
    else renderCheck(io, r);
    return checkExitCode(r);
  }
  if (o.parent !== undefined) throw new VhdToolError('USAGE', '--parent applies to one child; over folders every child\'s parent is found by discovery');
  const { templateCheckRoots, checkExitCode } = await import('../../ops/templateCheck.js');
  const r = await templateCheckRoots(disks, o.onto, { old: o.old, threads: o.threads, progress, signal: io.signal });
  if (o.json) json(io, r);
  else renderCheckRoots(io, r);
  const failed = r.users.filter((u) => !u.ok).map((u) => (u.ok ? 0 : u.error.exitCode));
  if (failed.length) return Math.max(...failed);
  return r.users.some((u) => u.ok && checkExitCode(u) === 1) ? 1 : 0;
}

function isDirectory(stat: typeof import('node:fs').statSync, p: string): boolean {
  try {
    return stat(p).isDirectory();
  } catch {
    // A path that cannot be read is the operation's to report, as a child.
    return false;
  }
}

function renderRebase(io: CliIO, r: RebaseResult): void {
  const s = r.sectors;
  const verb = r.dryRun ? 'would hold' : 'holds';
  const id = r.uuid ? `UUID ${r.uuid}${r.uuidKept ? ' (kept)' : ' (new)'}` : 'a new UUID';
  io.out(`${r.output}: ${verb} ${r.path}'s view (${r.inputType}) over ${r.newParent.path} (${r.newParent.uuid}); ${id}`);
  io.out(`${r.output}: examined ${s.examined} sectors: ${s.kept} differ from the new parent and are kept, ${s.sameAsParent} same as the new parent, ${s.zeroOverZero} zero over zero${s.shared ? `; ${s.shared} read from the same file by both (not read)` : ''}`);
  const saved = r.savedBytes >= 0 ? `saves ${r.savedBytes} bytes (${fmtBytes(r.savedBytes)})` : `grows by ${-r.savedBytes} bytes (${fmtBytes(-r.savedBytes)})`;
  io.out(`${r.output}: ${r.blocks} blocks, file ${r.originalSize} -> ${r.newSize} bytes: ${saved}${r.dryRun ? '' : `; proven to read as ${r.path} (${fmtBytes(r.verifiedBytes)} checked where the new parent shows through)`}`);
}
