/**
 * Building VHD files from a description of their content: used by the tests,
 * the fast-check properties, the bundled sample chain and the benchmark.
 *
 * A layer is described by the sectors written to it. In a differencing layer
 * a written sector sets its bitmap bit; in a dynamic layer it allocates the
 * block (with an exact bitmap, or all bits set as qemu and Hyper-V do).
 */
import * as path from 'node:path';
import {
  bitmapBytes, dateToVhdTime, setRange, SECTOR,
  type DiskType, type Uuid, type VhdTime,
} from '../format/index.js';
import type { FileSystem } from '../io/fsys.js';
import { hyperVLocators, newFooter, newHeader, type LocatorData } from '../vhd/build.js';
import { FixedWriter, SparseWriter } from '../vhd/writer.js';
import { mulberry32 } from './random.js';

export interface SynthWrite {
  /** First virtual sector. */
  sector: number;
  /** Bytes to write; a multiple of 512. */
  data: Uint8Array;
}

export interface SynthLayer {
  type: DiskType;
  virtualSize: number;
  /** Default 2 MiB. */
  blockSize?: number;
  writes: SynthWrite[];
  /** Store blocks in a shuffled order (seeded). */
  shuffleSeed?: number;
  /** Put the locators before the BAT. */
  locatorsFirst?: boolean;
  /** Extra BAT entries beyond what the size needs. */
  spareEntries?: number;
  /** 4096 (default, Hyper-V) or 512 (packed, like qemu). */
  align?: number;
  /** Dynamic layers: set every bit of an allocated block (qemu, Hyper-V). Default true. */
  fullBitmaps?: boolean;
  uniqueId?: Uuid;
  /** Footer time stamp (default: now). */
  timestamp?: VhdTime;
  /** Parent time stamp in the header (default: the parent file's mtime). */
  parentTimestamp?: VhdTime;
  /** Locators to write instead of W2ku + W2ru (differencing only). */
  locators?: LocatorData[];
  /** Parent unicode name instead of the parent's file name. */
  parentName?: string;
}

interface BlockImage {
  bitmap: Uint8Array;
  data: Uint8Array;
}

/** Applies the writes to per-block images (bitmap + data). */
function blockImages(layer: SynthLayer, blockSize: number): Map<number, BlockImage> {
  const spb = blockSize / SECTOR;
  const bm = bitmapBytes(blockSize);
  const blocks = new Map<number, BlockImage>();
  const vs = layer.virtualSize / SECTOR;
  for (const w of layer.writes) {
    if (w.data.length % SECTOR !== 0) throw new RangeError('writes must be whole sectors');
    const n = w.data.length / SECTOR;
    if (w.sector < 0 || w.sector + n > vs) throw new RangeError(`write at sector ${w.sector} (+${n}) is past the end of the disk`);
    for (let i = 0; i < n; ) {
      const s = w.sector + i;
      const b = Math.floor(s / spb);
      const inBlock = s - b * spb;
      const take = Math.min(n - i, spb - inBlock);
      let img = blocks.get(b);
      if (!img) {
        img = { bitmap: new Uint8Array(bm), data: new Uint8Array(blockSize) };
        blocks.set(b, img);
      }
      img.data.set(w.data.subarray(i * SECTOR, (i + take) * SECTOR), inBlock * SECTOR);
      setRange(img.bitmap, inBlock, take);
      i += take;
    }
  }
  if (layer.type === 'dynamic' && layer.fullBitmaps !== false) {
    for (const img of blocks.values()) img.bitmap.fill(0xff);
  }
  return blocks;
}

export interface BuiltLayer {
  path: string;
  uniqueId: Uuid;
}

/**
 * Writes a layer at `file`; `parent` is the layer below (for differencing).
 * Returns the UUID written.
 */
export async function writeSynthLayer(fs: FileSystem, file: string, layer: SynthLayer, parent: BuiltLayer | null): Promise<BuiltLayer> {
  const f = await fs.createExclusive(file);
  try {
    const footer = newFooter({ type: layer.type, virtualSize: layer.virtualSize, uniqueId: layer.uniqueId, timestamp: layer.timestamp });
    if (layer.type === 'fixed') {
      const w = new FixedWriter(f, footer);
      for (const wr of layer.writes) await w.write(wr.sector * SECTOR, wr.data);
      await w.finish();
    } else {
      const blockSize = layer.blockSize ?? 2 * 1024 * 1024;
      const needed = Math.ceil(layer.virtualSize / blockSize);
      let link = null;
      let locators: LocatorData[] = [];
      if (layer.type === 'differencing') {
        if (!parent) throw new Error('a differencing layer needs a parent');
        const st = await fs.stat(parent.path);
        link = { uniqueId: parent.uniqueId, timestamp: layer.parentTimestamp ?? dateToVhdTime(new Date(st.mtimeMs)), unicodeName: layer.parentName ?? path.basename(parent.path) };
        locators = layer.locators ?? hyperVLocators(file, parent.path);
      }
      const header = newHeader(blockSize, needed + (layer.spareEntries ?? 0), link);
      const w = new SparseWriter(f, { footer, header, locators, align: layer.align, locatorsFirst: layer.locatorsFirst });
      const images = blockImages(layer, blockSize);
      const order = [...images.keys()].sort((a, b) => a - b);
      if (layer.shuffleSeed !== undefined) {
        const rnd = mulberry32(layer.shuffleSeed);
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(rnd() * (i + 1));
          [order[i], order[j]] = [order[j], order[i]];
        }
      }
      for (const b of order) {
        const img = images.get(b)!;
        await w.writeBlock(b, img.bitmap, img.data);
      }
      await w.finish();
    }
    await f.sync();
    return { path: file, uniqueId: footer.uniqueId };
  } finally {
    await f.close();
  }
}

/** Writes a chain, base first, as `names` in `dir`; returns the layers base first. */
export async function writeSynthChain(fs: FileSystem, dir: string, layers: SynthLayer[], names?: string[]): Promise<BuiltLayer[]> {
  const out: BuiltLayer[] = [];
  for (let i = 0; i < layers.length; i++) {
    const name = names?.[i] ?? (i === 0 ? 'base.vhd' : `child${i}.vhd`);
    out.push(await writeSynthLayer(fs, path.join(dir, name), layers[i], out[i - 1] ?? null));
  }
  return out;
}

/**
 * The guest-visible content of a chain described by `layers` (base first),
 * computed from the descriptions alone: the model the tests compare against.
 */
export function modelContent(layers: SynthLayer[], upTo = layers.length - 1): Uint8Array {
  const size = layers[upTo].virtualSize;
  const out = new Uint8Array(size);
  for (let i = 0; i <= upTo; i++) {
    const l = layers[i];
    // A layer's size limits what it shows: sectors past it read as zeros from the layers above.
    if (l.virtualSize < size) out.fill(0, l.virtualSize);
    for (const w of l.writes) {
      const at = w.sector * SECTOR;
      if (at >= size) continue;
      out.set(w.data.subarray(0, Math.min(w.data.length, size - at)), at);
    }
  }
  return out;
}
