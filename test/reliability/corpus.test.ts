/**
 * fixtures/hostile/ is generated, not hand-made: a fresh run of
 * scripts/make-hostile.ts must give the committed bytes exactly (so the
 * corpus can be reviewed as code and rebuilt at will), and each broken file
 * must really break the rule its README line names.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { hostileCorpus, writeCorpus } from '../../scripts/make-hostile.js';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openVhd } from '../../src/vhd/image.js';
import { VhdToolError } from '../../src/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { ROOT } from './helpers/cli.js';
import { diffSnapshots, snapshot } from './helpers/snapshot.js';

const CORPUS = path.join(ROOT, 'fixtures', 'hostile');

/** What the error says for some files: the rule they break, not a side effect of it. */
const MESSAGES: Record<string, RegExp> = {
  'text.vhd': /not a VHD file/,
  'truncated.vhd': /end footer is missing or corrupt.*copy at offset 0 is intact/,
  'empty.vhd': /empty/,
  'footer-checksum.vhd': /footer checksum/,
  'header-checksum.vhd': /header checksum/,
  'footer-copy.vhd': /footer copy/,
  'bat-into-header.vhd': /header .* overlaps block 1/,
  'bat-past-eof.vhd': /block 2 .* past the end/,
  'bat-duplicate.vhd': /block 0 .* overlaps block 4/,
  'block-size.vhd': /not a power of two/,
  'bat-too-small.vhd': /too few/,
  'locator-utf16.vhd': /not valid UTF-16/,
  'locator-length.vhd': /exceeds its space/,
  'huge-table.vhd': /4294967295 entries .* past the end/,
  'huge-block.vhd': /block 0 .* past the end/,
};

describe('the hostile corpus', () => {
  it('is exactly what scripts/make-hostile.ts generates (deterministic, README included)', async () => {
    expect(existsSync(CORPUS)).toBe(true);
    const a = tempDir('vhdtool-corpus-a-');
    const b = tempDir('vhdtool-corpus-b-');
    await writeCorpus(a);
    await writeCorpus(b);
    expect(diffSnapshots(snapshot(a), snapshot(b))).toEqual([]);
    expect(diffSnapshots(snapshot(CORPUS), snapshot(a))).toEqual([]);
  });

  it('keeps every file small (commit-friendly)', () => {
    const snap = snapshot(CORPUS);
    let total = 0;
    for (const v of snap.values()) {
      const m = /^file (\d+) /.exec(v);
      if (m) {
        expect(Number(m[1])).toBeLessThanOrEqual(64 * 1024);
        total += Number(m[1]);
      }
    }
    expect(total).toBeLessThan(1024 * 1024);
  });

  it('lists every file in its README with the rule it breaks', async () => {
    const readme = readFileSync(path.join(CORPUS, 'README.md'), 'utf8');
    for (const e of await hostileCorpus()) {
      expect(readme).toContain(`\`${e.name}\``);
      expect(readme).toContain(e.rule.replace(/\|/g, '\\|'));
    }
  });

  it('helpers open cleanly and each single-file break is caught by the strict opener', async () => {
    for (const e of await hostileCorpus()) {
      if (!(e.bytes instanceof Uint8Array)) continue;
      const p = path.join(CORPUS, e.name);
      let err: unknown = null;
      try {
        const v = await openVhd(nodeFileSystem, p, { mode: 'strict' });
        await v.close();
      } catch (x) {
        err = x;
      }
      // Files whose break lies in the chain or the block data open fine on their own.
      const opensAlone = e.kind !== 'broken' || e.expected.info === 0 || e.expected.info === 5;
      if (opensAlone) expect(err, e.name).toBeNull();
      else {
        expect(err, e.name).toBeInstanceOf(VhdToolError);
        expect((err as VhdToolError).exitCode, e.name).toBe(e.expected.info);
        const want = MESSAGES[e.name];
        if (want) expect((err as VhdToolError).message, e.name).toMatch(want);
      }
    }
  });
});
