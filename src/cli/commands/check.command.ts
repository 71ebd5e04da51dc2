import type { Command } from 'commander';
import type { CheckReport } from '../../check/check.js';
import { VhdToolError } from '../../errors.js';
import { plural } from '../../plural.js';
import { json, parseThreads, type CliIO } from '../context.js';

/** A disk's report, or why it could not be opened at all (a missing path, a folder, no permission). */
type Entry = CheckReport & { error?: { code: string; exitCode: number; message: string } };

export function registerCheck(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('check')
    .description('validate disks: footers, header, BAT, overlaps, bitmaps, locators and the parent link')
    .argument('<disk...>', 'VHD files')
    .option('--parent <path>', "the disk's parent, overriding its locators")
    .option('--fast', 'metadata only: skip reading block data for the bitmap rule')
    .option('--threads <n>', 'worker threads (0 = none)', parseThreads)
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nEvery path is reported, also after one that cannot be read.\nExit status: 0 clean (warnings allowed), 1 problems found, 3 a path could not be read.\n\nExamples:\n  vhdtool check child.vhd\n  vhdtool check --json /srv/vhd/*.vhd')
    .action(async (disks: string[], o: { parent?: string; fast?: boolean; threads?: number; json?: boolean }) => {
      const [{ checkDisk }, { nodeFileSystem }, { createRunner, defaultThreads }] = await Promise.all([
        import('../../check/check.js'), import('../../io/fsys.js'), import('../../parallel/pool.js')]);
      const runner = createRunner({ threads: o.threads ?? defaultThreads(), slotBytes: 512 });
      const reports: Entry[] = [];
      let unreadable: VhdToolError | null = null;
      try {
        for (const d of disks) {
          if (io.signal.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
          try {
            reports.push(await checkDisk(nodeFileSystem, d, runner, { parent: o.parent, fast: o.fast }));
          } catch (e) {
            // One disk alone: its error is the command's (as before). Several: report it and go on.
            if (disks.length === 1 || !(e instanceof VhdToolError) || e.code === 'INTERNAL' || e.code === 'INTERRUPTED') throw e;
            unreadable ??= e;
            if (!o.json) io.err(`vhdtool: ${e.line}`);
            reports.push({
              path: d, type: null, ok: false, errors: [{ severity: 'error', rule: 'open', message: e.message }], warnings: [], parents: [],
              error: { code: e.code, exitCode: e.exitCode, message: e.message },
            });
          }
        }
      } finally {
        await runner.close();
      }
      const ok = reports.every((r) => r.ok);
      if (o.json) json(io, disks.length === 1 ? reports[0] : { ok, disks: reports });
      else {
        for (const r of reports) {
          if (r.error) continue;
          for (const e of r.errors) io.out(`${r.path}: error: ${e.message}`);
          for (const w of r.warnings) io.out(`${r.path}: warning: ${w.message}`);
          io.out(`${r.path}: ${r.ok ? 'ok' : plural(r.errors.length, 'problem')}${r.warnings.length ? `, ${plural(r.warnings.length, 'warning')}` : ''}`);
        }
      }
      done(unreadable ? unreadable.exitCode : ok ? 0 : 1);
    });
}
