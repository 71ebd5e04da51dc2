/**
 * The undo journal behind relink's in-place write: failures while writing
 * roll the disk back; a journal left beside a disk that no longer matches it
 * is never applied (readers and lockers refuse, the journal stays); a
 * journal's every field is validated; the patch handle cannot grow a file.
 */
import { copyFileSync, existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { FaultyFileSystem } from '../../src/io/faulty.js';
import { applyJournaled, decodeJournal, journalPathFor, recoverJournal, type Patch } from '../../src/io/journal.js';
import { lockDisk } from '../../src/io/lock.js';
import { openVhd } from '../../src/vhd/image.js';
import { runCli } from '../helpers/cliRun.js';
import { tempDir } from '../helpers/tmp.js';

function file(bytes = 64 * 1024): { p: string; orig: Buffer } {
  const dir = tempDir();
  const p = path.join(dir, 'disk.bin');
  const orig = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) orig[i] = (i * 7) & 0xff;
  writeFileSync(p, orig);
  return { p, orig };
}

function patches(orig: Buffer): Patch[] {
  return [512, 8192, 20480].map((offset) => ({ offset, old: Uint8Array.from(orig.subarray(offset, offset + 1024)), new: new Uint8Array(1024).fill(0xee) }));
}

function spec(p: string, orig: Buffer) {
  const st = statSync(p);
  return { disk: p, patches: patches(orig), expect: { dev: st.dev, ino: st.ino, size: st.size }, times: { atimeMs: st.atimeMs, mtimeMs: st.mtimeMs } };
}

