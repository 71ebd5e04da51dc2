/**
 * The protocol between the planner (main thread) and the compare workers.
 * This module holds types only and is imported by both sides.
 *
 * A run is four numbers: [firstSectorInUnit, sectorCount, fileIndex, fileOffset],
 * fileIndex -1 meaning "zeros". Runs are flattened into one number array.
 */

/** Compare the source runs of one unit with the reference runs, sector by sector. */
export interface CompareTask {
  kind: 'compare';
  /** Index of this unit's slot in the shared data arena. */
  slot: number;
  /** Sectors in the unit. */
  sectors: number;
  /** Paths the runs refer to (read-only). */
  files: string[];
  /** Source runs: the sectors the output may hold, and where their data is. */
  src: number[];
  /** Reference runs over exactly the same sectors, or null when the reference is all zeros. */
  ref: number[] | null;
  /** The unit will be written: zero its dropped sectors in the slot. False in dry runs. */
  write: boolean;
  /** Also return `zero`: which dropped sectors were zero over zero (to attribute them by partition). */
  classify?: boolean;
}

export interface CompareResult {
  /** One bit per unit sector (MSB first): 1 = equal to the reference, drop it. */
  drop: Uint8Array;
  /** Source sectors that differ from the reference (kept). */
  kept: number;
  /** Dropped sectors holding non-zero data equal to the reference. */
  sameAsParent: number;
  /** Dropped sectors where both source and reference are zero. */
  zeroOverZero: number;
  /** With `classify`: one bit per unit sector (MSB first), 1 = dropped as zero over zero. */
  zero?: Uint8Array;
}

/** Check that sectors whose bitmap bit is 0 hold zeros (spec invariant). */
export interface UnsetZeroTask {
  kind: 'unsetZero';
  file: string;
  /** Byte offset of the block's data. */
  dataOffset: number;
  /** Sectors in the block. */
  sectors: number;
  /** The block's bitmap. */
  bitmap: Uint8Array;
}

export interface UnsetZeroResult {
  /** Sector indices (within the block) with data where the bit is clear; at most 16 listed. */
  dirty: number[];
  dirtyCount: number;
}

/** SHA-1 of a byte range of a file (verification of what was written). */
export interface DigestTask {
  kind: 'digest';
  file: string;
  offset: number;
  length: number;
}

/**
 * Find the first differing byte between two runs lists over the same
 * sectors. Needs no data slot: the kernel compares through two small windows.
 */
export interface DiffTask {
  kind: 'diff';
  sectors: number;
  files: string[];
  a: number[];
  b: number[];
  /** Stop after this many differing ranges. */
  maxRanges: number;
}

export interface DiffResult {
  /** Byte offset within the unit of the first difference, or -1. */
  first: number;
  /** Byte ranges [start, end) within the unit that differ, in order (at most maxRanges, sector granular). */
  ranges: Array<[number, number]>;
  /** The task stopped at maxRanges: what follows it is unknown. */
  full: boolean;
}

/** Does nothing: starts a worker thread ahead of real work. */
export interface PingTask {
  kind: 'ping';
}

export type WorkerTask = CompareTask | UnsetZeroTask | DigestTask | DiffTask | PingTask;

/** What the workers receive once: the shared arena of data slots. */
export interface WorkerData {
  arena: SharedArrayBuffer;
  slotBytes: number;
}
