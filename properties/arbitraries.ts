/**
 * Random chains for the properties: depth 1-4 (a base and up to 3 children),
 * block sizes from 4 KiB to 2 MiB, a few blocks each, and writes of four kinds:
 * random data, zeros (over data or over zeros), copies of what the parent
 * chain already shows there, and a repeated byte. Sizes may differ between
 * layers (a child larger than its parent reads zeros past the parent's end).
 */
import fc from 'fast-check';
import { modelContent, type SynthLayer, type SynthWrite } from '../src/synth/build.js';
import { patternBytes as bytes } from '../src/synth/random.js';

export interface WriteSpec {
  /** Position as a fraction of the disk, and length in sectors. */
  at: number;
  sectors: number;
  kind: 'random' | 'zero' | 'copy' | 'fill' | 'tweak';
  seed: number;
}

export interface ChainSpec {
  blockSizes: number[];
  /** Virtual size of each layer, in blocks of the base's block size (plus a partial block). */
  sizes: number[];
  baseType: 'dynamic' | 'fixed';
  fullBitmaps: boolean;
  writes: WriteSpec[][];
  shuffle: boolean[];
  /** Write the last sector of the disk in the leaf. */
  lastSector: boolean;
}

const SECTOR = 512;
const blockSizeArb = fc.constantFrom(4096, 8192, 65536, 512 * 1024, 2 * 1024 * 1024);

const writeArb: fc.Arbitrary<WriteSpec> = fc.record({
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  sectors: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 300 })),
  kind: fc.constantFrom('random', 'zero', 'copy', 'copy', 'fill', 'tweak', 'tweak', 'tweak'),
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
});

export const chainSpecArb = (maxDepth = 4): fc.Arbitrary<ChainSpec> =>
  fc.integer({ min: 1, max: maxDepth }).chain((depth) =>
    fc.record({
      blockSizes: fc.array(blockSizeArb, { minLength: depth, maxLength: depth }),
      sizes: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: depth, maxLength: depth }),
      baseType: fc.constantFrom('dynamic', 'dynamic', 'fixed'),
      fullBitmaps: fc.boolean(),
      writes: fc.array(fc.array(writeArb, { minLength: 0, maxLength: 12 }), { minLength: depth, maxLength: depth }),
      shuffle: fc.array(fc.boolean(), { minLength: depth, maxLength: depth }),
      lastSector: fc.boolean(),
    }),
  );

/** Turns a spec into layer descriptions (base first), computing "copy" writes from the model. */
export function materialize(spec: ChainSpec): SynthLayer[] {
  const layers: SynthLayer[] = [];
  const unit = spec.blockSizes[0];
  for (let i = 0; i < spec.blockSizes.length; i++) {
    // Sizes: whole multiples of the base's block size, minus a few sectors (not a multiple of any block size).
    const size = Math.max(SECTOR * 8, spec.sizes[i] * unit - (i % 2 === 1 ? 3 * SECTOR : 0));
    const type = i === 0 ? spec.baseType : 'differencing';
    const below = i > 0 ? modelContent(layers) : new Uint8Array(0);
    const totalSectors = size / SECTOR;
    const writes: SynthWrite[] = [];
    const lower = layers.flatMap((l) => l.writes);
    for (const w of spec.writes[i]) {
      const n = Math.min(w.sectors, totalSectors);
      let start = Math.min(totalSectors - n, Math.floor(w.at * totalSectors));
      if ((w.kind === 'copy' || w.kind === 'tweak' || w.kind === 'zero') && lower.length > 0 && w.seed % 4 !== 0) {
        // Mostly land on data a lower layer wrote, where copies and zeros matter.
        const lw = lower[w.seed % lower.length];
        start = Math.min(totalSectors - n, lw.sector + Math.floor(w.at * (lw.data.length / SECTOR)));
      }
      let data: Uint8Array;
      switch (w.kind) {
        case 'random': data = bytes(n * SECTOR, w.seed); break;
        case 'zero': data = new Uint8Array(n * SECTOR); break;
        case 'fill': data = new Uint8Array(n * SECTOR).fill(w.seed & 0xff); break;
        case 'copy':
        case 'tweak': {
          data = new Uint8Array(n * SECTOR);
          const from = start * SECTOR;
          if (from < below.length) data.set(below.subarray(from, Math.min(below.length, from + n * SECTOR)));
          if (w.kind === 'tweak') {
            // The parent's data with one byte changed in every other sector: first, middle or last byte.
            const pos = [0, 300, 511][w.seed % 3];
            for (let s = w.seed & 1; s < n; s += 2) data[s * SECTOR + pos] ^= 1 + (w.seed % 255);
          }
          break;
        }
      }
      writes.push({ sector: start, data });
    }
    if (spec.lastSector && i === spec.blockSizes.length - 1) writes.push({ sector: totalSectors - 1, data: bytes(SECTOR, 99) });
    layers.push({
      type,
      virtualSize: size,
      blockSize: type === 'fixed' ? undefined : spec.blockSizes[i],
      writes,
      shuffleSeed: spec.shuffle[i] ? 1234 + i : undefined,
      fullBitmaps: spec.fullBitmaps,
      timestamp: 800000000 + i,
    });
  }
  return layers;
}
