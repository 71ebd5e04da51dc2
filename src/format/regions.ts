/** Named byte ranges of a file, and the overlap test the checker uses. */

export interface Region {
  /** What the range holds: "header", "BAT", "block 17", "locator 1 (W2ru)", "footer"... */
  name: string;
  /** First byte. */
  start: number;
  /** One past the last byte. */
  end: number;
}

/** Returns the first pair of regions that overlap, or null. O(n log n). */
export function findOverlap(regions: Region[]): [Region, Region] | null {
  const sorted = regions.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start || a.end - b.end);
  let widest: Region | null = null;
  for (const r of sorted) {
    if (widest && r.start < widest.end) return [widest, r];
    if (!widest || r.end > widest.end) widest = r;
  }
  return null;
}

/** All overlapping pairs, at most `limit` of them, in file order. */
export function findOverlaps(regions: Region[], limit = 10): Array<[Region, Region]> {
  const sorted = regions.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start || a.end - b.end);
  const out: Array<[Region, Region]> = [];
  let widest: Region | null = null;
  for (const r of sorted) {
    if (widest && r.start < widest.end) {
      out.push([widest, r]);
      if (out.length >= limit) break;
    }
    if (!widest || r.end > widest.end) widest = r;
  }
  return out;
}

export function describeRegion(r: Region): string {
  return `${r.name} [0x${r.start.toString(16)}, 0x${r.end.toString(16)})`;
}
