/**
 * The planner of a rewrite: which units of the output need comparing, and
 * against what.
 *
 * A rewrite turns the top `sourceCount` layers of a chain into one output
 * layer (compact: the leaf alone; merge: child + parent; flatten: every
 * layer). The layers below, if any, are the *reference*: an output sector is
 * kept only where the source content differs from what the reference reads
 * (zeros when there is no reference).
 *
 * Output blocks are visited in order, and only those where some source layer
 * holds data. Each block is split into units of at most `unitSectors` sectors
 * (so memory stays bounded whatever the block size). For each unit the
 * planner resolves, from the BATs and bitmaps alone:
 *   - the source runs U: sectors the source layers supply (data or zeros);
 *   - the reference runs over exactly U.
 * It reads no data; the workers do.
 */
import { SECTOR } from '../format/index.js';
import type { Chain } from '../chain/chain.js';
import type { ChainResolver, Piece } from '../chain/resolve.js';
import type { CompareTask } from './tasks.js';
import type { DropIndex, DropTally } from './dropIndex.js';

export interface RewriteSpec {
  chain: Chain;
  /** Layers [0, sourceCount) are rewritten into the output. */
  sourceCount: number;
  /** Output block size in bytes (sparse outputs), or the unit size for fixed outputs. */
  blockSize: number;
  /** Output virtual size in bytes. */
  virtualSize: number;
  /** Largest unit, in sectors (a divisor of the block's sector count). */
  unitSectors: number;
  /**
   * compact --free-space: sectors to leave out of the output whatever they
   * hold (free clusters, opted-in files). They are removed from the source
   * runs: neither compared nor kept.
   */
  drops?: DropIndex;
}

export interface UnitPlan {
  /** Output block index. */
  block: number;
  /** First virtual sector of the unit. */
  firstSector: number;
  /** Sector of the unit within its block. */
  offsetInBlock: number;
  /** Sectors in the unit (the last unit of the disk may be short). */
  sectors: number;
  /** True for the block's last unit: the executor finishes the block after it. */
  lastInBlock: boolean;
  /** Compare task, or null when the sources hold nothing in this unit. */
  task: CompareTask | null;
  /** Runs [first, count] (unit-relative) of sectors whose data comes from a source layer (not zeros). */
  dataRuns: number[];
  /** Source sectors the drop plan removed from this unit. */
  planned: number;
}

export interface PlanCounters {
  /** Output blocks visited (source data present). */
  blocksVisited: number;
  /** Visited blocks where no source sector exists at all (allocated, empty bitmap). */
  emptyBlocks: number;
  /** With a drop plan: the sectors it removed, by reason and partition. */
  tally?: DropTally;
}

/** Output blocks where any source layer holds data, ascending. */
export function visitedBlocks(spec: RewriteSpec): Iterable<number> {
  const layers = spec.chain.layersLeafFirst.slice(0, spec.sourceCount);
  const nOut = Math.ceil(spec.virtualSize / spec.blockSize);
  const marks = new Uint8Array(nOut);
  for (const l of layers) {
    const m = l.meta;
    if (m.type === 'fixed') {
      const end = Math.min(nOut, Math.ceil(m.virtualSize / spec.blockSize));
      marks.fill(1, 0, end);
      continue;
    }
    const bs = m.blockSize!;
    for (const b of m.bat!.allocated()) {
      const start = Math.floor((b * bs) / spec.blockSize);
      const end = Math.min(nOut, Math.ceil(((b + 1) * bs) / spec.blockSize));
      for (let i = start; i < end; i++) marks[i] = 1;
    }
  }
  // A source layer smaller than the output reads zeros past its end, hiding what the
  // reference holds there: those zeros are content the output must keep.
  if (spec.sourceCount < spec.chain.layersLeafFirst.length) {
    let shortest = spec.virtualSize;
    for (const l of layers) shortest = Math.min(shortest, l.meta.virtualSize);
    if (shortest < spec.virtualSize) marks.fill(1, Math.floor(shortest / spec.blockSize));
  }
  return (function* () {
    for (let i = 0; i < nOut; i++) if (marks[i]) yield i;
  })();
}

/** Packs pieces into task runs relative to `unitStart`, mapping layers to file indices. */
function toRuns(pieces: Piece[], unitStart: number, fileIndex: (layer: number) => number): number[] {
  const runs: number[] = [];
  for (const p of pieces) runs.push(p.sector - unitStart, p.count, p.layer < 0 ? -1 : fileIndex(p.layer), p.fileOffset);
  return runs;
}

export async function* planUnits(spec: RewriteSpec, resolver: ChainResolver, counters: PlanCounters): AsyncGenerator<UnitPlan> {
  const layers = spec.chain.layersLeafFirst;
  const files = layers.map((l) => l.path);
  const k = spec.sourceCount;
  const spb = spec.blockSize / SECTOR;
  const totalSectors = spec.virtualSize / SECTOR;
  const unit = Math.min(spec.unitSectors, spb);
  spec.drops?.reset();
  for (const block of visitedBlocks(spec)) {
    counters.blocksVisited++;
    const blockStart = block * spb;
    const blockEnd = Math.min(blockStart + spb, totalSectors);
    let anySource = false;
    for (let s = blockStart; s < blockEnd; s += unit) {
      const n = Math.min(unit, blockEnd - s);
      const pieces = resolver.resolveRange(0, s, n, k);
      let srcPieces = pieces.filter((p) => p.layer !== -2);
      let planned = 0;
      if (srcPieces.length > 0) anySource = true;
      if (spec.drops && counters.tally && srcPieces.length > 0) ({ pieces: srcPieces, removed: planned } = spec.drops.cut(srcPieces, counters.tally));
      const dataRuns: number[] = [];
      for (const p of srcPieces) if (p.layer >= 0) dataRuns.push(p.sector - s, p.count);
      let task: CompareTask | null = null;
      if (srcPieces.length > 0) {
        let ref: number[] | null = null;
        if (k < layers.length) {
          const refPieces: Piece[] = [];
          for (const p of srcPieces) refPieces.push(...(resolver.resolveRange(k, p.sector, p.count)));
          if (refPieces.some((p) => p.layer >= 0)) ref = toRuns(refPieces, s, (l) => l);
        }
        task = { kind: 'compare', slot: -1, sectors: n, files, src: toRuns(srcPieces, s, (l) => l), ref, write: false };
      }
      yield {
        block, firstSector: s, offsetInBlock: s - blockStart, sectors: n,
        lastInBlock: s + unit >= blockEnd, task, dataRuns, planned,
      };
    }
    if (!anySource) counters.emptyBlocks++;
  }
}
