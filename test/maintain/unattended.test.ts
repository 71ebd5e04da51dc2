/**
 * Issue 17, maintain's items: --report and --metrics never overwrite a disk
 * (2); the human summary names every disk acted on, skipped or failed on,
 * and off a terminal one time-stamped line per disk comes as the run goes
 * (8); a damaged file gets the same diagnosis from info, check and maintain
 * (9).
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { ROOT } from '../reliability/helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { setSavedState } from './fixture.js';

const SAMPLE = path.join(ROOT, 'fixtures', 'sample');

async function cli(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'vhdtool', ...args], { out: (l) => out.push(...l.split('\n')), err: (l) => err.push(...l.split('\n')), tty: false });
  return { code, out, err };
}

/** A tree with the sample chain in `vm`, and the files' bytes. */
function tree(...vms: string[]): { root: string; at: (vm: string, f: string) => string } {
  const root = tempDir();
  for (const vm of vms) {
    mkdirSync(path.join(root, vm));
    for (const f of ['base.vhd', 'child.vhd']) copyFileSync(path.join(SAMPLE, f), path.join(root, vm, f));
  }
  return { root, at: (vm, f) => path.join(root, vm, f) };
}

describe('--report and --metrics never overwrite a disk, even in a dry run (item 2)', () => {
  it('a disk under the root, by its own name: refused (exit 6), the disk unchanged', async () => {
    const t = tree('vm3');
    const disk = t.at('vm3', 'child.vhd');
    const bytes = readFileSync(disk);
    const r = await cli(['maintain', t.root, '--dry-run', '--report', disk]);
    expect(r.code).toBe(6);
    expect(r.err).toContain(`vhdtool: ${disk}: --report names a VHD disk (by its content); refusing to write there (nothing was done)`);
    expect(readFileSync(disk).equals(bytes)).toBe(true);
  });

  it('a VHD by content under another name, outside the roots, through a symlink or a hard link: refused', async () => {
    const t = tree('vm3');
    const elsewhere = tempDir();
    const copy = path.join(elsewhere, 'report.json');
    copyFileSync(t.at('vm3', 'base.vhd'), copy);
    const link = path.join(elsewhere, 'metrics.prom');
    symlinkSync(t.at('vm3', 'base.vhd'), link);
    const hard = path.join(elsewhere, 'hard.prom');
    linkSync(t.at('vm3', 'child.vhd'), hard);
    for (const [flag, file] of [['--report', copy], ['--metrics', link], ['--metrics', hard]] as const) {
      const before = readFileSync(file);
      const r = await cli(['maintain', t.root, '--min-reclaim', '0', flag, file]);
      expect(r.code, file).toBe(6);
      expect(readFileSync(file).equals(before), file).toBe(true);
    }
    // Nothing was done either: the child was not compacted.
    expect(readFileSync(t.at('vm3', 'child.vhd')).equals(readFileSync(path.join(SAMPLE, 'child.vhd')))).toBe(true);
  });

  it("a new file with a disk's extension under a root, a ROOT itself, and report = metrics: refused, nothing created", async () => {
    const t = tree('vm3');
    const newDisk = path.join(t.root, 'vm3', 'new.vhd');
    expect((await cli(['maintain', t.root, '--dry-run', '--report', newDisk])).code).toBe(6);
    expect(existsSync(newDisk)).toBe(false);
    const single = t.at('vm3', 'child.vhd');
    expect((await cli(['maintain', single, '--dry-run', '--metrics', single])).code).toBe(6);
    const same = path.join(tempDir(), 'x.json');
    const r = await cli(['maintain', t.root, '--dry-run', '--report', same, '--metrics', same]);
    expect(r.code).toBe(6);
    expect(r.err.join('\n')).toContain('--metrics names the same file as --report');
    expect(existsSync(same)).toBe(false);
  });

  it('an ordinary report path still works', async () => {
    const t = tree('vm3');
    const rep = path.join(tempDir(), 'maintain.json');
    const r = await cli(['maintain', t.root, '--dry-run', '--report', rep]);
    expect(r.code).toBe(0);
    expect((JSON.parse(readFileSync(rep, 'utf8')) as { command: string }).command).toBe('maintain');
  });
});

