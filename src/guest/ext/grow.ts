/** Growable typed arrays: compact per-inode and per-entry state without an object per item. */

type TypedArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array;
type Ctor<T extends TypedArray> = { new (n: number): T };

export class Grow<T extends TypedArray> {
  a: T;
  length = 0;

  constructor(private readonly ctor: Ctor<T>, capacity = 256) {
    this.a = new ctor(capacity);
  }

  push(v: number): void {
    if (this.length === this.a.length) this.reserve(this.length + 1);
    this.a[this.length++] = v;
  }

  /** Makes room for `n` items in all. */
  reserve(n: number): void {
    if (n <= this.a.length) return;
    const b = new this.ctor(Math.max(n, this.a.length * 2));
    b.set(this.a as never);
    this.a = b;
  }
}

/** Bytes appended one slice at a time (directory entry names). */
export class BytePool {
  bytes = new Uint8Array(64 * 1024);
  length = 0;

  /** Appends `src[start, end)`; returns where it starts. */
  append(src: Uint8Array, start: number, end: number): number {
    const n = end - start;
    if (this.length + n > this.bytes.length) {
      const b = new Uint8Array(Math.max(this.length + n, this.bytes.length * 2));
      b.set(this.bytes.subarray(0, this.length));
      this.bytes = b;
    }
    this.bytes.set(src.subarray(start, end), this.length);
    const at = this.length;
    this.length += n;
    return at;
  }
}
