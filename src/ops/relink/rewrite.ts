/**
 * relink's other path: when the new locators do not fit the room the file
 * reserves, the child is rewritten whole through the atomic path
 * (io/atomic.ts): a temporary beside it gets the same footer (UUID, time
 * stamps, creator), the new header, Hyper-V's layout with its locator
 * reserves (so the next relink fits in place), and every block's bitmap and
 * data byte for byte; it is fsynced, re-read and compared, then renamed over
 * the child. The guest content and the identity do not change, and neither
 * do the file's times.
 */
import { createHash } from 'node:crypto';
import { VhdToolError } from '../../errors.js';
import { isZero, SECTOR, type DynamicHeader, type Footer } from '../../format/index.js';
import { writeAtomically } from '../../io/atomic.js';
import { readAt, type FileSystem, type RandomAccessFile } from '../../io/fsys.js';
import type { Vhd } from '../../vhd/image.js';
import { openVhd } from '../../vhd/image.js';
import type { LocatorData } from '../../vhd/build.js';
import { SparseWriter } from '../../vhd/writer.js';
import { spareBlocks } from '../../check/gaps.js';
import type { ProgressSink } from '../../progress.js';

/** Largest piece of a block copied at once. */
const COPY_CHUNK = 4 * 1024 * 1024;

export interface RewriteOptions {
  mode: number;
  times: { atimeMs: number; mtimeMs: number };
  progress: ProgressSink;
  signal?: AbortSignal;
  /** Further checks of the fsynced temporary (the new link resolves). */
  verify: (temp: string) => Promise<void>;
  /** Last check before the rename (the child did not change meanwhile). */
  beforePublish: () => Promise<void>;
}

interface Copied {
  /** BAT index -> SHA-1 of bitmap + data. */
  digests: Map<number, string>;
  size: number;
}

/** Rewrites `vhd` (at `target`, its real path) with `header` and `locators`; returns the new size. */
export async function rewriteWithLink(fs: FileSystem, target: string, vhd: Vhd, header: DynamicHeader, locators: LocatorData[], o: RewriteOptions): Promise<number> {
  const m = vhd.meta;
  const blocks = await blockList(vhd);
  let copied: Copied | null = null;
  await writeAtomically(fs, target, async (file) => {
    copied = await copyInto(file, vhd, header, locators, blocks, o);
    if (file.setTimes) await file.setTimes(o.times.atimeMs, o.times.mtimeMs);
    return copied;
  }, {
    replace: true,
    mode: o.mode,
    verify: async (temp) => {
      await verifyCopy(fs, temp, m.footer, header, copied!);
      await o.verify(temp);
    },
    shouldPublish: async () => {
      await o.beforePublish();
      return true;
    },
  });
  return copied!.size;
}

/** Every allocated block (spare entries past the size too), in file order. */
async function blockList(vhd: Vhd): Promise<Array<{ index: number; offset: number }>> {
  const m = vhd.meta;
  const out: Array<{ index: number; offset: number }> = [];
  for (const b of m.bat!.allocated()) out.push({ index: b, offset: m.bat!.get(b)! * SECTOR });
  for (const s of await spareBlocks(vhd)) {
    // A spare entry pointing outside the data area holds nothing readable: it is not copied.
    if (s.start >= SECTOR && s.end <= m.footerOffset) out.push({ index: s.index, offset: s.start });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

async function copyInto(file: RandomAccessFile, vhd: Vhd, header: DynamicHeader, locators: LocatorData[],
  blocks: Array<{ index: number; offset: number }>, o: RewriteOptions): Promise<Copied> {
  const m = vhd.meta;
  const w = new SparseWriter(file, { footer: m.footer, header, locators, align: 4096, hyperV: true });
  const bm = m.bitmapSize;
  const bs = m.blockSize!;
  const digests = new Map<number, string>();
  o.progress.start('rewriting', blocks.length * (bm + bs));
  try {
    for (const b of blocks) {
      if (o.signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
      const h = createHash('sha1');
      const at = w.reserve(b.index);
      const bitmap = await readAt(vhd.file, b.offset, bm);
      h.update(bitmap);
      await w.writeBitmap(at, bitmap);
      for (let pos = 0; pos < bs; pos += COPY_CHUNK) {
        const n = Math.min(COPY_CHUNK, bs - pos);
        const data = await readAt(vhd.file, b.offset + bm + pos, n);
        h.update(data);
        // Zeros stay holes: a new file reads zero where nothing was written.
        if (!isZero(data)) await w.writeData(at, pos, data);
      }
      digests.set(b.index, h.digest('hex'));
      o.progress.advance(bm + bs);
    }
    const r = await w.finish();
    return { digests, size: r.size };
  } finally {
    o.progress.done();
  }
}

/** The temporary holds the same footer, the planned header, and every block byte for byte. */
async function verifyCopy(fs: FileSystem, temp: string, footer: Footer, header: DynamicHeader, c: Copied): Promise<void> {
  const v = await openVhd(fs, temp, { mode: 'strict' });
  try {
    const m = v.meta;
    const bad = (what: string): never => {
      throw new VhdToolError('VERIFY_FAILED', `rewritten disk did not verify (${what}); nothing was replaced`, temp);
    };
    const f = m.footer;
    if (f.uniqueId !== footer.uniqueId || f.timestamp !== footer.timestamp || f.currentSize !== footer.currentSize ||
        f.originalSize !== footer.originalSize || f.diskType !== footer.diskType || f.creatorApplication !== footer.creatorApplication) bad('footer');
    const h = m.header!;
    if (h.parentUniqueId !== header.parentUniqueId || h.parentTimestamp !== header.parentTimestamp ||
        h.parentUnicodeName !== header.parentUnicodeName || h.blockSize !== header.blockSize || h.maxTableEntries !== header.maxTableEntries) bad('header');
    const bat = await readAt(v.file, h.tableOffset, h.maxTableEntries * 4);
    const seen = new Set<number>();
    for (let i = 0; i < h.maxTableEntries; i++) {
      const s = ((bat[i * 4] << 24) >>> 0) + ((bat[i * 4 + 1] << 16) | (bat[i * 4 + 2] << 8) | bat[i * 4 + 3]);
      if (s === 0xffffffff) continue;
      const want = c.digests.get(i);
      if (want === undefined) bad(`block ${i} is allocated but was not copied`);
      const hash = createHash('sha1');
      const len = m.bitmapSize + m.blockSize!;
      for (let pos = 0; pos < len; pos += COPY_CHUNK) hash.update(await readAt(v.file, s * SECTOR + pos, Math.min(COPY_CHUNK, len - pos)));
      if (hash.digest('hex') !== want) bad(`block ${i} differs from the original`);
      seen.add(i);
    }
    if (seen.size !== c.digests.size) bad(`${c.digests.size - seen.size} block(s) missing`);
  } finally {
    await v.close();
  }
}
