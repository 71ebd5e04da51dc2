/**
 * What the installed command runs (bin/vhdtool.js, through the bundle
 * dist/cli/vhdtool.cjs that `npm run build` makes of this module).
 *
 * It loads only what the command line needs: `--version` prints the version
 * and loads nothing else; `compare` starts its worker threads before the rest
 * loads (cli/prestart.ts); every other command line loads the command line
 * (commander) and its own command's modules, and an operation's modules only
 * when it runs (cli/main.ts).
 */
import type { CliIO } from './context.js';
import { VERSION } from './version.js';

/** Runs the command line; resolves to the exit code. `io` as for main() (the build passes one). */
export async function run(argv: string[], io?: Partial<CliIO>): Promise<number> {
  const args = argv.slice(2);
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
    if (io?.out) io.out(VERSION);
    else (await import('./stdio.js')).writeText(1, `${VERSION}\n`);
    return 0;
  }
  if (args[0] === 'compare' && !io) (await import('./prestart.js')).prestart(argv);
  const { main } = await import('./main.js');
  return main(argv, io);
}
