/** `info`: what a disk is, how it is laid out, and its whole chain. */
import { countBits, SECTOR, vhdTimeToIso, geometryCapacity } from '../format/index.js';
import type { FileSystem } from '../io/fsys.js';
import { nodeFileSystem } from '../io/fsys.js';
import { openChain } from '../chain/openChain.js';
import { BitmapCache } from '../chain/bitmaps.js';
import type { Layer } from '../chain/chain.js';
import type { OpenMode } from '../vhd/image.js';

export interface InfoOptions {
  fs?: FileSystem;
  parent?: string;
  /** Report checksum and mirror problems as warnings instead of refusing. */
  lenient?: boolean;
}

export interface ChainEntry {
  path: string;
  type: string;
  uuid: string;
  virtualSize: number;
  /** How this layer's parent was found ("W2ru locator", "parent name", "--parent"...), null for the base. */
  parentFoundBy: string | null;
}

export interface InfoResult {
  path: string;
  type: 'fixed' | 'dynamic' | 'differencing';
  virtualSize: number;
  uuid: string;
  parentUuid: string | null;
  blockSize: number | null;
  allocatedBlocks: number;
  sectorsSet: number;
  fileSize: number;
  footer: Record<string, unknown>;
  header: Record<string, unknown> | null;
  locators: Array<Record<string, unknown>>;
  chain: ChainEntry[];
  warnings: string[];
}

export async function info(disk: string, opts: InfoOptions = {}): Promise<InfoResult> {
  const fs = opts.fs ?? nodeFileSystem;
  const mode: OpenMode = opts.lenient ? 'lenient' : 'strict';
  const chain = await openChain(fs, disk, { parent: opts.parent, mode });
  try {
    const leaf = chain.layersLeafFirst[0];
    const m = leaf.meta;
    const f = m.footer;
    let sectorsSet = 0;
    if (m.type === 'fixed') sectorsSet = m.virtualSize / SECTOR;
    else {
      const cache = new BitmapCache(leaf.vhd, 4);
      const spb = m.blockSize! / SECTOR;
      for (const b of m.bat!.allocated()) sectorsSet += countBits(cache.get(b), spb);
    }
    const h = m.header;
    return {
      path: disk,
      type: m.type,
      virtualSize: m.virtualSize,
      uuid: f.uniqueId,
      parentUuid: h?.parentUniqueId ?? null,
      blockSize: m.blockSize,
      allocatedBlocks: m.bat ? m.bat.countAllocated() : 0,
      sectorsSet,
      fileSize: m.fileSize,
      footer: {
        cookie: f.cookie,
        features: f.features,
        formatVersion: f.formatVersion,
        dataOffset: f.dataOffset,
        timestamp: vhdTimeToIso(f.timestamp),
        creatorApplication: f.creatorApplication.replace(/\0/g, '\\0'),
        creatorVersion: `${f.creatorVersion >>> 16}.${f.creatorVersion & 0xffff}`,
        creatorHostOs: f.creatorHostOs.replace(/\0/g, '\\0'),
        originalSize: f.originalSize,
        currentSize: f.currentSize,
        geometry: { ...f.geometry, capacity: geometryCapacity(f.geometry) },
        savedState: f.savedState === 1,
        footerLength: m.footerLength,
        copyAtOffset0: m.type === 'fixed' ? null : m.footerCopy !== null,
      },
      header: h && {
        tableOffset: h.tableOffset,
        maxTableEntries: h.maxTableEntries,
        blockSize: h.blockSize,
        parentUuid: h.parentUniqueId,
        parentTimestamp: h.parentTimestamp === 0 ? null : vhdTimeToIso(h.parentTimestamp),
        parentUnicodeName: h.parentUnicodeName,
      },
      locators: m.locators.map((l) => ({
        index: l.index,
        platform: l.entry.platform,
        dataOffset: l.entry.dataOffset,
        dataLength: l.entry.dataLength,
        dataSpace: l.entry.dataSpace,
        spaceUnit: l.spaceUnit,
        path: l.value.ok ? l.value.path : null,
        error: l.value.ok ? null : l.value.reason,
      })),
      chain: chain.layersLeafFirst.map(entry),
      warnings: chain.layersLeafFirst.flatMap((l) => l.meta.issues.map((i) => `${l.path}: ${i.message}`)),
    };
  } finally {
    await chain.close();
  }
}

function entry(l: Layer): ChainEntry {
  return { path: l.path, type: l.meta.type, uuid: l.meta.footer.uniqueId, virtualSize: l.meta.virtualSize, parentFoundBy: l.parentFoundBy };
}