describe("maintain's human output names every disk (item 8)", () => {
  it('compacted, shortened, skipped and unreadable disks each have a line with the reason; off a terminal, time-stamped lines come as it works', async () => {
    const t = tree('a', 'b', 'c');
    setSavedState(t.at('b', 'child.vhd'));
    writeFileSync(path.join(t.root, 'broken.vhd'), 'not a disk at all, just text that is long enough '.repeat(30));
    const r = await cli(['maintain', t.root, '--min-reclaim', '0', '--max-depth', '0', '--threads', '0', '--exclude', 'c']);
    expect(r.code).toBe(1);
    const out = r.out.filter(Boolean);
    const summaryAt = out.findIndex((l) => l.startsWith('vhdtool maintain: '));
    expect(summaryAt).toBeGreaterThan(0);
    const log = out.slice(0, summaryAt);
    const summary = out.slice(summaryAt);
    const stamp = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;
    expect(log.every((l) => stamp.test(l))).toBe(true);
    const logged = (p: string, what: string) => log.some((l) => l.replace(stamp, '').startsWith(`${p}: ${what}`));
    expect(logged(t.at('a', 'child.vhd'), 'shortened: coalesced with its parent')).toBe(true);
    expect(logged(t.at('b', 'child.vhd'), 'skipped (saved-state)')).toBe(true);
    expect(logged(path.join(t.root, 'broken.vhd'), 'unreadable file: ')).toBe(true);
    expect(logged(t.at('a', 'base.vhd'), 'compacted: ') || logged(t.at('a', 'base.vhd'), 'nothing to reclaim')).toBe(true);
    // The summary: every disk acted on, skipped or failed on.
    expect(summary).toContain(`    ${t.at('b', 'child.vhd')}: skipped (saved-state): in saved state (a VM was saved with it attached); never touched`);
    expect(summary.some((l) => l.startsWith(`    ${t.at('a', 'child.vhd')}: shortened: coalesced with its parent ${t.at('a', 'base.vhd')}; now standalone`))).toBe(true);
    expect(summary.some((l) => l.startsWith(`  ${path.join(t.root, 'broken.vhd')}: UNREADABLE file: `))).toBe(true);
    expect(summary[summary.length - 1]).toMatch(/; 1 error; .* exit 1$/);
  });

  it('with --json, standard output is the JSON object alone', async () => {
    const t = tree('a');
    const r = await cli(['maintain', t.root, '--dry-run', '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out.join('\n')) as { command: string }).command).toBe('maintain');
  });
});

describe('one diagnosis per file (item 9)', () => {
  it('a footer with a bad checksum and a header offset outside the file: info, check and maintain all say "footer checksum mismatch" first', async () => {
    const dir = tempDir();
    const disk = path.join(dir, 'damaged.vhd');
    const b = readFileSync(path.join(SAMPLE, 'base.vhd'));
    // Data offset (footer bytes 16..23) far past the end, in both footers, checksum not updated.
    for (const at of [0, b.length - 512]) b.writeBigUInt64BE(0x100000000n, at + 16);
    writeFileSync(disk, b);
    const info = await cli(['info', disk, '--json']);
    expect(info.code).toBe(4);
    const infoMsg = (JSON.parse(info.out.join('\n')) as { error: { message: string } }).error.message;
    expect(infoMsg).toMatch(/^footer checksum mismatch/);
    const check = await cli(['check', disk, '--json', '--threads', '0']);
    const c = JSON.parse(check.out.join('\n')) as { errors: Array<{ message: string }> };
    expect(c.errors[0].message).toBe(infoMsg);
    expect(c.errors.some((e) => /lies outside the file/.test(e.message))).toBe(true);
    const m = await cli(['maintain', dir, '--dry-run', '--json']);
    const rep = JSON.parse(m.out.join('\n')) as { unreadable: Array<{ path: string; message: string; code: string }> };
    expect(rep.unreadable).toEqual([expect.objectContaining({ path: disk, message: infoMsg, code: 'BAD_CHECKSUM' })]);
  });
});
