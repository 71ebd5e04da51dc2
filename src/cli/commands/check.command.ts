import type { Command } from 'commander';
import type { CheckReport } from '../../check/check.js';
import { json, parseThreads, type CliIO } from '../context.js';

export function registerCheck(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('check')
    .description('validate disks: footers, header, BAT, overlaps, bitmaps, locators and the parent link')
    .argument('<disk...>', 'VHD files')
    .option('--parent <path>', "the disk's parent, overriding its locators")
    .option('--fast', 'metadata only: skip reading block data for the bitmap rule')
    .option('--threads <n>', 'worker threads (0 = none)', parseThreads)
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExit status: 0 clean (warnings allowed), 1 problems found.\n\nExamples:\n  vhdtool check child.vhd\n  vhdtool check --json /srv/vhd/*.vhd')
    .action(async (disks: string[], o: { parent?: string; fast?: boolean; threads?: number; json?: boolean }) => {
      const [{ checkDisk }, { nodeFileSystem }, { createRunner, defaultThreads }] = await Promise.all([
        import('../../check/check.js'), import('../../io/fsys.js'), import('../../parallel/pool.js')]);
      const runner = createRunner({ threads: o.threads ?? defaultThreads(), slotBytes: 512 });
      const reports: CheckReport[] = [];
      try {
        for (const d of disks) reports.push(await checkDisk(nodeFileSystem, d, runner, { parent: o.parent, fast: o.fast }));
      } finally {
        await runner.close();
      }
      const ok = reports.every((r) => r.ok);
      if (o.json) json(io, disks.length === 1 ? reports[0] : { ok, disks: reports });
      else {
        for (const r of reports) {
          for (const e of r.errors) io.out(`${r.path}: error: ${e.message}`);
          for (const w of r.warnings) io.out(`${r.path}: warning: ${w.message}`);
          io.out(`${r.path}: ${r.ok ? 'ok' : `${r.errors.length} problem(s)`}${r.warnings.length ? `, ${r.warnings.length} warning(s)` : ''}`);
        }
      }
      done(ok ? 0 : 1);
    });
}
