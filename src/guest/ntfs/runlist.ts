/**
 * Mapping pairs (runlists): the VCN -> LCN map of a non-resident attribute.
 * Pure. Each run is a header byte (low nibble: bytes of the length, high
 * nibble: bytes of the signed LCN delta, 0 for a sparse run) followed by
 * those bytes; a zero header ends the list.
 */

/** Where decoded runs go: `lcn` is -1 for a sparse run. */
export type RunSink = (vcn: number, lcn: number, length: number) => void;

export interface Run {
  vcn: number;
  /** -1 for a sparse run (reads as zeros, holds no cluster). */
  lcn: number;
  length: number;
}

const LIMIT = 2 ** 53;

/** A little-endian unsigned integer of `n` (1..8) bytes, or -1 past 2^53. */
function unsigned(b: Uint8Array, o: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) {
    v = v * 256 + b[o + i];
    if (v >= LIMIT) return -1;
  }
  return v;
}

/** A little-endian two's-complement integer of `n` (1..8) bytes, or NaN when out of range. */
function signed(b: Uint8Array, o: number, n: number): number {
  const negative = (b[o + n - 1] & 0x80) !== 0;
  let v = 0;
  for (let i = n - 1; i >= 0; i--) {
    v = v * 256 + (negative ? 255 - b[o + i] : b[o + i]);
    if (v >= LIMIT) return NaN;
  }
  return negative ? -(v + 1) : v;
}

/**
 * Decodes the mapping pairs in `b[start, end)` of an attribute extent
 * covering VCNs [lowestVcn, highestVcn]. Every run must lie within the
 * volume's `clusterCount` clusters and the extent's VCN range. Returns null
 * when the list is sound, or what is wrong with it.
 */
export function decodeRuns(
  b: Uint8Array, start: number, end: number,
  lowestVcn: number, highestVcn: number, clusterCount: number, sink: RunSink,
): string | null {
  let vcn = lowestVcn;
  let lcn = 0;
  let p = start;
  while (p < end) {
    const h = b[p];
    if (h === 0) break;
    const lenBytes = h & 0x0f;
    const lcnBytes = h >> 4;
    if (lenBytes === 0 || lenBytes > 8 || lcnBytes > 8) return `run header byte 0x${h.toString(16)} at +${p - start} is invalid`;
    if (p + 1 + lenBytes + lcnBytes > end) return 'mapping pairs run past the end of the attribute';
    const length = unsigned(b, p + 1, lenBytes);
    if (length <= 0) return `a run of ${length} clusters at VCN ${vcn}`;
    if (vcn + length - 1 > highestVcn) return `runs map past the extent's last VCN ${highestVcn}`;
    if (lcnBytes === 0) {
      sink(vcn, -1, length);
    } else {
      const delta = signed(b, p + 1 + lenBytes, lcnBytes);
      lcn += delta;
      if (!Number.isFinite(lcn) || lcn < 0 || lcn + length > clusterCount) {
        return `run at VCN ${vcn} (clusters ${lcn} + ${length}) lies outside the volume (${clusterCount} clusters)`;
      }
      sink(vcn, lcn, length);
    }
    vcn += length;
    p += 1 + lenBytes + lcnBytes;
  }
  return null;
}

/** The runs as a list (for $MFT, $Bitmap and content reads). */
export function runsOf(
  b: Uint8Array, start: number, end: number, lowestVcn: number, highestVcn: number, clusterCount: number,
): Run[] | string {
  const out: Run[] = [];
  const problem = decodeRuns(b, start, end, lowestVcn, highestVcn, clusterCount, (vcn, lcn, length) => out.push({ vcn, lcn, length }));
  return problem ?? out;
}
