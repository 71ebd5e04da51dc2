/**
 * The vhdtool command line. This module alone owns exit codes and the
 * rendering of errors: one line, naming the file, never a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { ErrorCodes, VhdToolError } from '../errors.js';
import { removeLiveFilesSync } from '../io/live.js';
import { closeEarly } from '../parallel/early.js';
import type { CliIO } from './context.js';
import { loadSpinner } from './progress.js';
import { EXIT_PIPE, isTerminal, stderrTerminal, writeText } from './stdio.js';
import { VERSION } from './version.js';

export { VERSION };

const EXIT_HELP = `
Exit status:
  0    success (check: clean; compare: identical)
  1    check: problems found; compare: different; diff: files changed; rebase --check: conflicts;
       maintain: some chain failed or was skipped for an error
  2    bad usage (unknown option, bad value, missing argument)
  3    a path does not exist, is not a regular file, or cannot be read
  4    not a VHD, or its metadata breaks the format (checksum, truncated, out of range)
  5    the chain cannot be opened: parent not found, parent UUID mismatch, cycle, too deep
  6    refused to protect data: saved state, fixed disk, output exists or is an input, disk locked or in use
  7    writing failed (disk full, permission denied, I/O error); the original is intact
  8    the output did not verify; it was discarded and the original is intact
  9    a guest partition table or file system cannot be read (map, diff, rebase --check)
  70   internal error (a bug: please report it)
  130  interrupted; the original is intact
  141  standard output was closed early (a reader such as head stopped reading)`;

type Register = (program: Command, io: CliIO, done: (code: number) => void) => void;

const mergeAndConvert = async (): Promise<Register> => (await import('./commands/merge.command.js')).registerMerge;
/**
 * Each command's module, by command name, in the order help lists them. A
 * command line that names a command loads only that one (a dozen modules
 * fewer to load at start-up); any other (help, --version, a typo) loads all.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  info: async () => (await import('./commands/info.command.js')).registerInfo,
  check: async () => (await import('./commands/check.command.js')).registerCheck,
  compact: async () => (await import('./commands/compact.command.js')).registerCompact,
  merge: mergeAndConvert,
  convert: mergeAndConvert,
  rebase: async () => (await import('./commands/rebase.command.js')).registerRebase,
  compare: async () => (await import('./commands/compare.command.js')).registerCompare,
  cat: async () => (await import('./commands/cat.command.js')).registerCat,
  maintain: async () => (await import('./commands/maintain.command.js')).registerMaintain,
  create: async () => (await import('./commands/create.command.js')).registerCreate,
  relink: async () => (await import('./commands/relink.command.js')).registerRelink,
  map: async () => (await import('./commands/map.command.js')).registerMap,
  diff: async () => (await import('./commands/diff.command.js')).registerDiff,
};

/** The program, with the command `argv` names (all of them when it names none). */
export async function buildProgram(io: CliIO, done: (code: number) => void, argv: string[] = []): Promise<Command> {
  const program = new Command();
  program
    .name('vhdtool')
    .description('Keep chains of VHD differencing disks small, correct and short.')
    .version(VERSION)
    .configureOutput(outputConfig(io))
    .exitOverride()
    .addHelpText('after', `\nExamples:\n  vhdtool info child.vhd\n  vhdtool check child.vhd\n  vhdtool compact child.vhd --dry-run\n  vhdtool merge child.vhd parent.vhd merged.vhd\n  vhdtool rebase user-full.vhd --onto golden.vhd --output user.vhd\n  vhdtool compare child.vhd merged.vhd\n  vhdtool maintain /srv/vhd --min-reclaim 64M --json\n  vhdtool create user1.vhd --parent golden.vhd\n  vhdtool relink user1.vhd --search /srv/golden --dry-run\n  vhdtool map child.vhd --files --svg child-map.svg\n  vhdtool diff user1.vhd\n  vhdtool rebase user1.vhd --onto golden-v2.vhd --check\n${EXIT_HELP}`);
  const name = argv[2];
  const loaders = name !== undefined && Object.hasOwn(COMMANDS, name) ? [COMMANDS[name]] : [...new Set(Object.values(COMMANDS))];
  for (const register of await Promise.all(loaders.map((load) => load()))) register(program, io, done);
  for (const c of program.commands) c.exitOverride().configureOutput(outputConfig(io));
  return program;
}

/** Help goes to stdout; usage errors become one line on stderr. */
function outputConfig(io: CliIO) {
  return {
    writeOut: (s: string) => io.out(s.replace(/\n$/, '')),
    writeErr: (s: string) => io.err(s.replace(/\n$/, '')),
    outputError: (s: string, write: (s: string) => void) => write(`vhdtool: ${s.trim().replace(/^error: /, '').replace(/\n+/g, ' ')} (see --help)\n`),
  };
}

