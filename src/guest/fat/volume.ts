/**
 * A FAT12/16/32 volume as the guest layer's Volume: opened from its boot
 * sector, scanned (scan.ts), and read file by file.
 */
import { GuestError } from '../errors.js';
import type { VolumeReader } from '../readers.js';
import { readChecked, type ByteSource } from '../source.js';
import type { GuestFile, ScanOptions, Volume, VolumeScan } from '../volume.js';
import { looksLikeFat, parseBootSector, type FatGeometry, type FatKind } from './bpb.js';
import { FatCursor } from './fatRead.js';
import { FatScanner } from './scan.js';
import { NEXT, classify, entryMask } from './table.js';

/** Largest piece readContent yields at a time. */
const CONTENT_WINDOW = 1024 * 1024;

export class FatVolume implements Volume {
  readonly kind: FatKind;
  readonly size: number;
  readonly clusterSize: number;
  readonly clusterArea: { start: number; end: number };
  private scannedLabel: string | null | undefined;

  constructor(private readonly src: ByteSource, readonly geometry: FatGeometry) {
    this.kind = geometry.kind;
    this.size = src.size;
    this.clusterSize = geometry.clusterSize;
    this.clusterArea = { start: geometry.dataStart, end: geometry.dataStart + geometry.clusterCount * geometry.clusterSize };
  }

  /** The root directory's label entry once a scan has read it (what Windows shows), else the boot sector's. */
  get label(): string | null {
    return this.scannedLabel !== undefined && this.scannedLabel !== null ? this.scannedLabel : this.geometry.bpbLabel;
  }

  async scan(opts: ScanOptions = {}): Promise<VolumeScan> {
    const r = await new FatScanner(this.src, this.geometry, opts).run();
    this.scannedLabel = r.label;
    const { label: _label, ...scan } = r;
    return scan;
  }

  /**
   * The file's content: its chain, followed through the FAT on the volume,
   * cut to its size. A chain that ends or breaks before the size is reached
   * is an error naming the file.
   */
  async *readContent(f: GuestFile): AsyncIterable<Uint8Array> {
    const g = this.geometry;
    const cs = g.clusterSize;
    const need = Math.ceil(f.size / cs);
    if (need === 0) return;
    const last = g.clusterCount + 1;
    const mask = entryMask(g.kind);
    const fat = new FatCursor(this.src, g);
    const per = Math.max(1, Math.floor(CONTENT_WINDOW / cs));
    let left = f.size;
    let got = 0;
    let c = f.ref;
    const broken = (why: string, read: number) => new GuestError(`${f.path}: ${why} after ${read} of the ${need} clusters its size needs`);
    if (c < 2 || c > last) throw broken(`first cluster ${c} is outside 2 to ${last}`, 0);
    while (got < need) {
      // A run of consecutive clusters, at most `per` long.
      const first = c;
      let n = 1;
      let next = -1;
      for (;;) {
        if (got + n === need) break;
        const v = await fat.entry(c);
        if (classify(v, mask, g.clusterCount) !== NEXT) throw broken(`the chain ends at cluster ${c} (entry 0x${v.toString(16)})`, got + n);
        if (v !== c + 1 || n === per) {
          next = v;
          break;
        }
        c = v;
        n++;
      }
      const bytes = await readChecked(this.src, g.dataStart + (first - 2) * cs, n * cs, `${f.path}: clusters ${first}-${first + n - 1}`);
      const take = Math.min(left, bytes.length);
      yield take === bytes.length ? bytes : bytes.subarray(0, take);
      left -= take;
      got += n;
      c = next;
    }
  }
}

export const fatReader: VolumeReader = {
  name: 'fat',
  probe(head: Uint8Array): boolean {
    return looksLikeFat(head);
  },
  async open(src: ByteSource): Promise<Volume> {
    const head = await readChecked(src, 0, Math.min(src.size, 512), 'FAT boot sector');
    return new FatVolume(src, parseBootSector(head, src.size));
  },
};
