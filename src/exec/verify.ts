/**
 * Verifying a written file before it is published:
 *
 *  1. re-open it with every structural check and compare its footer, header
 *     and BAT with what was planned;
 *  2. compare each stored block's bitmap with the one the executor wrote
 *     (SHA-1 of every bitmap, kept from the write);
 *  3. compare every written unit, byte for byte, with the source it came
 *     from: a sector whose output bit is 1 must hold exactly the source
 *     layers' data, every other sector must be zero (dynamic and fixed
 *     outputs must equal the source content outright).
 *
 * Step 3 re-reads the output and the sources (from the page cache) and uses
 * memcmp in the workers, so it proves the output holds the source's data
 * rather than only what the executor meant to write.
 */
import { createHash } from 'node:crypto';
import { VhdToolError } from '../errors.js';
import { readExact } from '../io/fsys.js';
import { testBit, SECTOR, type Bat, type Footer } from '../format/index.js';
import type { FileSystem } from '../io/fsys.js';
import type { TaskRunner } from '../parallel/pool.js';
import type { ChainResolver } from '../chain/resolve.js';
import type { RewriteSpec } from '../plan/units.js';
import type { DiffResult } from '../plan/tasks.js';
import { openVhd } from '../vhd/image.js';
import type { DigestLog } from './digestLog.js';
import type { OutputType } from './rewrite.js';

export interface Expected {
  type: OutputType;
  footer: Footer;
  /** For sparse outputs. */
  bat?: Bat;
  blockSize?: number;
  parentUniqueId?: string | null;
  fileSize: number;
  /** SHA-1 of every bitmap written, keyed by file offset. */
  bitmaps: DigestLog;
  /** Fixed outputs: first virtual sector of every unit written. */
  fixedUnits: number[];
}

function fail(what: string, temp: string): never {
  throw new VhdToolError('VERIFY_FAILED', `output did not verify (${what}); nothing was replaced`, temp);
}

export async function verifyAgainstSource(fs: FileSystem, temp: string, runner: TaskRunner, spec: RewriteSpec, resolver: ChainResolver, exp: Expected): Promise<void> {
  let vhd;
  try {
    vhd = await openVhd(fs, temp, { mode: 'strict' });
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e), temp);
  }
  const files = [...spec.chain.layersLeafFirst.map((l) => l.path), temp];
  const outIndex = files.length - 1;
  const limit = Math.max(2, runner.slots);
  const free = Array.from({ length: runner.slots }, (_, i) => i);
  const inflight: Array<{ p: Promise<DiffResult>; slot: number; at: number }> = [];
  const settle = async () => {
    const q = inflight.shift()!;
    const r = await q.p;
    free.push(q.slot);
    if (r.first >= 0) fail(`data at output offset ${q.at + r.first} differs from the source`, temp);
  };
  /** Queues a comparison of `sectors` output sectors at `outOffset` with expected runs. */
  const check = async (outOffset: number, sectors: number, expectRuns: number[]) => {
    while (free.length === 0 || inflight.length >= limit) await settle();
    const slot = free.pop()!;
    const p = runner.run<DiffResult>({ kind: 'diff', slot, sectors, files, a: [0, sectors, outIndex, outOffset], b: expectRuns });
    p.catch(() => undefined);
    inflight.push({ p, slot, at: outOffset });
  };
  try {
    const m = vhd.meta;
    if (m.fileSize !== exp.fileSize) fail(`size ${m.fileSize}, planned ${exp.fileSize}`, temp);
    if (m.footer.uniqueId !== exp.footer.uniqueId) fail('UUID differs', temp);
    if (m.footer.currentSize !== exp.footer.currentSize) fail('size differs', temp);
    if (m.type !== exp.footer.diskType) fail('disk type differs', temp);
    const k = spec.sourceCount;
    const unit = spec.unitSectors;
    const total = spec.virtualSize / SECTOR;
    if (exp.type === 'fixed') {
      for (const first of exp.fixedUnits) {
        const n = Math.min(unit, total - first);
        const pieces = resolver.resolveRange(0, first, n, k);
        await check(first * SECTOR, n, toRuns(pieces, first, temp));
      }
    } else {
      if (!m.bat || m.blockSize !== exp.blockSize || !exp.bat) fail('block size differs', temp);
      if ((m.header!.parentUniqueId ?? null) !== (exp.parentUniqueId ?? null)) fail('parent UUID differs', temp);
      for (let i = 0; i < m.blockCount; i++) if (m.bat.get(i) !== exp.bat.get(i)) fail(`BAT entry ${i} differs`, temp);
      const planned = new Map<number, string>();
      for (let i = 0; i < exp.bitmaps.length; i++) {
        const r = exp.bitmaps.get(i);
        planned.set(r.offset, r.digest);
      }
      const spb = m.blockSize! / SECTOR;
      const bm = new Uint8Array(m.bitmapSize);
      for (const b of m.bat.allocated()) {
        const off = m.bat.get(b)! * SECTOR;
        await readExact(vhd.file, bm, 0, bm.length, off);
        if (createHash('sha1').update(bm).digest('hex') !== planned.get(off)) fail(`bitmap of block ${b} differs from the one written`, temp);
        const blockStart = b * spb;
        const end = Math.min(blockStart + spb, total);
        for (let s = blockStart; s < end; s += unit) {
          const n = Math.min(unit, end - s);
          const pieces = resolver.resolveRange(0, s, n, k);
          const runs: number[] = [];
          for (const p of pieces) {
            // Split each source piece by the output bitmap: bit 1 must be the source's data, bit 0 zero.
            for (let i = 0; i < p.count; ) {
              const set = testBit(bm, p.sector + i - blockStart);
              let j = i + 1;
              while (j < p.count && testBit(bm, p.sector + j - blockStart) === set) j++;
              if (set && p.layer === -2) fail(`block ${b} sets sector ${p.sector + i} that no source layer supplies`, temp);
              const data = set && p.layer >= 0;
              runs.push(p.sector + i - s, j - i, data ? p.layer : -1, data ? p.fileOffset + i * SECTOR : 0);
              i = j;
            }
          }
          await check(off + m.bitmapSize + (s - blockStart) * SECTOR, n, runs);
        }
      }
    }
    while (inflight.length) await settle();
  } catch (e) {
    await Promise.allSettled(inflight.map((q) => q.p));
    throw e;
  } finally {
    await vhd.close();
  }
}

function toRuns(pieces: Array<{ sector: number; count: number; layer: number; fileOffset: number }>, first: number, temp: string): number[] {
  const runs: number[] = [];
  for (const p of pieces) {
    if (p.layer === -2) fail(`sector ${p.sector} has no source`, temp);
    runs.push(p.sector - first, p.count, p.layer < 0 ? -1 : p.layer, p.fileOffset);
  }
  return runs;
}
