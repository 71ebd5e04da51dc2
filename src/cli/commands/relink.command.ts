import type { Command } from 'commander';
import type { RelinkResult } from '../../ops/relink.js';
import { json, parseThreads, progressFor, type CliIO } from '../context.js';

export function registerRelink(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('relink')
    .description("repair a differencing disk's link to its parent, after proving the candidate is that parent")
    .argument('<child>', 'differencing VHD whose parent moved or was renamed')
    .option('--parent <path>', 'the new parent')
    .option('--search <dir...>', 'find the parent by its UUID under these folders (folder symlinks are not followed)')
    .option('-n, --dry-run', 'change nothing; show the proof and the locators it would write')
    .option('--ignore-id-mismatch', "accept a parent whose UUID is not the one the child names, and write its UUID (with --parent only; like Set-VHD -IgnoreIdMismatch)")
    .option('--force', 'accept a parent modified after the link was made (and record its time stamp), or smaller than the child')
    .option('--threads <n>', 'worker threads for checking the parent chain (0 = none)', parseThreads)
    .option('--no-progress', 'no progress spinner')
    .option('--json', 'print one JSON object')
    .addHelpText('after', `
The proof, each check reported before anything is written:
  parent-uuid   the candidate has the UUID the child names (--ignore-id-mismatch accepts another)
  virtual-size  the candidate is as large as the child (a larger child: --force)
  parent-time   the candidate file was not modified after the link was made (--force accepts it)
  parent-chain  the candidate's chain is complete and every layer passes \`vhdtool check\`
  guest-filesystems  the guest's file systems (FAT, ext, NTFS) read through the new chain
                add nothing the candidate alone lacks: no cluster owned twice, no file in
                free clusters, no unreachable record, no directory entry naming a record
                or inode not in use, no torn record at the child/parent seam (no
                override; a volume not shut down cleanly: --force)
VHD records no content link to the parent: see "limits" in the output.

The header and locator sectors are rewritten in place under an undo journal
when the new locators fit the room the file reserves, else the whole file is
rewritten atomically; a crash leaves the old link or the new one.

Exit status: 0 relinked (or would be, with --dry-run; a dry run that a real
run would refuse exits with that refusal's status); 5 parent not found, UUID
or size mismatch, ambiguous copies, the candidate's own chain broken; 6
refused (a later parent without --force, saved state, locked or in use); 4 a
layer of the candidate's chain fails check; 9 the guest's file systems through
the new chain are inconsistent (a wrong or modified parent).

Examples:
  vhdtool relink user1.vhd --search /srv/golden --dry-run
  vhdtool relink user1.vhd --search /srv/golden /mnt/backup
  vhdtool relink "Snapshot 2.avhd" --parent "../Virtual Hard Disks/base.vhd"
  vhdtool relink user1.vhd --parent restored-base.vhd --force --json`)
    .action(async (child: string, o: { parent?: string; search?: string[]; dryRun?: boolean; ignoreIdMismatch?: boolean; force?: boolean; threads?: number; json?: boolean; progress?: boolean }) => {
      const { relink } = await import('../../ops/relink.js');
      const r = await relink(child, {
        parent: o.parent, search: o.search, dryRun: o.dryRun, ignoreIdMismatch: o.ignoreIdMismatch, force: o.force,
        threads: o.threads, progress: progressFor(io, o), signal: io.signal,
      });
      if (o.json) json(io, r);
      else renderRelink(io, r);
      done(r.refusal ? r.refusal.exitCode : 0);
    });
}

function renderRelink(io: CliIO, r: RelinkResult): void {
  io.out(`${r.path}: candidate parent ${r.parent.path} (${r.parent.uuid}), found by ${r.parent.foundBy}`);
  io.out('proof:');
  r.proof.checks.forEach((c, i) => {
    const mark = c.overridden ? `${c.status}, accepted by ${c.override}` : c.refuses && c.override ? `${c.status}, needs ${c.override}` : c.status;
    io.out(`  ${i + 1}. ${c.name.padEnd(13)} ${mark}: ${c.evidence}`);
  });
  io.out('not proven:');
  for (const l of r.proof.limits) io.out(`  - ${l}`);
  const what = r.method === 'unchanged' ? 'link (unchanged)' : r.dryRun ? 'link to write' : 'link written';
  io.out(`${what}: parent name ${JSON.stringify(r.after.parentUnicodeName)}, parent UUID ${r.after.parentUuid}, parent time ${r.after.parentTimestamp}`);
  for (const l of r.after.locators) io.out(`  ${l.platform} ${JSON.stringify(l.path)} at ${l.dataOffset}, ${l.dataSpace} bytes reserved`);
  for (const d of r.dropped) io.out(`  dropped: ${d}`);
  if (r.refusal) io.out(`${r.path}: a real run would be refused: ${r.refusal.message}`);
  else if (r.method === 'unchanged') io.out(`${r.path}: already linked to this parent; nothing to write`);
  else if (r.dryRun) io.out(`${r.path}: would relink (${r.method}: ${r.methodReason})`);
  else io.out(`${r.path}: relinked (${r.method}: ${r.methodReason})`);
}
