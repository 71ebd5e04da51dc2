/**
 * `npm start` (scripts/demo.ts) end to end, as a new user runs it after
 * `npm install`: every step succeeds, the commands are printed as they run,
 * the guest part shows what the guest sample holds, the results are left in
 * the folder named, and the bundled files are never modified.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { contentHash } from '../helpers/hash.js';
import { tempDir } from '../helpers/tmp.js';
import { hasBuild, ROOT } from '../reliability/helpers/cli.js';

const BUNDLED = ['base.vhd', 'child.vhd', 'guest/golden.vhd', 'guest/user.vhd'].map((f) => path.join(ROOT, 'fixtures', 'sample', f));
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

function npmStart(dir: string): { status: number | null; out: string; err: string } {
  const r = spawnSync('npm', ['start', '--silent', '--', dir], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, timeout: 120_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe.skipIf(!hasBuild())('npm start', () => {
  it('runs both parts, every step succeeding, printing each command; the bundled files are untouched', async () => {
    const before = BUNDLED.map(sha);
    const dir = path.join(tempDir(), 'demo');
    const r = npmStart(dir);
    expect(r.status, r.out + r.err).toBe(0);
    const lines = r.out.split('\n');
    expect(lines.filter((l) => l.startsWith('$ vhdtool '))).toEqual([
      '$ vhdtool info child.vhd',
      '$ vhdtool check child.vhd',
      '$ vhdtool compact child.vhd --dry-run',
      '$ vhdtool merge child.vhd base.vhd merged.vhd',
      '$ vhdtool compact child.vhd',
      '$ vhdtool compare child.vhd merged.vhd',
      '$ vhdtool check child.vhd merged.vhd',
      '$ vhdtool map guest/user.vhd --files --svg guest/user-map.svg',
      '$ vhdtool diff guest/user.vhd',
      '$ vhdtool compact guest/user.vhd --free-space --dry-run',
      '$ vhdtool compact guest/user.vhd --free-space',
      '$ vhdtool create guest/bob.vhd --parent guest/golden.vhd',
      '$ vhdtool convert guest/user.vhd guest/user-full.vhd',
      '$ vhdtool rebase guest/user-full.vhd --onto guest/golden.vhd --output guest/user-thin.vhd',
      '$ vhdtool check guest/user.vhd guest/bob.vhd guest/user-thin.vhd',
    ]);
    // diff's 1 says files changed; no other step exits non-zero.
    expect(lines.filter((l) => l.startsWith('(exit'))).toEqual(['(exit 1)']);
    expect(lines[lines.indexOf('$ vhdtool diff guest/user.vhd') + 1]).toMatch(/^guest\/user\.vhd over its parent /);
    expect(lines).toContain(`All steps succeeded. Results are in ${dir}`);
    expect(BUNDLED.map(sha)).toEqual(before);

    // The guest part: what the user's disk holds, by file, and the download it deleted, reclaimed.
    expect(r.out).toContain('partition 1 (mbr 0x0e): fat16, 2.0 KiB clusters, 15.00 MiB at sector 2048, clean');
    expect(r.out).toMatch(/leaf bytes 2\.53 MiB: file data 528\.0 KiB, metadata 16\.5 KiB, free 2\.00 MiB/);
    expect(r.out).toMatch(/320\.0 KiB {2}Users\/Alice\/Pictures\/holiday photo 01\.jpg/);
    // diff: exactly what the user's session did.
    for (const l of ['+ Users/Alice/Pictures/holiday photo 01.jpg (320.0 KiB)', '- Windows/Temp/install.log (5.6 KiB)', 'M Program Files/Sample App/settings.ini (4.1 KiB -> 6.1 KiB)']) {
      expect(lines.map((x) => x.trim())).toContain(l);
    }
    expect(lines).toContain('4 added, 1 deleted, 1 modified, 0 renamed; directories: 4 created, 0 deleted');
    expect(r.out).toMatch(/guest\/user\.vhd: partition 1 \(fat16 "GOLDEN"\): dropped .*freeSpace 2\.00 MiB/);
    expect(r.out).toContain('guest/user.vhd: reclaimed 2113536 bytes (2.02 MiB): 3699200 -> 1585664 bytes');
    expect(readFileSync(path.join(dir, 'guest', 'user-map.svg'), 'utf8')).toMatch(/^<svg [^>]*>\n<title>user\.vhd: 2\.53 MiB held by the leaf/);
    for (const f of ['guest/user.vhd', 'guest/bob.vhd', 'guest/user-thin.vhd']) expect(r.out).toContain(`${f}: ok`);
    // The rebased disk shows what the exported one does.
    expect(await contentHash(path.join(dir, 'guest', 'user-thin.vhd'))).toBe(await contentHash(path.join(dir, 'guest', 'user-full.vhd')));
  });

  it('refuses a folder that is not empty (exit 6) and leaves it as it was', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'mine.txt'), 'keep');
    const r = npmStart(dir);
    expect(r.status).toBe(6);
    expect(r.err).toContain(`demo: ${dir}: is not empty; name a new or empty folder`);
    expect(readdirSync(dir)).toEqual(['mine.txt']);
  });
});
