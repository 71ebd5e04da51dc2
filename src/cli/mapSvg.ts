/**
 * The picture `vhdtool map --svg` draws: one strip per chain layer showing
 * the blocks it holds, and the leaf's own strip coloured by what its bytes
 * are in the guest (file data, metadata, free space, outside partitions, a
 * file system vhdtool cannot read). Partition boundaries are marked.
 *
 * Pure and deterministic (the same input gives the same bytes). The disk is
 * drawn at a fixed width whatever its size, and equal neighbouring columns
 * are merged into one path segment, so the file stays small: at most one
 * segment per column per strip (a few hundred KiB for a 2 TiB disk).
 */
import type { RangeSet } from '../guest/ranges.js';
import { fmtBytes } from '../plural.js';

export type LeafClass = 'file' | 'metadata' | 'free' | 'outside' | 'unknown';

export interface MapPicture {
  title: string;
  /** Virtual size in bytes. */
  size: number;
  /** Layers, leaf first: the blocks each one holds. */
  layers: Array<{ label: string; blocks: RangeSet }>;
  /** The leaf's sectors, by meaning. */
  leaf: Record<LeafClass, RangeSet>;
  partitions: Array<{ start: number; end: number; label: string }>;
}

const W = 1000;
const LEFT = 150;
const TOP = 46;
const LEAF_H = 40;
const LAYER_H = 16;
const GAP = 6;
/** Strips drawn at most; deeper chains are summarised in one line. */
const MAX_LAYERS = 32;

const CLASSES: Array<{ key: LeafClass; label: string; color: string }> = [
  { key: 'file', label: 'file data', color: '#2f6fdf' },
  { key: 'metadata', label: 'file-system metadata', color: '#e08a1e' },
  { key: 'free', label: 'free space (reclaimable)', color: '#46b35a' },
  { key: 'outside', label: 'outside partitions', color: '#8a8a8a' },
  { key: 'unknown', label: 'file system not read', color: '#b04ac0' },
];
const LAYER_COLOR = '#5b6b82';

export function renderMapSvg(p: MapPicture): string {
  const layers = p.layers.slice(0, MAX_LAYERS);
  const layersTop = TOP + LEAF_H + GAP + 14;
  const legendTop = layersTop + layers.length * (LAYER_H + GAP) + (p.layers.length > MAX_LAYERS ? 16 : 0) + 10;
  const height = legendTop + CLASSES.length * 18 + 10;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${LEFT + W + 20}" height="${height}" viewBox="0 0 ${LEFT + W + 20} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<title>${esc(p.title)}</title>`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="10" y="18" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  out.push(...leafStrip(p));
  out.push(`<text x="10" y="${layersTop - 4}" fill="#333">blocks each layer holds</text>`);
  layers.forEach((l, i) => out.push(...layerStrip(p.size, l, layersTop + i * (LAYER_H + GAP))));
  if (p.layers.length > MAX_LAYERS) {
    out.push(`<text x="${LEFT}" y="${layersTop + layers.length * (LAYER_H + GAP) + 10}">… and ${p.layers.length - MAX_LAYERS} more layers</text>`);
  }
  out.push(...partitionMarks(p, TOP - 4, legendTop - 10));
  out.push(...legend(p, legendTop));
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Bytes of each set per column of the strip. */
function columnBytes(size: number, set: RangeSet): Float64Array {
  const col = new Float64Array(W);
  const per = size / W;
  for (const [s, e] of set) {
    let c = Math.min(W - 1, Math.floor(s / per));
    while (c < W) {
      const cs = c * per;
      const ce = (c + 1) * per;
      if (cs >= e) break;
      col[c] += Math.min(e, ce) - Math.max(s, cs);
      c++;
    }
  }
  return col;
}

/** Path data for columns where `pick(c)` holds, equal neighbours merged. */
function segments(pick: (c: number) => boolean, y: number, h: number): string {
  const d: string[] = [];
  for (let c = 0; c < W;) {
    if (!pick(c)) { c++; continue; }
    let e = c + 1;
    while (e < W && pick(e)) e++;
    d.push(`M${LEFT + c} ${y}h${e - c}v${h}h-${e - c}z`);
    c = e;
  }
  return d.join('');
}

function leafStrip(p: MapPicture): string[] {
  const cols = CLASSES.map((k) => columnBytes(p.size, p.leaf[k.key]));
  const winner = new Int8Array(W).fill(-1);
  for (let c = 0; c < W; c++) {
    let best = 0;
    cols.forEach((col, k) => {
      if (col[c] > best) {
        best = col[c];
        winner[c] = k;
      }
    });
  }
  const out = [
    `<text x="10" y="${TOP + LEAF_H / 2 + 4}">leaf, by meaning</text>`,
    `<rect x="${LEFT}" y="${TOP}" width="${W}" height="${LEAF_H}" fill="#f2f2f2" stroke="#cccccc"/>`,
  ];
  CLASSES.forEach((k, i) => {
    const d = segments((c) => winner[c] === i, TOP, LEAF_H);
    if (d) out.push(`<path fill="${k.color}" d="${d}"><title>${esc(`${k.label}: ${fmtBytes(p.leaf[k.key].bytes)}`)}</title></path>`);
  });
  return out;
}

function layerStrip(size: number, l: { label: string; blocks: RangeSet }, y: number): string[] {
  const col = columnBytes(size, l.blocks);
  const d = segments((c) => col[c] > 0, y, LAYER_H);
  const out = [
    `<text x="10" y="${y + LAYER_H - 4}">${esc(clip(l.label, 22))}<title>${esc(l.label)}</title></text>`,
    `<rect x="${LEFT}" y="${y}" width="${W}" height="${LAYER_H}" fill="#f2f2f2" stroke="#cccccc"/>`,
  ];
  if (d) out.push(`<path fill="${LAYER_COLOR}" d="${d}"><title>${esc(`${l.label}: ${fmtBytes(l.blocks.bytes)} in blocks`)}</title></path>`);
  return out;
}

function partitionMarks(p: MapPicture, top: number, bottom: number): string[] {
  const out: string[] = [];
  const x = (b: number) => LEFT + Math.round((b / p.size) * W);
  for (const part of p.partitions) {
    const x0 = x(part.start);
    const x1 = x(part.end);
    out.push(`<path d="M${x0} ${top}V${bottom}M${x1} ${top}V${bottom}" stroke="#000000" stroke-width="1" stroke-dasharray="3 2"/>`);
    const room = Math.max(0, Math.floor((x1 - x0 - 4) / 7));
    if (room >= 3) out.push(`<text x="${x0 + 3}" y="${top - 4}">${esc(clip(part.label, room))}<title>${esc(part.label)}</title></text>`);
  }
  return out;
}

function legend(p: MapPicture, top: number): string[] {
  return CLASSES.map((k, i) => {
    const y = top + i * 18;
    return `<rect x="${LEFT}" y="${y}" width="12" height="12" fill="${k.color}"/><text x="${LEFT + 18}" y="${y + 10}">${esc(`${k.label}: ${fmtBytes(p.leaf[k.key].bytes)}`)}</text>`;
  });
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, Math.max(1, n - 1))}…`;
}


function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)
    // Control characters are not allowed in XML 1.0.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '\ufffd');
}
