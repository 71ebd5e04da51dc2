/**
 * diff with the incremental NTFS scan of side B against diff with two full
 * scans (the reader made to ignore ScanOptions.since): the same result,
 * list for list, on a user's disk whose changes hold the hard cases (a
 * renamed directory, extension records that changed, an $MFT that grew, a
 * record reused, hard links, named streams, a file moved, data rewritten in
 * place) and between two children of one template (files both hold that
 * the template does not are not matched, also when the incremental scan
 * leaves them out).
 */
import { appendFileSync, copyFileSync, linkSync, mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { diff, type DiffResult } from '../../src/ops/diff.js';
import { rebase } from '../../src/ops/rebase.js';
import { NtfsVolume } from '../../src/guest/ntfs/volume.js';
import type { ScanOptions, VolumeScan } from '../../src/guest/volume.js';
import { HAVE_TSK, chainFromImages } from '../helpers/guest.js';
import { HAVE_FUSE, withMounted } from '../helpers/ntfsImages.js';
import { longName, makeDeltaBase } from '../helpers/ntfsDelta.js';
import { ntfsFirstByte, poke } from '../helpers/diffOracle.js';
import { tempDir } from '../helpers/tmp.js';

const scan = NtfsVolume.prototype.scan;

/**
 * Counts the scans made with `since`, those of them the reader made
 * incrementally, and the resumable scans that reported no file (side A's when
 * side B's scan hands over A's files that may differ).
 */
function watchScans(full: boolean) {
  const seen = { since: 0, incremental: 0, quiet: 0 };
  vi.spyOn(NtfsVolume.prototype, 'scan').mockImplementation(async function (this: NtfsVolume, opts: ScanOptions = {}): Promise<VolumeScan> {
    if (opts.since) seen.since++;
    if (opts.resumable && !opts.onFile) seen.quiet++;
    const r = await scan.call(this, full ? { ...opts, since: undefined } : opts);
    if (r.unreported) seen.incremental++;
    return r;
  });
  return seen;
}

const strip = (r: DiffResult) => ({ ...r, durationMs: 0 });

describe.skipIf(!HAVE_FUSE || !HAVE_TSK)('diff: the incremental scan of side B answers as two full scans do', () => {
  let dir = '';

  beforeAll(async () => {
    dir = tempDir();
    const template = await makeDeltaBase(path.join(dir, 'template.img'));
    const user = path.join(dir, 'user.img');
    copyFileSync(template, user);
    await withMounted(user, (m) => {
      renameSync(path.join(m, 'alpha'), path.join(m, 'alpha-renamed'));
      mkdirSync(path.join(m, 'crowd'));
      for (let i = 0; i < 300; i++) writeFileSync(path.join(m, `crowd/c${i}.txt`), `crowd ${i}\n`);
      rmSync(path.join(m, 'gamma/victim.txt'));
      writeFileSync(path.join(m, 'beta/newcomer.txt'), 'in a reused record\n');
      for (let i = 8; i < 16; i++) linkSync(path.join(m, 'gamma/many.txt'), path.join(m, 'gamma', longName(i)));
      for (let i = 0; i < 3; i++) unlinkSync(path.join(m, 'beta', longName(i)));
      writeFileSync(path.join(m, 'gamma/f3.txt:added'), Buffer.alloc(9000, 1));
      writeFileSync(path.join(m, 'beta/three.txt:small'), 'rewritten');
      renameSync(path.join(m, 'gamma/f2.txt'), path.join(m, 'beta/f2-moved.txt'));
      appendFileSync(path.join(m, 'gamma/f5.txt'), 'more\n');
    });
    poke(user, ntfsFirstByte(user, 'alpha-renamed/inner/two.bin', 4096), Buffer.from('IN PLACE'));
    // A second user, made from the first: the files the first created after the template are in both, byte for byte.
    const user2 = path.join(dir, 'user2.img');
    copyFileSync(user, user2);
    await withMounted(user2, (m) => {
      writeFileSync(path.join(m, 'gamma/f7.txt'), 'changed by the second user\n');
      renameSync(path.join(m, 'beta'), path.join(m, 'beta-renamed'));
    });
    await chainFromImages(dir, [template, user], ['template.vhd', 'user.vhd']);
    await chainFromImages(dir, [template, user2], ['template-copy.vhd', 'user2.vhd']);
    await rebase(path.join(dir, 'user2.vhd'), path.join(dir, 'template.vhd'), { output: path.join(dir, 'user2-on-template.vhd'), threads: 0 });
  }, 120_000);

  afterEach(() => { vi.restoreAllMocks(); });

  /**
   * diff a b with full scans and incrementally; `incremental` false when B's
   * $MFT has fewer records than A's (the reader then scans in full), `quiet`
   * false when A's files must all be indexed (a common ancestor's ids to check).
   */
  async function both(a: string, b: string | undefined, incremental = true, quiet = incremental): Promise<DiffResult> {
    const fullSeen = watchScans(true);
    const full = await diff(path.join(dir, a), b && path.join(dir, b), { threads: 0 });
    vi.restoreAllMocks();
    expect(fullSeen.incremental).toBe(0);
    const incSeen = watchScans(false);
    const inc = await diff(path.join(dir, a), b && path.join(dir, b), { threads: 0 });
    // The shortcut was taken (once per compared NTFS partition), and changed nothing.
    expect(incSeen).toEqual({ since: 1, incremental: incremental ? 1 : 0, quiet: quiet ? 1 : 0 });
    expect(strip(inc)).toEqual(strip(full));
    return inc;
  }

  it('diff CHILD: the user\'s changes', async () => {
    const r = await both('user.vhd', undefined);
    const p = r.partitions[0];
    // The scene is what it claims.
    expect(p.renamed).toContainEqual({ from: 'alpha', to: 'alpha-renamed', directory: true });
    expect(p.modified.map((f) => f.path)).toContain('alpha-renamed/inner/two.bin');
    expect(p.added.map((f) => f.path)).toContain('beta/newcomer.txt');
    expect(p.deleted.map((f) => f.path)).toContain('gamma/victim.txt');
    expect(p.added.filter((f) => f.path.startsWith('crowd/')).length).toBe(300);
  });

  it('diff A B both ways between two children of the template (files only their common history holds are not matched)', async () => {
    const r = await both('user.vhd', 'user2-on-template.vhd', true, false);
    expect(r.sharedLayers).toBe(1);
    const p = r.partitions[0];
    // crowd/ was created by the first user before the second was copied from it: the template does not hold it.
    expect(p.added.filter((f) => f.path.startsWith('crowd/')).length).toBe(300);
    expect(p.deleted.filter((f) => f.path.startsWith('crowd/')).length).toBe(300);
    expect(p.renamed).toContainEqual({ from: 'beta', to: 'beta-renamed', directory: true });
    await both('user2-on-template.vhd', 'user.vhd', true, false);
  });

  it('diff PARENT CHILD across a renamed directory and back', async () => {
    await both('template.vhd', 'user2-on-template.vhd');
    await both('user2-on-template.vhd', 'template.vhd', false);
  });
});
