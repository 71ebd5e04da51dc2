/**
 * A file's logical content: its blocks in logical order, holes and
 * uninitialised extents as zeros, cut to i_size; inline data from the inode
 * (i_block, then the "system.data" attribute); a fast symlink's target from
 * i_block.
 */
import { GuestError } from '../errors.js';
import type { BlockDevice } from './blockio.js';
import { walkExtents, walkIndirect, type MapSink } from './blockmap.js';
import { Grow } from './grow.js';
import { FL_EXTENTS, FL_INLINE_DATA, hasBlockMap, I_BLOCK_SIZE, inodeXattr, isSymlink, maxFileBytes, type Inode } from './inodes.js';
import type { Superblock } from './superblock.js';

/** Bytes yielded at a time. */
const CHUNK = 1024 * 1024;

export async function* fileContent(dev: BlockDevice, sb: Superblock, i: Inode): AsyncIterable<Uint8Array> {
  const size = i.size;
  if (size === 0) return;
  if (size > maxFileBytes(sb, i)) throw new GuestError(`inode ${i.ino}: size ${size} is more than its block map can address (${maxFileBytes(sb, i)} bytes)`);
  if (i.flags & FL_INLINE_DATA) {
    yield* inline(sb, i);
    return;
  }
  if (!hasBlockMap(sb, i)) {
    if (isSymlink(i)) yield i.block.slice(0, Math.min(size, I_BLOCK_SIZE));
    return;
  }
  const runs = await collectRuns(dev, i);
  const bs = sb.blockSize;
  let pos = 0;
  for (let k = 0; k < runs.length && pos < size; k += 4) {
    const start = runs.a[k] * bs;
    if (start > pos) {
      yield* zeros(Math.min(start, size) - pos);
      pos = Math.min(start, size);
    }
    const end = Math.min(size, (runs.a[k] + runs.a[k + 2]) * bs);
    const uninit = runs.a[k + 3] === 1;
    while (pos < end) {
      const n = Math.min(CHUNK, end - pos);
      if (uninit) yield new Uint8Array(n);
      else {
        const phys = runs.a[k + 1] * bs + (pos - start);
        const first = Math.floor(phys / bs);
        const last = Math.ceil((phys + n) / bs);
        const buf = await dev.read(first, last - first, `data of inode ${i.ino}`);
        yield buf.subarray(phys - first * bs, phys - first * bs + n);
      }
      pos += n;
    }
  }
  if (pos < size) yield* zeros(size - pos);
}

function* zeros(n: number): Iterable<Uint8Array> {
  for (let left = n; left > 0; left -= CHUNK) yield new Uint8Array(Math.min(CHUNK, left));
}

function* inline(sb: Superblock, i: Inode): Iterable<Uint8Array> {
  const head = i.block.slice(0, Math.min(i.size, I_BLOCK_SIZE));
  yield head;
  if (i.size <= I_BLOCK_SIZE) return;
  const more = inodeXattr(sb, i, 7, 'data') ?? new Uint8Array(0);
  const want = i.size - I_BLOCK_SIZE;
  if (more.length < want) throw new GuestError(`inode ${i.ino}: inline data holds ${I_BLOCK_SIZE + more.length} bytes but its size is ${i.size}`);
  yield more.slice(0, want);
}

/** The inode's runs as [logical, physical, count, uninit] quadruples in logical order. */
async function collectRuns(dev: BlockDevice, i: Inode): Promise<Grow<Float64Array>> {
  const runs = new Grow(Float64Array, 64);
  const problems: string[] = [];
  const sink: MapSink = {
    run: (l, p, c, u) => { runs.push(l); runs.push(p); runs.push(c); runs.push(u ? 1 : 0); },
    tree: () => undefined,
    bad: (m) => { problems.push(m); },
  };
  const seen = new Set<number>();
  const walk = { dev, claim: (b: number) => (seen.has(b) ? false : (seen.add(b), true)) };
  if (i.flags & FL_EXTENTS) await walkExtents(walk, i.block, sink);
  else await walkIndirect(walk, i.block, sink);
  if (problems.length) throw new GuestError(`inode ${i.ino}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ''}`);
  return runs;
}
