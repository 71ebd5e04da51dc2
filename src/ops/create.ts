/**
 * `create`: a new empty disk, as New-VHD, `vhd-util create/snapshot` and
 * `qemu-img create` make them.
 *
 * - `create DISK --size SIZE [--type dynamic|fixed] [--block-size B]`: a base.
 * - `create CHILD --parent PARENT`: an empty differencing disk laid out as
 *   Hyper-V lays out its own (see format/layout.ts `hyperV`): W2ku and W2ru
 *   locators with Hyper-V's reserved spaces, the parent's UUID, its file's
 *   modification time as the parent time stamp (as every producer writes it),
 *   and the parent's virtual size.
 *
 * The file is written under a temporary name, fsynced, re-read and checked,
 * then published without clobbering (or, with `force`, by rename over the old
 * file, which is locked first). A parent in saved state, or one `check`
 * rejects (its whole chain is checked), is refused.
 */
import * as path from 'node:path';
import { VhdToolError } from '../errors.js';
import {
  dateToVhdTime, vhdTimeToIso, DEFAULT_BLOCK_SIZE, MAX_DYNAMIC_SIZE, SECTOR,
  type DiskType, type Footer, type Uuid,
} from '../format/index.js';
import { cleanStaleTemps, writeAtomically } from '../io/atomic.js';
import type { FileSystem, RandomAccessFile } from '../io/fsys.js';
import { lockDisk, type DiskLock } from '../io/lock.js';
import { pidsHolding } from '../io/inUse.js';
import { openChain } from '../chain/openChain.js';
import type { Chain } from '../chain/chain.js';
import { hyperVLocatorsReserved, newFooter, newHeader, parentUnicodeNameFor, type LocatorData } from '../vhd/build.js';
import { FixedWriter, SparseWriter } from '../vhd/writer.js';
import { openVhd, type VhdMeta } from '../vhd/image.js';
import { refuseExisting, refuseOutputIsInput, requireOutputDir } from './outputs.js';
import { resolveBase, type OpBase } from './common.js';
import { refuseFailingChain } from './chainCheck.js';

export interface CreateOptions extends OpBase {
  /** Virtual size in bytes (bases only; a child takes its parent's). */
  size?: number;
  /** Base type (default dynamic). */
  type?: 'dynamic' | 'fixed';
  /** Block size of a dynamic or differencing disk (default 2 MiB; a child: its parent's). */
  blockSize?: number;
  /** Make an empty differencing disk over this parent. */
  parent?: string;
  /** Replace an existing file. */
  force?: boolean;
}

export interface CreatedLocator {
  platform: string;
  path: string;
  dataOffset: number;
  /** Bytes reserved for the locator's data. */
  dataSpace: number;
}

export interface CreateResult {
  path: string;
  type: DiskType;
  virtualSize: number;
  blockSize: number | null;
  uuid: Uuid;
  fileSize: number;
  parent: { path: string; uuid: Uuid; timestamp: string; unicodeName: string } | null;
  locators: CreatedLocator[];
  /** An existing file was replaced (--force). */
  replaced: boolean;
  durationMs: number;
}

/** Largest block size a dynamic disk gets (blktap and Hyper-V refuse more). */
const MAX_CREATE_BLOCK = 2 * 1024 * 1024;