describe('undo journal', () => {
  it('writes every region and leaves no journal; file times are kept', async () => {
    const { p, orig } = file();
    const st = statSync(p);
    await applyJournaled(nodeFileSystem, spec(p, orig));
    const now = readFileSync(p);
    for (const q of patches(orig)) expect(now.subarray(q.offset, q.offset + 1024).every((b) => b === 0xee)).toBe(true);
    expect(now.subarray(0, 512).equals(orig.subarray(0, 512))).toBe(true);
    expect(existsSync(journalPathFor(p))).toBe(false);
    expect(Math.abs(statSync(p).mtimeMs - st.mtimeMs)).toBeLessThan(0.01);
  });

  for (const [kind, at] of [['write', 2], ['sync', 2], ['unlink', 1]] as const) {
    it(`a failing ${kind} (#${at}) rolls the disk back to its exact bytes and removes the journal`, async () => {
      const { p, orig } = file();
      const fs = new FaultyFileSystem(nodeFileSystem, { kind, at, errno: 'EIO', partial: true });
      await expect(applyJournaled(fs, spec(p, orig))).rejects.toMatchObject({ code: 'WRITE_FAILED' });
      expect(fs.injected).toHaveLength(1);
      expect(readFileSync(p).equals(orig)).toBe(true);
      // The journal's removal is the commit: when it fails, the write is undone and the journal removed on the retry.
      expect(existsSync(journalPathFor(p))).toBe(false);
      const r = await recoverJournal(nodeFileSystem, p);
      expect(r === null || r.action === 'nothing-to-undo').toBe(true);
      expect(readFileSync(p).equals(orig)).toBe(true);
    });
  }

  it('refuses to start when the disk changed since it was planned; nothing is written', async () => {
    const { p, orig } = file();
    const s = spec(p, orig);
    const changed = Buffer.from(orig);
    changed[8192] ^= 1;
    writeFileSync(p, changed);
    await expect(applyJournaled(nodeFileSystem, s)).rejects.toMatchObject({ code: 'VERIFY_FAILED' });
    expect(readFileSync(p).equals(changed)).toBe(true);
    expect(existsSync(journalPathFor(p))).toBe(false);
  });

  it('a journal that no longer matches its disk is never applied: readers and lockers refuse, and it stays', async () => {
    // A real disk, relinked half way by hand: a journal for it, then the disk replaced by another file.
    const dir = tempDir();
    expect((await runCli(['create', path.join(dir, 'base.vhd'), '--size', '8M'])).code).toBe(0);
    const disk = path.join(dir, 'child.vhd');
    expect((await runCli(['create', disk, '--parent', path.join(dir, 'base.vhd')])).code).toBe(0);
    const orig = readFileSync(disk);
    const jp = journalPathFor(disk);
    const st = statSync(disk);
    const body = JSON.stringify({
      format: 'vhdtool-undo-journal', version: 1, disk: 'child.vhd', pid: 1, host: 'h', size: st.size, atimeMs: 0, mtimeMs: 0,
      regions: [{ offset: 4096, old: Buffer.alloc(512, 1).toString('base64'), new: Buffer.alloc(512, 2).toString('base64') }],
    });
    writeFileSync(jp, `${body}\n${createHash('sha256').update(body).digest('hex')}\n`);
    expect(decodeJournal(readFileSync(jp)).ok).toBe(true);
    await expect(openVhd(nodeFileSystem, disk)).rejects.toMatchObject({ code: 'REFUSED', message: expect.stringMatching(/no longer matches it/) });
    await expect(lockDisk(nodeFileSystem, disk)).rejects.toMatchObject({ code: 'REFUSED' });
    const r = await runCli(['info', disk]);
    expect(r.code).toBe(6);
    expect(r.err[0]).toMatch(/an interrupted relink left the undo journal .* check it, then remove the journal/);
    expect(existsSync(jp)).toBe(true);
    expect(existsSync(path.join(dir, '.child.vhd.vhdtool.lock'))).toBe(false);
    expect(readFileSync(disk).equals(orig)).toBe(true);
  });

  it('decoding validates every field: a cut, edited or out-of-range journal is rejected', () => {
    const body = { format: 'vhdtool-undo-journal', version: 1, disk: 'd', pid: 1, host: 'h', size: 4096, atimeMs: 0, mtimeMs: 0, regions: [{ offset: 0, old: 'AAAA', new: 'AQEB' }] };
    const enc = (b: unknown) => {
      const line = JSON.stringify(b);
      return Buffer.from(`${line}\n${createHash('sha256').update(line).digest('hex')}\n`);
    };
    expect(decodeJournal(enc(body)).ok).toBe(true);
    const good = enc(body);
    expect(decodeJournal(good.subarray(0, good.length - 10))).toMatchObject({ ok: false });
    const edited = Buffer.from(good);
    edited[20] ^= 1;
    expect(decodeJournal(edited)).toMatchObject({ ok: false, reason: 'checksum mismatch' });
    for (const bad of [
      { ...body, version: 2 },
      { ...body, regions: [] },
      { ...body, regions: [{ offset: 4094, old: 'AAAA', new: 'AQEB' }] },
      { ...body, regions: [{ offset: 0, old: 'AAAA', new: 'AQ==' }] },
      { ...body, regions: [{ offset: 0, old: 'AAAA', new: 'AQEB' }, { offset: 2, old: 'AAAA', new: 'AQEB' }] },
      { ...body, size: -1 },
    ]) expect(decodeJournal(enc(bad)).ok, JSON.stringify(bad)).toBe(false);
  });

  it('the in-place handle refuses to write past the end of a file, and to open through a symbolic link', async () => {
    const { p } = file(4096);
    const f = await nodeFileSystem.openForPatch(p);
    try {
      await expect(f.write(new Uint8Array(10), 0, 10, 4090)).rejects.toMatchObject({ code: 'EINVAL' });
      expect(statSync(p).size).toBe(4096);
    } finally {
      await f.close();
    }
    const link = `${p}.lnk`;
    copyFileSync(p, `${p}.copy`);
    symlinkSync(p, link);
    await expect(nodeFileSystem.openForPatch(link)).rejects.toMatchObject({ code: 'ELOOP' });
  });
});
