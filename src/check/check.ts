/**
 * `vhdtool check`: everything blktap's `vhd-util check` checks, and more.
 *
 * Errors break the format or the chain; warnings are what real producers
 * write (Windows' zero-filled gap before the footer, locator data space
 * counted in bytes, a null UUID from old qemu...).
 */
import { VhdToolError } from '../errors.js';
import {
  SECTOR, geometryCapacity, isMaxGeometry, dateToVhdTime, vhdTimeToIso,
} from '../format/index.js';
import type { FileSystem } from '../io/fsys.js';
import { openChain } from '../chain/openChain.js';
import { baseName } from '../chain/candidates.js';
import { earlierIssues, openVhd, type Vhd, type VhdMeta } from '../vhd/image.js';
import { IssueList, type Issue } from '../vhd/issues.js';
import type { TaskRunner } from '../parallel/pool.js';
import { findDirtyUnsetSectors } from './unset.js';
import { describeOrphan, describeTail, scanGaps } from './gaps.js';

export interface CheckOptions {
  parent?: string;
  /** Skip reading block data (the bitmap invariant); metadata only. */
  fast?: boolean;
  /** Stops the data read (the bitmap invariant) with INTERRUPTED. */
  signal?: AbortSignal;
}

export interface CheckReport {
  path: string;
  type: string | null;
  ok: boolean;
  errors: Issue[];
  warnings: Issue[];
  /** The resolved parent chain (leaf excluded), when it could be opened. */
  parents: Array<{ path: string; uuid: string }>;
}

export async function checkDisk(fs: FileSystem, file: string, runner: TaskRunner, opts: CheckOptions = {}): Promise<CheckReport> {
  const issues = new IssueList();
  let vhd: Vhd;
  try {
    vhd = await openVhd(fs, file, { mode: 'collect' });
  } catch (e) {
    if (e instanceof VhdToolError && (e.code === 'BAD_FORMAT' || e.code === 'BAD_CHECKSUM' || e.code === 'TRUNCATED' || e.code === 'UNSUPPORTED')) {
      // What was found before the structure became unreadable comes first: the first error is the one every command gives.
      return { path: file, type: null, ok: false, errors: [...earlierIssues(e), { severity: 'error', rule: 'structure', message: e.message }], warnings: [], parents: [] };
    }
    throw e;
  }
  const parents: CheckReport['parents'] = [];
  try {
    const m = vhd.meta;
    issues.items.push(...m.issues);
    checkFooterFields(m, issues);
    if (m.type !== 'fixed') {
      await checkGaps(vhd, issues);
      if (!opts.fast) {
        const dirty = await findDirtyUnsetSectors(vhd, runner, undefined, opts.signal);
        for (const d of dirty.slice(0, 10)) {
          issues.error('bitmap-clear-data', `block ${d.block}: ${d.count} sector(s) hold data where the bitmap is clear (first at sector ${d.block * (m.blockSize! / SECTOR) + d.sectors[0]})`);
        }
        if (dirty.length > 10) issues.error('bitmap-clear-data', `${dirty.length - 10} more blocks hold data where the bitmap is clear`);
      }
    }
    if (m.type === 'differencing') {
      const h = m.header!;
      for (const l of m.locators) {
        if (l.value.ok && l.value.path !== null && h.parentUnicodeName && baseName(l.value.path) !== baseName(h.parentUnicodeName)) {
          issues.warn('locator-name', `locator ${l.index} (${String(l.entry.platform)}) names ${JSON.stringify(baseName(l.value.path))}, the header names ${JSON.stringify(baseName(h.parentUnicodeName))}`);
        }
      }
      if (h.parentTimestamp > dateToVhdTime(new Date()) + 86400) issues.warn('parent-time-future', `parent time stamp ${vhdTimeToIso(h.parentTimestamp)} is in the future`);
      try {
        const chain = await openChain(fs, file, { parent: opts.parent, mode: 'strict', leafMode: 'collect' });
        for (const l of chain.layersLeafFirst.slice(1)) parents.push({ path: l.path, uuid: l.meta.footer.uniqueId });
        await chain.close();
      } catch (e) {
        if (!(e instanceof VhdToolError)) throw e;
        issues.error(e.code === 'PARENT_MISMATCH' ? 'parent-uuid' : 'parent', e.path && e.path !== file ? `parent chain: ${e.path}: ${e.message}` : `parent chain: ${e.message}`);
      }
    }
    const errors = issues.errors;
    return { path: file, type: m.type, ok: errors.length === 0, errors, warnings: issues.warnings, parents };
  } finally {
    await vhd.close();
  }
}

function checkFooterFields(m: VhdMeta, issues: IssueList): void {
  const f = m.footer;
  const cap = geometryCapacity(f.geometry);
  if (!isMaxGeometry(f.geometry) && cap > f.currentSize) {
    issues.warn('geometry', `CHS geometry ${f.geometry.cylinders}/${f.geometry.heads}/${f.geometry.sectorsPerTrack} (${cap} bytes) is larger than the current size ${f.currentSize}`);
  }
  if (f.timestamp > dateToVhdTime(new Date()) + 86400) issues.warn('time-future', `time stamp ${vhdTimeToIso(f.timestamp)} is in the future`);
  if (f.originalSize > f.currentSize) issues.warn('original-size', `original size ${f.originalSize} is larger than the current size ${f.currentSize}`);
  if (f.currentSize > 2040 * 1024 ** 3 && m.type !== 'fixed') issues.warn('size-limit', `current size ${f.currentSize} exceeds the 2040 GiB the specification allows`);
}

/**
 * Spare BAT entries (past what the size needs) should be unused; gaps between
 * structures must be zero (Windows' zero-filled tail is a warning); anything
 * else there may be the data of a block whose BAT entry was lost.
 */
async function checkGaps(vhd: Vhd, issues: IssueList): Promise<void> {
  const g = await scanGaps(vhd);
  if (g.spareAllocated > 0) issues.warn('bat-spare', `${g.spareAllocated} BAT entries past the end of the disk are allocated (their data is not visible)`);
  if (g.tail && g.tail.zero) issues.warn('tail-gap', describeTail(g.tail));
  for (const o of g.orphans.slice(0, 10)) issues.error('orphan-data', describeOrphan(o));
  if (g.orphans.length > 10) issues.error('orphan-data', `${g.orphans.length - 10} more gaps hold data no structure accounts for`);
}

export function describeCheck(r: CheckReport): string[] {
  const lines: string[] = [];
  for (const e of r.errors) lines.push(`${r.path}: error: ${e.message}`);
  for (const w of r.warnings) lines.push(`${r.path}: warning: ${w.message}`);
  return lines;
}