export async function create(disk: string, opts: CreateOptions): Promise<CreateResult> {
  const t0 = Date.now();
  validateOptions(disk, opts);
  const ctx = resolveBase(opts);
  const fs = ctx.fs;
  const target = path.resolve(disk);
  let chain: Chain | null = null;
  let lock: DiskLock | null = null;
  try {
    await requireOutputDir(fs, target);
    let parent: ParentInfo | null = null;
    if (opts.parent !== undefined) {
      chain = await openChain(fs, opts.parent, { mode: 'strict' });
      await refuseOutputIsInput(fs, target, [chain]);
      parent = await parentInfo(fs, chain, opts.parent);
      await refuseFailingChain(fs, chain, ctx.runner, ctx.progress, ctx.signal);
    }
    await cleanStaleTemps(fs, target);
    const replaced = await refuseExisting(fs, target, opts.force ?? false);
    if (replaced) {
      // Replacing a disk: keep other vhdtool runs and running VMs off it, as every writer does.
      lock = await lockDisk(fs, target);
      const st = await fs.stat(target);
      const holders = await pidsHolding(st.dev, st.ino);
      if (holders.length) throw new VhdToolError('LOCKED', `disk is open in another process (pid ${holders.join(', ')}); refusing to replace it`, disk);
    }
    // Relative locators start from the folder the child really lies in.
    const realTarget = path.join(await fs.realpath(path.dirname(target)), path.basename(target));
    const spec = parent ? childSpec(realTarget, parent, opts) : baseSpec(opts);
    const written = await writeAtomically(fs, target, (file) => writeSpec(file, spec), {
      replace: replaced,
      mode: 0o644,
      verify: (temp) => verifyCreated(fs, temp, spec),
    });
    return {
      path: disk,
      type: spec.footer.diskType as DiskType,
      virtualSize: spec.footer.currentSize,
      blockSize: spec.blockSize,
      uuid: spec.footer.uniqueId,
      fileSize: written.size,
      parent: parent && {
        path: parent.path, uuid: parent.meta.footer.uniqueId,
        timestamp: vhdTimeToIso(parent.timestamp), unicodeName: spec.parentName!,
      },
      locators: spec.locators.map((l, i) => ({
        platform: l.platform, path: new TextDecoder('utf-16le').decode(l.data), dataOffset: written.locatorOffsets[i], dataSpace: l.space!,
      })),
      replaced,
      durationMs: Date.now() - t0,
    };
  } finally {
    if (chain) await chain.close();
    if (lock) await lock.release();
    await ctx.close();
  }
}

function usage(message: string, disk: string): VhdToolError {
  return new VhdToolError('USAGE', message, disk);
}

function validateOptions(disk: string, o: CreateOptions): void {
  if (o.parent !== undefined) {
    if (o.size !== undefined) throw usage('--size cannot be combined with --parent (a differencing disk has its parent\'s size)', disk);
    if (o.type !== undefined) throw usage('--type cannot be combined with --parent (the new disk is a differencing disk)', disk);
  } else {
    if (o.size === undefined) throw usage('give --size SIZE for a new disk, or --parent PARENT for a differencing disk', disk);
    if (!Number.isSafeInteger(o.size) || o.size <= 0 || o.size % SECTOR !== 0) {
      throw usage(`size ${o.size} is not a positive multiple of 512 bytes`, disk);
    }
    if (o.size > MAX_DYNAMIC_SIZE) throw usage(`size ${o.size} exceeds the 2040 GiB a VHD can hold`, disk);
    if (o.type === 'fixed' && o.blockSize !== undefined) throw usage('--block-size applies to dynamic and differencing disks, not to a fixed one', disk);
  }
  if (o.blockSize !== undefined && (o.blockSize > MAX_CREATE_BLOCK || o.blockSize < SECTOR || (o.blockSize & (o.blockSize - 1)) !== 0)) {
    throw usage(`block size ${o.blockSize} is not a power of two between 512 bytes and 2 MiB (Hyper-V and blktap refuse larger blocks)`, disk);
  }
}

interface ParentInfo {
  /** The path written into the locators (the parent's real path, as merge and compact write it). */
  path: string;
  meta: VhdMeta;
  /** The parent file's modification time as a VHD time stamp. */
  timestamp: number;
}

async function parentInfo(fs: FileSystem, chain: Chain, given: string): Promise<ParentInfo> {
  const p = chain.layersLeafFirst[0];
  if (p.meta.footer.savedState !== 0) {
    throw new VhdToolError('SAVED_STATE', 'parent is in saved state (a virtual machine was saved with it attached); a child made now would not see what the VM holds in memory', given);
  }
  const st = await fs.stat(p.path);
  return { path: p.realPath, meta: p.meta, timestamp: dateToVhdTime(new Date(st.mtimeMs)) };
}

