/**
 * Random file trees written through the ntfs-3g driver (creations,
 * appends, named streams and deletions, seeded by fast-check) on a small
 * volume: the reader's cluster -> file map, paths and free clusters agree
 * with Sleuth Kit (fls, blkls) and ntfsinfo's runlists.
 */
import { mkdirSync, rmSync, writeFileSync, appendFileSync, existsSync } from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/helpers/tmp.js';
import { diffWithTsk, HAVE_FUSE, HAVE_TSK, mkntfs, scanImage, withMounted } from '../test/helpers/ntfsImages.js';

const RUNS = Math.max(3, Math.min(8, Number(process.env.VHDTOOL_PROP_RUNS ?? 6)));

type Op =
  | { kind: 'mkdir'; parent: number; name: string }
  | { kind: 'file'; parent: number; name: string; size: number; stream: boolean }
  | { kind: 'append'; target: number; size: number }
  | { kind: 'delete'; target: number };

const name = fc.stringMatching(/^[a-z][a-z0-9 _.-]{0,11}$/).filter((s) => !s.endsWith('.') && !s.endsWith(' '));
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('mkdir' as const), parent: fc.nat(), name }),
  fc.record({ kind: fc.constant('file' as const), parent: fc.nat(), name, size: fc.oneof(fc.integer({ min: 0, max: 600 }), fc.integer({ min: 601, max: 200_000 })), stream: fc.boolean() }),
  fc.record({ kind: fc.constant('append' as const), target: fc.nat(), size: fc.integer({ min: 1, max: 50_000 }) }),
  fc.record({ kind: fc.constant('delete' as const), target: fc.nat() }),
);

/** Applies the operations under `root`; returns the paths still present. */
function apply(root: string, ops: Op[]): void {
  const dirs = [''];
  const files: string[] = [];
  const fill = (n: number, seed: number) => Buffer.alloc(n, seed & 0xff);
  ops.forEach((o, i) => {
    if (o.kind === 'mkdir') {
      const p = path.join(dirs[o.parent % dirs.length], `${o.name}-${i}`);
      mkdirSync(path.join(root, p));
      dirs.push(p);
    } else if (o.kind === 'file') {
      const p = path.join(dirs[o.parent % dirs.length], `${o.name}-${i}`);
      writeFileSync(path.join(root, p), fill(o.size, i));
      if (o.stream) writeFileSync(path.join(root, `${p}:ads`), fill(o.size >> 1, i + 1));
      files.push(p);
    } else if (files.length > 0) {
      const k = o.target % files.length;
      if (o.kind === 'append') appendFileSync(path.join(root, files[k]), fill(o.size, i));
      else {
        rmSync(path.join(root, files[k]));
        files.splice(k, 1);
      }
    }
  });
  if (!existsSync(root)) throw new Error('mount vanished');
}

describe.skipIf(!HAVE_FUSE || !HAVE_TSK)('NTFS reader against Sleuth Kit on random trees', () => {
  const dir = tempDir('ntfs-prop-');
  let round = 0;

  it('after random creations, appends, named streams and deletions, every file\'s clusters, path and the free clusters agree with Sleuth Kit and ntfsinfo', async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), fc.constantFrom(512, 1024, 4096), async (ops, cs) => {
      const img = mkntfs(path.join(dir, `r${round++}.img`), 12 << 20, cs);
      await withMounted(img, (m) => apply(m, ops));
      const { scan, files } = await scanImage(img);
      expect(scan.anomalies).toEqual([]);
      expect(diffWithTsk(img, scan, files, cs)).toEqual([]);
      expect(scan.free.bytes + scan.metadata.bytes + scan.fileData.bytes).toBe(12 << 20);
      rmSync(img);
    }), { numRuns: RUNS, seed: 20261203 });
  });
});
