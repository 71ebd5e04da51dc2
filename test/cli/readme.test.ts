/**
 * The README is the user's door: every command has a section, and every
 * option its --help lists is named in that section; the exit status table
 * lists every code vhdtool exits with.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { ErrorCodes } from '../../src/errors.js';

const README = readFileSync(path.resolve('README.md'), 'utf8');
const io = { out: () => undefined, err: () => undefined, tty: false, signal: new AbortController().signal };

/** The text of `### name` up to the next heading of level 2 or 3. */
function section(name: string): string | null {
  const m = new RegExp(`^### ${name}\\b.*$`, 'm').exec(README);
  if (!m) return null;
  const rest = README.slice(m.index + m[0].length);
  const next = /^##{0,1} |^### /m.exec(rest);
  return next ? rest.slice(0, next.index) : rest;
}

describe('the README', () => {
  it('has a section for every command, naming every option of its --help', async () => {
    const program = await buildProgram(io, () => undefined, ['node', 'vhdtool']);
    const missing: string[] = [];
    for (const cmd of program.commands) {
      const text = section(cmd.name());
      if (text === null) {
        missing.push(`${cmd.name()}: no section`);
        continue;
      }
      for (const o of cmd.options) {
        const flag = o.long ?? o.short!;
        if (flag === '--help') continue;
        if (!new RegExp(`${flag.replace(/[-]/g, '\\-')}(?![a-z-])`).test(text)) missing.push(`${cmd.name()} ${flag}`);
      }
    }
    expect(program.commands.length).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });

  it('lists every exit code in its exit status table', () => {
    const table = README.split('\n## Exit status')[1].split('\n## ')[0];
    const listed = new Set([...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1])));
    const codes = new Set([...Object.values(ErrorCodes), 0, 1, 141]);
    expect([...codes].filter((c) => !listed.has(c))).toEqual([]);
  });
});
