/** Plain data shared by maintain's discovery, forest, planner and report. */
import type { ErrorCode } from '../errors.js';
import type { DiskType, Uuid } from '../format/index.js';

/** One VHD found under the roots (or, `external`, an ancestor outside them), from its metadata alone. */
export interface DiskInfo {
  /** Absolute path as found. */
  path: string;
  realPath: string;
  /** The root it was found under (for an external disk: its folder). */
  root: string;
  /** POSIX path relative to the root. */
  rel: string;
  dev: number;
  ino: number;
  /** File size in bytes. */
  size: number;
  mtimeMs: number;
  uuid: Uuid;
  type: DiskType;
  /** Differencing disks: the UUID of the parent. */
  parentUuid: Uuid | null;
  /** Where openChain looks for the parent (locators, then parent name), absolute, in its order. */
  parentCandidates: string[];
  savedState: boolean;
  virtualSize: number;
  /**
   * The smallest file compaction could produce (no block stored): `size -
   * minSize` bounds the reclaimable bytes without reading any data.
   */
  minSize: number;
  /** Outside the roots (or excluded) but needed as an ancestor: read, never written. */
  external: boolean;
  /** Format warnings (producer quirks that do not stop vhdtool). */
  warnings: string[];
}

/** A file that looks like a VHD but cannot be used: reported and left alone. */
export interface UnreadableFile {
  path: string;
  root: string;
  rel: string;
  kind: 'file' | 'directory';
  code: ErrorCode;
  message: string;
  /** The UUID in its footer, when the footer still decodes (so children can name it). */
  uuid: Uuid | null;
}

/** The result of looking at a parent candidate outside the discovered set. */
export type Probe = { uuid: Uuid } | { error: string };
