/**
 * $Bitmap's bits as free byte ranges. Pure: fed the bitmap's bytes in
 * order, in chunks of any size. Bit n is cluster n, least significant bit
 * first; a clear bit is a free cluster; bits past the cluster count are
 * ignored.
 */
import { RangeSetBuilder, type RangeSet } from '../ranges.js';

export class FreeMapBuilder {
  private readonly b = new RangeSetBuilder();
  private cluster = 0;
  private runStart = -1;

  constructor(private readonly clusterCount: number, private readonly clusterSize: number) {}

  feed(chunk: Uint8Array): void {
    const count = this.clusterCount;
    let cluster = this.cluster;
    let runStart = this.runStart;
    for (let i = 0; i < chunk.length && cluster < count; i++) {
      const byte = chunk[i];
      if (byte === 0xff && runStart < 0) { cluster += 8; continue; } // all in use, no run open
      if (byte === 0 && runStart >= 0) { cluster += 8; continue; } // all free, run continues
      for (let bit = 0; bit < 8 && cluster < count; bit++, cluster++) {
        const used = (byte >> bit) & 1;
        if (!used && runStart < 0) runStart = cluster;
        else if (used && runStart >= 0) {
          this.b.add(runStart * this.clusterSize, cluster * this.clusterSize);
          runStart = -1;
        }
      }
    }
    this.cluster = Math.min(cluster, count);
    this.runStart = runStart;
  }

  finish(): RangeSet {
    if (this.runStart >= 0) this.b.add(this.runStart * this.clusterSize, this.clusterCount * this.clusterSize);
    this.runStart = -1;
    return this.b.build();
  }
}
