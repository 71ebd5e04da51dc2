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
 * holds data (with `visitReference`, also those where a reference layer does). Each block is split into units of at most `unitSectors` sectors
 * (so memory stays bounded whatever the block size). For each unit the
 * planner resolves, from the BATs and bitmaps alone:
 *   - the source runs U: sectors the source layers supply (data or zeros);
 *   - the reference runs over exactly U.
 * It reads no data; the workers do.
 */
import { SECTOR } from '../format/index.js';
import type { Chain } from '../chain/chain.js';
import { pushPiece, type ChainResolver, type Piece } from '../chain/resolve.js';
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
  /**
   * Also visit blocks where only the reference holds data (rebase: where the
   * source reads zeros over the new parent's data, the output must store
   * those zeros). Compact and merge leave it unset: their reference is the
   * source's own parent, which the source already shows wherever it does
   * not hold data itself.
   */
  visitReference?: boolean;
  /**
   * Leave out of the output, without reading them, the source sectors that
   * the reference reads from the very same file at the very same offset: the
   * same bytes (rebase onto a chain that shares layers with the disk's own,
   * such as its parent or an update layer above its base). Compact's and
   * merge's source and reference never share a file.
   */
  skipShared?: boolean;
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
  /** Source sectors left out because the reference reads them from the same file and offset (`skipShared`). */
  sharedSectors?: number;
}

/** Output blocks where any source layer (with `visitReference`, any layer) holds data, ascending. */
export function visitedBlocks(spec: RewriteSpec): Iterable<number> {
  const all = spec.chain.layersLeafFirst;
  const sources = all.slice(0, spec.sourceCount);
  const layers = spec.visitReference ? all : sources;
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
    for (const l of sources) shortest = Math.min(shortest, l.meta.virtualSize);
    if (shortest < spec.virtualSize) marks.fill(1, Math.floor(shortest / spec.blockSize));
  }
  return (function* () {
    for (let i = 0; i < nOut; i++) if (marks[i]) yield i;
  })();
}

/**
 * Walks the source pieces against the reference pieces (which cover every
 * source sector) and drops the stretches the reference reads from the same
 * file (`fileId` per layer) at the same offset. Returns the remaining source
 * and reference pieces, aligned, and the sectors dropped.
 */
function withoutShared(src: Piece[], ref: Piece[], fileId: string[]): { src: Piece[]; ref: Piece[]; shared: number } {
  const out = { src: [] as Piece[], ref: [] as Piece[], shared: 0 };
  let j = 0;
  for (const p of src) {
    const end = p.sector + p.count;
    for (let at = p.sector; at < end;) {
      while (ref[j].sector + ref[j].count <= at) j++;
      const r = ref[j];
      const e = Math.min(end, r.sector + r.count);
      const offP = p.layer < 0 ? 0 : p.fileOffset + (at - p.sector) * SECTOR;
      const offR = r.layer < 0 ? 0 : r.fileOffset + (at - r.sector) * SECTOR;
      if (p.layer >= 0 && r.layer >= 0 && fileId[p.layer] === fileId[r.layer] && offP === offR) {
        out.shared += e - at;
      } else {
        pushPiece(out.src, { sector: at, count: e - at, layer: p.layer, fileOffset: offP });
        pushPiece(out.ref, { sector: at, count: e - at, layer: r.layer, fileOffset: offR });
      }
      at = e;
    }
  }
  return out;
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
  const fileId = layers.map((l) => `${l.dev}:${l.ino}`);
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
      let task: CompareTask | null = null;
      if (srcPieces.length > 0) anySource = true;
      if (spec.drops && counters.tally && srcPieces.length > 0) ({ pieces: srcPieces, removed: planned } = spec.drops.cut(srcPieces, counters.tally));
      let refPieces: Piece[] = [];
      if (srcPieces.length > 0 && k < layers.length) {
        if (spec.skipShared) {
          // The reference over the whole unit, resolved once, walked against the source pieces.
          const kept = withoutShared(srcPieces, resolver.resolveRange(k, s, n), fileId);
          counters.sharedSectors = (counters.sharedSectors ?? 0) + kept.shared;
          srcPieces = kept.src;
          refPieces = kept.ref;
        } else {
          for (const p of srcPieces) refPieces.push(...resolver.resolveRange(k, p.sector, p.count));
        }
      }
      const dataRuns: number[] = [];
      for (const p of srcPieces) if (p.layer >= 0) dataRuns.push(p.sector - s, p.count);
      if (srcPieces.length > 0) {
        const ref = refPieces.some((p) => p.layer >= 0) ? toRuns(refPieces, s, (l) => l) : null;
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
