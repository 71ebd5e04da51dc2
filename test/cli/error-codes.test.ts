/**
 * One test per error code in ErrorCodes, each triggered through the real code
 * path (the CLI where the code is reachable from it, the library otherwise):
 * the error carries the code, its exit status is the documented one, and the
 * CLI prints exactly one line `vhdtool: <path>: <message>` on stderr.
 */
import { describe, expect, it } from 'vitest';
import * as os from 'node:os';
import * as path from 'node:path';
import { existsSync, writeFileSync, unlinkSync } from 'node:fs';
import { ErrorCodes, VhdToolError, type ErrorCode } from '../../src/errors.js';
import { main } from '../../src/cli/main.js';
import { nodeFileSystem, type FileSystem, type RandomAccessFile } from '../../src/io/fsys.js';
import { writeSynthChain, type SynthLayer, type BuiltLayer } from '../../src/synth/build.js';
import { info } from '../../src/ops/info.js';
import { compact } from '../../src/ops/compact.js';
import { createRunner } from '../../src/parallel/pool.js';
import { encodeUtf16Le, newUuid } from '../../src/format/index.js';
import { writeSynthLayer } from '../../src/synth/build.js';
import { tempDir } from '../helpers/tmp.js';
import { runCli, hasStackTrace, type CliRun } from '../helpers/cliRun.js';
import { patchFooter, patchHeader } from '../helpers/patch.js';
import { HAVE_MKFS_FAT, HAVE_MTOOLS } from '../helpers/guest.js';
import { childOf, diskOf, fatScene } from '../helpers/relinkScenes.js';

const KiB = 1024;
const tested = new Set<ErrorCode>();

const layers = (): SynthLayer[] => [
  { type: 'dynamic', virtualSize: 512 * KiB, blockSize: 64 * KiB, writes: [{ sector: 0, data: new Uint8Array(4096).fill(1) }], parentTimestamp: 1 },
  { type: 'differencing', virtualSize: 512 * KiB, blockSize: 64 * KiB, writes: [{ sector: 2, data: new Uint8Array(1024).fill(9) }, { sector: 300, data: new Uint8Array(8192).fill(7) }], parentTimestamp: 1 },
];

async function chain(): Promise<{ dir: string; base: BuiltLayer; child: BuiltLayer }> {
  const dir = tempDir();
  const [base, child] = await writeSynthChain(nodeFileSystem, dir, layers());
  return { dir, base, child };
}

/** Asserts the CLI run failed with `code`'s exit status and one clean stderr line. */
function expectExit(r: CliRun, code: ErrorCode, line: RegExp | string): void {
  expect(r.code, r.err.join('\n')).toBe(ErrorCodes[code]);
  expect(r.err).toHaveLength(1);
  if (typeof line === 'string') expect(r.err[0]).toBe(line);
  else expect(r.err[0]).toMatch(line);
  expect(hasStackTrace([...r.out, ...r.err])).toBe(false);
  tested.add(code);
}

async function thrown(p: Promise<unknown>): Promise<VhdToolError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(VhdToolError);
  return e as VhdToolError;
}

/** nodeFileSystem with some operations replaced. */
function faultyFs(over: Partial<FileSystem>): FileSystem {
  return { ...nodeFileSystem, ...over };
}

function wrapFile(f: RandomAccessFile, write: RandomAccessFile['write']): RandomAccessFile {
  return {
    path: f.path,
    read: (b, o, l, p) => f.read(b, o, l, p),
    write,
    writev: async (bufs, pos) => { let p = pos; for (const b of bufs) { await write(b, 0, b.length, p); p += b.length; } },
    size: () => f.size(), truncate: (n) => f.truncate(n), sync: () => f.sync(), close: () => f.close(),
  };
}

