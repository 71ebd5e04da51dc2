/**
 * Reading a chain's guest-visible content: any byte range, sector-exact.
 */
import { readExact } from '../io/fsys.js';
import { SECTOR } from '../format/index.js';
import type { Chain } from './chain.js';
import { ChainResolver, type Piece } from './resolve.js';

export class ChainReader {
  readonly resolver: ChainResolver;

  constructor(readonly chain: Chain, resolver?: ChainResolver) {
    this.resolver = resolver ?? new ChainResolver(chain);
  }

  /** Virtual size of the leaf, in bytes. */
  get size(): number {
    return this.chain.layersLeafFirst[0].meta.virtualSize;
  }

  /** Reads whole sectors [sector, sector+count) as seen from layer `from` into `buf` at `off`. */
  async readSectors(from: number, sector: number, count: number, buf: Uint8Array, off = 0): Promise<void> {
    const pieces = this.resolver.resolveRange(from, sector, count);
    await this.readPieces(pieces, sector, buf, off);
  }

  /** Fills `buf` (starting at `off`) from pieces that begin at virtual sector `first`. */
  async readPieces(pieces: Piece[], first: number, buf: Uint8Array, off = 0): Promise<void> {
    const layers = this.chain.layersLeafFirst;
    for (const p of pieces) {
      const at = off + (p.sector - first) * SECTOR;
      const len = p.count * SECTOR;
      if (p.layer < 0) buf.fill(0, at, at + len);
      else await readExact(layers[p.layer].vhd.file, buf, at, len, p.fileOffset);
    }
  }

  /** Reads `length` bytes of guest content at byte `offset` of the leaf (zeros past the end). */
  async read(offset: number, length: number, buf = new Uint8Array(length)): Promise<Uint8Array> {
    if (length === 0) return buf;
    const first = Math.floor(offset / SECTOR);
    const last = Math.ceil((offset + length) / SECTOR);
    const lead = offset - first * SECTOR;
    if (lead === 0 && length % SECTOR === 0) {
      await this.readSectors(0, first, last - first, buf, 0);
      return buf;
    }
    const tmp = new Uint8Array((last - first) * SECTOR);
    await this.readSectors(0, first, last - first, tmp, 0);
    buf.set(tmp.subarray(lead, lead + length));
    return buf;
  }

  /**
   * Streams the whole guest content in chunks of `chunkBytes` (a multiple of
   * 512), calling `sink` with each chunk (reused between calls).
   */
  async stream(sink: (chunk: Uint8Array, offset: number) => void | Promise<void>, chunkBytes = 4 * 1024 * 1024): Promise<void> {
    const size = this.size;
    const buf = new Uint8Array(chunkBytes);
    for (let off = 0; off < size; off += chunkBytes) {
      const n = Math.min(chunkBytes, size - off);
      await this.readSectors(0, off / SECTOR, Math.ceil(n / SECTOR), buf, 0);
      await sink(buf.subarray(0, n), off);
    }
  }
}