/**
 * After SIGINT/SIGTERM an operation stops at its next unit of work; one that
 * has not stopped after this long is stopped here: its temporaries and locks
 * are removed and the process exits 130.
 */
export const INTERRUPT_GRACE_MS = 1500;

/** A terminal with a real size: progress is drawn only there (a 0-column pseudo-terminal would make the spinner loop). */
export function terminalHasSize(s: { isTTY?: boolean; columns?: number; rows?: number }): boolean {
  return Boolean(s.isTTY) && (s.columns ?? 0) > 0 && (s.rows ?? 0) > 0;
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[], io?: Partial<CliIO>): Promise<number> {
  const ac = new AbortController();
  const cli: CliIO = {
    out: io?.out ?? ((l) => writeText(1, l + '\n')),
    err: io?.err ?? ((l) => writeText(2, l + '\n')),
    tty: io?.tty ?? terminalHasSize(stderrTerminal() ?? {}),
    stdoutTty: io?.stdoutTty ?? isTerminal(1),
    signal: io?.signal ?? ac.signal,
  };
  let interrupts = 0;
  const stopNow = () => {
    removeLiveFilesSync();
    writeText(2, 'vhdtool: interrupted; every disk is intact\n');
    process.exit(ErrorCodes.INTERRUPTED);
  };
  const onSignal = () => {
    interrupts++;
    ac.abort();
    if (interrupts > 1) stopNow();
    else setTimeout(stopNow, INTERRUPT_GRACE_MS).unref();
  };
  const installSignals = !io;
  if (installSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  let code = 0;
  const wantsJson = argv.includes('--json');
  if (cli.tty && !wantsJson) await loadSpinner();
  try {
    const program = await buildProgram(cli, (c) => { code = c; }, argv);
    if (argv.length <= 2) {
      // No command: the help, on standard error (it is not the output of anything), and bad usage.
      program.outputHelp({ error: true });
      return ErrorCodes.USAGE;
    }
    await program.parseAsync(argv);
    if (cli.signal.aborted && code !== ErrorCodes.INTERRUPTED) {
      // Finished despite the signal: it did its work, but the caller asked it to stop.
      cli.err('vhdtool: interrupted');
      code = ErrorCodes.INTERRUPTED;
    }
  } catch (e) {
    code = report(cli, e, wantsJson, argv[2]);
  } finally {
    // Threads started ahead (cli/prestart.ts) that the command never took over.
    await closeEarly();
    if (installSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  return code;
}

/** Exit status when standard output is closed early (cli/stdio.ts, and cat's stream). */
export { EXIT_PIPE };

/** Commands that take --parent, and those that take --lenient (for the hints on errors). */
const HAS_PARENT = new Set(['info', 'check', 'compact', 'convert', 'cat']);
const HAS_LENIENT = new Set(['info', 'cat']);

/** What the user can do about an error, when the command offers it. */
export function hintFor(err: VhdToolError, command: string | undefined): string | null {
  if (command === undefined) return null;
  if (err.code === 'PARENT_NOT_FOUND' && HAS_PARENT.has(command)) return 'hint: use --parent PATH to name the parent';
  if (err.code === 'PARENT_NOT_FOUND' && command === 'compare') return 'hint: use --parent-a PATH or --parent-b PATH to name the parent';
  if (err.code === 'BAD_CHECKSUM' && HAS_LENIENT.has(command)) return 'hint: --lenient reads past it, for forensics';
  if (err.code === 'BAD_FORMAT' && HAS_LENIENT.has(command) && err.message.includes('the copy at offset 0 is intact')) return 'hint: --lenient reads with the copy, for forensics';
  return null;
}

function report(io: CliIO, e: unknown, wantsJson: boolean, command?: string): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    // commander has already printed its one-line message.
    return ErrorCodes.USAGE;
  }
  let err: VhdToolError;
  if (e instanceof VhdToolError) {
    err = e;
    const cause = (e as { cause?: unknown }).cause;
    if (process.env.VHDTOOL_DEBUG && e.code === 'INTERNAL' && cause instanceof Error) io.err(String(cause.stack));
  } else {
    const msg = e instanceof Error ? e.message.split('\n')[0] : String(e);
    err = new VhdToolError('INTERNAL', `internal error: ${msg} (please report this; set VHDTOOL_DEBUG=1 for details)`);
    if (process.env.VHDTOOL_DEBUG) io.err(String(e instanceof Error ? e.stack : e));
  }
  const hint = hintFor(err, command);
  if (err.code === 'INTERRUPTED') io.err('vhdtool: interrupted; nothing was changed');
  else io.err(`vhdtool: ${err.line}${hint ? ` (${hint})` : ''}`);
  if (wantsJson) io.out(JSON.stringify({ error: hint ? { ...err.toJSON(), hint } : err.toJSON() }, null, 2));
  return err.exitCode;
}