describe('every error code, through the real code path', () => {
  it('USAGE (2): a missing argument, and --type on a merge whose parent is a differencing disk', async () => {
    expectExit(await runCli(['info']), 'USAGE', "vhdtool: missing required argument 'disk' (see --help)");
    expectExit(await runCli(['check', '--threads', 'many', 'x.vhd']), 'USAGE', /^vhdtool: option '--threads <n>' argument 'many' is invalid/);
    const dir = tempDir();
    const b = await writeSynthChain(nodeFileSystem, dir, [...layers(), { ...layers()[1] }]);
    const r = await runCli(['merge', '--threads', '0', '--no-progress', '--type', 'fixed', b[2].path, b[1].path, path.join(dir, 'out.vhd')]);
    expectExit(r, 'USAGE', `vhdtool: ${b[1].path}: --type applies to a standalone output; ${b[1].path} is itself a differencing disk (add --flatten to resolve the whole chain)`);
  });

  it('NOT_FOUND (3): a path that does not exist', async () => {
    const p = path.join(tempDir(), 'missing.vhd');
    expectExit(await runCli(['info', p]), 'NOT_FOUND', `vhdtool: ${p}: no such file`);
  });

  it('NOT_A_FILE (3): a directory', async () => {
    const p = tempDir();
    expectExit(await runCli(['info', p]), 'NOT_A_FILE', `vhdtool: ${p}: is a directory, not a VHD file`);
  });

  it('ACCESS (3): a file the system refuses to open (EACCES)', async () => {
    const { base } = await chain();
    const fs = faultyFs({ openRead: async () => { throw Object.assign(new Error(`EACCES: permission denied, open '${base.path}'`), { code: 'EACCES' }); } });
    const e = await thrown(info(base.path, { fs }));
    expect(e).toMatchObject({ code: 'ACCESS', path: base.path, message: 'permission denied' });
    expect(e.exitCode).toBe(3);
    tested.add('ACCESS');
  });

  it('BAD_FORMAT (4): a file that is not a VHD', async () => {
    const p = path.join(tempDir(), 'notes.vhd');
    writeFileSync(p, 'just some text, not a disk\n'.repeat(100));
    expectExit(await runCli(['info', p]), 'BAD_FORMAT', `vhdtool: ${p}: not a VHD file: no "conectix" footer at offset ${2700 - 512}`);
  });

  it('BAD_CHECKSUM (4): a footer whose checksum does not match', async () => {
    const { base } = await chain();
    patchFooter(base.path, (f) => ({ ...f, checksum: 0 }), { reseal: false });
    expectExit(await runCli(['info', base.path]), 'BAD_CHECKSUM', new RegExp(`^vhdtool: ${base.path}: footer checksum mismatch: stored 0x00000000, computed 0x[0-9a-f]{8} \\(hint: --lenient reads past it, for forensics\\)$`));
  });

  it('TRUNCATED (4): an empty file', async () => {
    const p = path.join(tempDir(), 'empty.vhd');
    writeFileSync(p, '');
    expectExit(await runCli(['info', p]), 'TRUNCATED', `vhdtool: ${p}: file is empty, not a VHD`);
  });

  it('UNSUPPORTED (4): a block size that is not a power of two', async () => {
    const { base } = await chain();
    patchHeader(base.path, (h) => ({ ...h, blockSize: 3000 }));
    expectExit(await runCli(['info', base.path]), 'UNSUPPORTED', `vhdtool: ${base.path}: block size 3000 is not a power of two between 512 and 2 GiB`);
  });

  it('PARENT_NOT_FOUND (5): the parent was deleted', async () => {
    const { base, child } = await chain();
    unlinkSync(base.path);
    expectExit(await runCli(['info', child.path]), 'PARENT_NOT_FOUND', `vhdtool: ${child.path}: parent ${base.uniqueId} not found; tried ${base.path} (W2ru locator: not found) (hint: use --parent PATH to name the parent)`);
  });

  it('PARENT_MISMATCH (5): the parent was replaced by another disk', async () => {
    const { base, child } = await chain();
    const other = newUuid();
    patchFooter(base.path, (f) => ({ ...f, uniqueId: other }));
    expectExit(await runCli(['info', child.path]), 'PARENT_MISMATCH',
      `vhdtool: ${child.path}: parent UUID mismatch: ${child.path} expects parent ${base.uniqueId}; tried ${base.path} (W2ru locator: UUID ${other})`);
  });

  it('CHAIN_CYCLE (5): a disk that names itself as its parent', async () => {
    const { dir, base } = await chain();
    const u = newUuid();
    const self = await writeSynthLayer(nodeFileSystem, path.join(dir, 'self.vhd'), {
      ...layers()[1], uniqueId: u, locators: [{ platform: 'W2ru', data: encodeUtf16Le('.\\self.vhd') }], parentName: 'self.vhd',
    }, { path: base.path, uniqueId: u });
    expectExit(await runCli(['info', self.path]), 'CHAIN_CYCLE', `vhdtool: ${self.path}: disk names itself as its own parent (via W2ru locator ${self.path})`);
  });

  it('CHAIN_TOO_DEEP (5): a chain of 129 layers', async () => {
    const dir = tempDir();
    const tiny = (type: SynthLayer['type']): SynthLayer => ({ type, virtualSize: 4096, blockSize: 4096, writes: [], parentTimestamp: 1 });
    const b = await writeSynthChain(nodeFileSystem, dir, [tiny('dynamic'), ...Array.from({ length: 128 }, () => tiny('differencing'))]);
    expectExit(await runCli(['info', b[128].path]), 'CHAIN_TOO_DEEP', `vhdtool: ${b[128].path}: chain is deeper than 128 layers; refusing to follow it further`);
  });

  it('SAVED_STATE (6): compacting a disk in saved state', async () => {
    const { child } = await chain();
    patchFooter(child.path, (f) => ({ ...f, savedState: 1 }));
    expectExit(await runCli(['compact', '--threads', '0', '--no-progress', child.path]), 'SAVED_STATE',
      `vhdtool: ${child.path}: disk is in saved state (a virtual machine was saved with it attached); resume and shut down the VM first`);
  });

  it('REFUSED (6): compacting a fixed disk', async () => {
    const dir = tempDir();
    const [f] = await writeSynthChain(nodeFileSystem, dir, [{ type: 'fixed', virtualSize: 64 * KiB, writes: [] }]);
    expectExit(await runCli(['compact', '--threads', '0', '--no-progress', f.path]), 'REFUSED', new RegExp(`^vhdtool: ${f.path}: a fixed disk has no unallocated space to reclaim`));
  });

  it('OUTPUT_EXISTS (6): --output naming an existing file, which is left alone', async () => {
    const { dir, child } = await chain();
    const out = path.join(dir, 'out.vhd');
    writeFileSync(out, 'precious');
    expectExit(await runCli(['compact', '--threads', '0', '--no-progress', '--output', out, child.path]), 'OUTPUT_EXISTS',
      `vhdtool: ${out}: output already exists (use --force to replace it)`);
    expect(existsSync(out)).toBe(true);
  });

  it('OUTPUT_IS_INPUT (6): --output naming the parent', async () => {
    const { base, child } = await chain();
    expectExit(await runCli(['compact', '--threads', '0', '--no-progress', '--force', '--output', base.path, child.path]), 'OUTPUT_IS_INPUT',
      `vhdtool: ${base.path}: output is an input (${base.path}); refusing to write over it`);
  });

  it('LOCKED (6): another live vhdtool holds the disk\'s lock', async () => {
    const { dir, child } = await chain();
    const lock = path.join(dir, `.${path.basename(child.path)}.vhdtool.lock`);
    writeFileSync(lock, `${process.pid} ${os.hostname()}\n`);
    expectExit(await runCli(['compact', '--threads', '0', '--no-progress', child.path]), 'LOCKED',
      `vhdtool: ${child.path}: disk is locked by another vhdtool (pid ${process.pid} on ${os.hostname()}; lock ${lock})`);
    expect(existsSync(lock)).toBe(true);
  });

  it('WRITE_FAILED (7): no output directory, and a device that runs out of space', async () => {
    const { dir, child } = await chain();
    const out = path.join(dir, 'no-such-dir', 'out.vhd');
    expectExit(await runCli(['compact', '--threads', '0', '--no-progress', '--output', out, child.path]), 'WRITE_FAILED',
      `vhdtool: ${out}: output directory ${path.dirname(out)} does not exist`);
    const full = faultyFs({
      createExclusive: async (p, mode) => {
        const f = await nodeFileSystem.createExclusive(p, mode);
        return wrapFile(f, async () => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }); });
      },
    });
    const out2 = path.join(dir, 'out2.vhd');
    const e = await thrown(compact(child.path, { output: out2, fs: full, threads: 0 }));
    expect(e).toMatchObject({ code: 'WRITE_FAILED', message: 'no space left on device' });
    expect(existsSync(out2)).toBe(false);
  });

  it('VERIFY_FAILED (8): the bytes read back differ from what was written; nothing is published', async () => {
    const { dir, child } = await chain();
    const out = path.join(dir, 'out.vhd');
    const flaky = faultyFs({
      createExclusive: async (p, mode) => {
        const f = await nodeFileSystem.createExclusive(p, mode);
        // Block data goes out in units of at least 4 KiB; flip one bit of each on its way to the disk.
        return wrapFile(f, async (buf, off, len, pos) => {
          if (len < 4096) return f.write(buf, off, len, pos);
          const copy = buf.slice(off, off + len);
          copy[len >> 1] ^= 1;
          return f.write(copy, 0, len, pos);
        });
      },
    });
    const e = await thrown(compact(child.path, { output: out, fs: flaky, threads: 0 }));
    expect(e.code).toBe('VERIFY_FAILED');
    expect(e.exitCode).toBe(8);
    expect(e.message).toMatch(/^output did not verify \(data at output offset \d+ differs from the source\); nothing was replaced$/);
    expect(existsSync(out)).toBe(false);
    tested.add('VERIFY_FAILED');
  });

  it('BAD_FILESYSTEM (9): diff, where a sector the child changed holds a file system a reader claims and cannot read', async () => {
    const dir = tempDir();
    // An ext superblock that claims more blocks than the disk has: the ext reader claims the volume and refuses it.
    const sb = new Uint8Array(1024);
    const dv = new DataView(sb.buffer);
    dv.setUint32(0, 64, true);
    dv.setUint32(4, 100_000, true);
    dv.setUint16(0x38, 0xef53, true);
    const [, child] = await writeSynthChain(nodeFileSystem, dir, [
      { type: 'dynamic', virtualSize: 512 * KiB, blockSize: 64 * KiB, writes: [], parentTimestamp: 1 },
      { type: 'differencing', virtualSize: 512 * KiB, blockSize: 64 * KiB, writes: [{ sector: 2, data: sb }], parentTimestamp: 1 },
    ]);
    const r = await runCli(['diff', '--threads', '0', '--no-progress', child.path]);
    expectExit(r, 'BAD_FILESYSTEM', new RegExp(`^vhdtool: ${child.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: partition 1 \\(ext\\): ext superblock: `));
  });

  it('INTERRUPTED (130): compact with an aborted signal, library and CLI', async () => {
    const { dir, child } = await chain();
    const out = path.join(dir, 'out.vhd');
    const e = await thrown(compact(child.path, { output: out, threads: 0, signal: AbortSignal.abort() }));
    expect(e.code).toBe('INTERRUPTED');
    expect(existsSync(out)).toBe(false);
    const err: string[] = [];
    const code = await main(['node', 'vhdtool', 'compact', '--threads', '0', '--no-progress', '--output', out, child.path], {
      out: () => undefined, err: (l) => err.push(l), tty: false, signal: AbortSignal.abort(),
    });
    expect(code).toBe(130);
    expect(err).toEqual(['vhdtool: interrupted; nothing was changed']);
    expect(existsSync(out)).toBe(false);
    tested.add('INTERRUPTED');
  });

  it('INTERNAL (70): an invalid task given to the compare kernel, and an exception escaping a command', async () => {
    const { base } = await chain();
    const runner = createRunner({ threads: 0, slotBytes: 4096 });
    try {
      const e = await thrown(runner.run({ kind: 'digest', file: base.path, offset: 0.5, length: 10 }));
      expect(e.code).toBe('INTERNAL');
      expect(e.exitCode).toBe(70);
      expect(e.message).toMatch(/^worker failed: /);
    } finally {
      await runner.close();
    }
    const err: string[] = [];
    const code = await main(['node', 'vhdtool', 'info', base.path], {
      out: () => { throw new TypeError('output sink is broken'); }, err: (l) => err.push(l), tty: false,
    });
    expect(code).toBe(70);
    expect(err).toEqual(['vhdtool: internal error: output sink is broken (please report this; set VHDTOOL_DEBUG=1 for details)']);
    tested.add('INTERNAL');
  });

  it.skipIf(!HAVE_MKFS_FAT || !HAVE_MTOOLS)('BAD_FILESYSTEM (9): relink to a disk with the parent\'s UUID whose FAT gives the child\'s clusters to another file', async () => {
    const scene = fatScene(tempDir());
    const t = new Date(Date.now() - 3_600_000);
    const base = await diskOf(scene.template, path.join(scene.dir, 'base.vhd'), t);
    const child = await childOf(scene, base, path.join(scene.dir, 'child.vhd'));
    const other = await diskOf(scene.other, path.join(scene.dir, 'other.vhd'), t, base.uniqueId);
    const r = await runCli(['relink', child, '--parent', other.path, '--force']);
    expectExit(r, 'BAD_FILESYSTEM', /^vhdtool: .*child\.vhd: relink refused by the guest-filesystems check: partition 1 \(fat16, .*double-owned/);
  });

  it('covers every code in ErrorCodes (a new code without a test fails here)', () => {
    // BAD_FILESYSTEM's case needs mkfs.fat and mtools (installed by .ci/run).
    const all = Object.keys(ErrorCodes).filter((c) => c !== 'BAD_FILESYSTEM' || (HAVE_MKFS_FAT && HAVE_MTOOLS));
    expect([...tested].sort()).toEqual(all.sort());
  });
});
