/**
 * A reader that stops early (`vhdtool cat disk | head -c 512`, `vhdtool info
 * disk | head -1`) closes the pipe. vhdtool must stop quietly with its
 * documented status 141, as tools do on SIGPIPE, never die on an unhandled
 * EPIPE with a stack trace.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hasStackTrace } from '../helpers/cliRun.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/vhdtool.js');
const sample = path.join(root, 'fixtures/sample/child.vhd');

/** Runs vhdtool and closes its standard output: at once, or after the first chunk arrives. */
function runClosing(args: string[], closeAfterFirstChunk: boolean): Promise<{ code: number | null; err: string; got: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let got = 0;
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.stdout.on('error', () => undefined);
    if (closeAfterFirstChunk) {
      p.stdout.once('data', (d: Buffer) => { got += d.length; p.stdout.destroy(); });
    } else {
      p.stdout.destroy();
    }
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, err, got }));
  });
}

describe('a reader that closes standard output early', () => {
  it('cat stops quietly with status 141 after the reader took its first bytes', async () => {
    const r = await runClosing(['cat', sample], true);
    expect(r.got).toBeGreaterThan(0);
    expect(r.code).toBe(141);
    expect(r.err).toBe('');
  });

  it('info and --help stop quietly with status 141, no stack trace', async () => {
    for (const args of [['info', sample], ['maintain', '--help'], ['info', sample, '--json']]) {
      const r = await runClosing(args, false);
      expect(r.code, args.join(' ')).toBe(141);
      expect(hasStackTrace(r.err.split('\n')), r.err).toBe(false);
      expect(r.err).toBe('');
    }
  });
});
