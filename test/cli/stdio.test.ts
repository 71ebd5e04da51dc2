/**
 * The command line's own writer (cli/stdio.ts): lines go straight to the
 * descriptor, whole and in order; a descriptor that would block hands the
 * rest, and every later line, to Node's stream, in order; standard output
 * closed early exits 141 and any other failure exits 7; a failing standard
 * error is ignored. node:fs's writeSync is replaced by a scripted one.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

interface Script {
  /** What each call does, in turn: write at most N bytes, or fail with an error code. */
  steps: Array<number | string>;
  written: Map<number, string>;
}
const script = vi.hoisted((): Script => ({ steps: [], written: new Map() }));
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const writeSync = ((fd: number, buf: Buffer, off = 0, len = buf.length - off) => {
    const step = script.steps.length > 0 ? script.steps.shift()! : Infinity;
    if (typeof step === 'string') throw Object.assign(new Error(step), { code: step });
    const n = Math.min(step, len);
    script.written.set(fd, (script.written.get(fd) ?? '') + buf.subarray(off, off + n).toString());
    return n;
  }) as unknown as typeof real.writeSync;
  return { ...real, default: { ...real, writeSync }, writeSync };
});

async function freshStdio(): Promise<typeof import('../../src/cli/stdio.js')> {
  vi.resetModules();
  script.steps = [];
  script.written = new Map();
  return import('../../src/cli/stdio.js');
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the command line\'s writer', () => {
  it('writes a line whole across short writes, to the descriptor named', async () => {
    const { writeText } = await freshStdio();
    script.steps = [3, 1, 2];
    writeText(1, 'hello, world\n');
    writeText(2, 'warning\n');
    expect(script.written.get(1)).toBe('hello, world\n');
    expect(script.written.get(2)).toBe('warning\n');
  });

  it('after EAGAIN, the rest of the line and every later line go through the stream, in order', async () => {
    const { writeText } = await freshStdio();
    const streamed: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: Uint8Array | string) => {
      streamed.push(Buffer.from(chunk).toString());
      return true;
    }) as typeof process.stdout.write);
    script.steps = [4, 'EAGAIN'];
    writeText(1, 'first line\n');
    writeText(1, 'second line\n');
    expect(script.written.get(1)).toBe('firs');
    expect(streamed.join('')).toBe('t line\nsecond line\n');
  });

  it('standard output closed early exits 141 and another failure exits 7; standard error failing is ignored', async () => {
    const { writeText, EXIT_PIPE } = await freshStdio();
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as typeof process.exit);
    script.steps = ['EPIPE'];
    writeText(1, 'x\n');
    script.steps = ['ENOSPC'];
    writeText(1, 'x\n');
    script.steps = ['EPIPE'];
    writeText(2, 'x\n');
    expect(exit.mock.calls).toEqual([[EXIT_PIPE], [7]]);
    expect(EXIT_PIPE).toBe(141);
  });
});
