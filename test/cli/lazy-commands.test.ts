/**
 * The command line loads only the module of the command it runs; help, the
 * version and anything it does not recognize still see every command.
 */
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { runCli } from '../helpers/cliRun.js';

const io = { out: () => undefined, err: () => undefined, tty: false, signal: new AbortController().signal };
const names = async (...args: string[]) => (await buildProgram(io, () => undefined, ['node', 'vhdtool', ...args])).commands.map((c) => c.name());
const ALL = ['info', 'check', 'compact', 'merge', 'convert', 'rebase', 'compare', 'cat', 'maintain', 'create', 'relink', 'map', 'diff'];

describe('commands are registered as needed', () => {
  it('a command line naming a command registers that command alone (merge and convert share a module)', async () => {
    expect(await names('compare', 'a.vhd', 'b.vhd')).toEqual(['compare']);
    expect(await names('maintain', '/srv')).toEqual(['maintain']);
    expect(await names('convert', 'a.vhd', 'b.vhd')).toEqual(['merge', 'convert']);
  });

  it('help, the version, no command and an unknown word register every command, in help order', async () => {
    for (const args of [[], ['--help'], ['help'], ['--version'], ['comapre']]) expect(await names(...args), args.join(' ')).toEqual(ALL);
  });

  it('a misspelt command is still answered with the closest one', async () => {
    const r = await runCli(['comapre', 'a.vhd', 'b.vhd']);
    expect(r.code).toBe(2);
    expect(r.err.join(' ')).toMatch(/unknown command 'comapre' \(Did you mean compare\?\)/);
  });
});
