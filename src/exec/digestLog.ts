/**
 * What the executor wrote, as (file offset, length, SHA-1) records, so the
 * output can be re-read and verified against the plan after fsync. Stored in
 * typed arrays: 32 bytes per record.
 */
export class DigestLog {
  private offsets = new Float64Array(1024);
  private lengths = new Uint32Array(1024);
  private digests = new Uint8Array(1024 * 20);
  length = 0;

  add(offset: number, length: number, sha1hex: string): void {
    if (this.length === this.offsets.length) this.grow();
    const i = this.length++;
    this.offsets[i] = offset;
    this.lengths[i] = length;
    for (let k = 0; k < 20; k++) this.digests[i * 20 + k] = parseInt(sha1hex.slice(k * 2, k * 2 + 2), 16);
  }

  get(i: number): { offset: number; length: number; digest: string } {
    let d = '';
    for (let k = 0; k < 20; k++) d += this.digests[i * 20 + k].toString(16).padStart(2, '0');
    return { offset: this.offsets[i], length: this.lengths[i], digest: d };
  }

  private grow(): void {
    const n = this.offsets.length * 2;
    const o = new Float64Array(n); o.set(this.offsets); this.offsets = o;
    const l = new Uint32Array(n); l.set(this.lengths); this.lengths = l;
    const d = new Uint8Array(n * 20); d.set(this.digests); this.digests = d;
  }
}