/** Everything the new file holds. */
interface DiskSpec {
  footer: Footer;
  blockSize: number | null;
  maxTableEntries: number;
  parent: { uuid: Uuid; timestamp: number } | null;
  parentName: string | null;
  locators: LocatorData[];
}

function baseSpec(o: CreateOptions): DiskSpec {
  const type = o.type ?? 'dynamic';
  const size = o.size!;
  const blockSize = type === 'fixed' ? null : (o.blockSize ?? DEFAULT_BLOCK_SIZE);
  return {
    footer: newFooter({ type, virtualSize: size }),
    blockSize,
    maxTableEntries: blockSize ? Math.ceil(size / blockSize) : 0,
    parent: null,
    parentName: null,
    locators: [],
  };
}

function childSpec(target: string, p: ParentInfo, o: CreateOptions): DiskSpec {
  const pf = p.meta.footer;
  const blockSize = o.blockSize ?? p.meta.blockSize ?? DEFAULT_BLOCK_SIZE;
  const footer: Footer = {
    ...newFooter({ type: 'differencing', virtualSize: p.meta.virtualSize }),
    // The child shows the parent's disk: size it the way the parent's producer did.
    geometry: { ...pf.geometry },
  };
  return {
    footer,
    blockSize,
    maxTableEntries: Math.ceil(p.meta.virtualSize / blockSize),
    parent: { uuid: pf.uniqueId, timestamp: p.timestamp },
    parentName: parentUnicodeNameFor(target, p.path),
    locators: hyperVLocatorsReserved(target, p.path),
  };
}

interface Written {
  size: number;
  locatorOffsets: number[];
}

async function writeSpec(file: RandomAccessFile, s: DiskSpec): Promise<Written> {
  if (s.blockSize === null) {
    const r = await new FixedWriter(file, s.footer).finish();
    return { size: r.size, locatorOffsets: [] };
  }
  const link = s.parent ? { uniqueId: s.parent.uuid, timestamp: s.parent.timestamp, unicodeName: s.parentName! } : null;
  const w = new SparseWriter(file, {
    footer: s.footer, header: newHeader(s.blockSize, s.maxTableEntries, link), locators: s.locators, align: 4096, hyperV: true,
  });
  const r = await w.finish();
  return { size: r.size, locatorOffsets: w.layout.locatorOffsets };
}

/** Re-reads the fsynced temporary strictly and compares it with the spec. */
async function verifyCreated(fs: FileSystem, temp: string, s: DiskSpec): Promise<void> {
  const v = await openVhd(fs, temp, { mode: 'strict' });
  try {
    const m = v.meta;
    const bad = (what: string): never => {
      throw new VhdToolError('VERIFY_FAILED', `new disk did not verify (${what}); nothing was published`, temp);
    };
    if (m.type !== s.footer.diskType) bad(`type ${m.type}`);
    if (m.footer.uniqueId !== s.footer.uniqueId) bad('UUID');
    if (m.virtualSize !== s.footer.currentSize) bad(`size ${m.virtualSize}`);
    if (m.type === 'fixed') return;
    if (m.blockSize !== s.blockSize) bad(`block size ${m.blockSize}`);
    if (m.bat!.countAllocated() !== 0) bad('a block is allocated');
    const h = m.header!;
    if ((h.parentUniqueId ?? null) !== (s.parent?.uuid ?? null)) bad('parent UUID');
    if (s.parent && h.parentTimestamp !== s.parent.timestamp) bad('parent time stamp');
    if (s.parentName !== null && h.parentUnicodeName !== s.parentName) bad('parent name');
    if (m.locators.length !== s.locators.length) bad(`${m.locators.length} locators`);
    for (const [i, l] of s.locators.entries()) {
      const got = m.locators[i];
      const want = new TextDecoder('utf-16le').decode(l.data);
      if (got.entry.platform !== l.platform || !got.value.ok || got.value.path !== want) bad(`locator ${i}`);
    }
  } finally {
    await v.close();
  }
}
