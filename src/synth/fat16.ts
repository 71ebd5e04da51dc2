/**
 * A FAT16 volume built in memory, for the bundled guest sample
 * (scripts/sample-guest.ts): formatted, then filled the way a guest's driver
 * fills it (folders, files written, rewritten in place, deleted), every
 * sector it writes recorded, so that a VHD layer can hold exactly what one
 * session of the guest wrote. Deterministic: no clock, no randomness; every
 * time stamp is given.
 *
 * Layout (Microsoft's FAT specification, fatgen103), in 512-byte sectors:
 *
 *   reserved (boot sector first) | FAT 1 | FAT 2 | root directory (fixed size) | clusters 2 .. N+1
 *
 * The reserved area is grown so that the clusters start on a cluster
 * boundary, as mkfs.fat and Windows lay them out. Clusters are allocated
 * next-fit from a hint that a mount resets (as drivers keep it in memory), so
 * a freed cluster is not reused within the session that freed it. A delete
 * marks the entry's slots 0xE5 and frees its chain, and leaves the data where
 * it was, as every FAT driver does.
 *
 * This is a writer for the sample, not a FAT driver: FAT16 and 512-byte
 * sectors only; paths are `/`-separated, looked up without regard to case.
 */
import {
  ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_VOLUME, SLOT, checkLongName, longNameSlots, shortEntry, shortNameFor,
} from './fatNames.js';

const SECTOR = 512;
/** FAT16 end-of-chain mark, as Windows writes it. */
const END_OF_CHAIN = 0xffff;
/** FAT[1]'s clean-shutdown bit: cleared while mounted, set again by a clean unmount. */
const CLEAN_SHUTDOWN = 0x8000;
const MEDIA_FIXED = 0xf8;
/** fatgen103: a FAT16 volume has 4085 to 65524 clusters. */
const MIN_CLUSTERS = 4085;
const MAX_CLUSTERS = 65524;

export interface Fat16Options {
  /** Size of the volume (the partition) in bytes, a multiple of 512. */
  bytes: number;
  sectorsPerCluster: number;
  /** Sectors before the volume on its disk (the partition's first sector). */
  hiddenSectors: number;
  volumeId: number;
  /** Up to 11 characters, upper case. */
  label: string;
  /** Default 512. */
  rootEntries?: number;
  /** Default "MSWIN4.1" (fatgen103's advice for compatibility). */
  oemName?: string;
}

/** Where everything lies, in sectors of the volume. */
export interface Fat16Layout {
  totalSectors: number;
  reservedSectors: number;
  fatSectors: number;
  rootEntries: number;
  rootStart: number;
  dataStart: number;
  sectorsPerCluster: number;
  clusters: number;
}

/**
 * fatgen103's FAT size for FAT16, with the reserved area grown until the
 * clusters start on a cluster boundary.
 */
export function fat16Layout(bytes: number, sectorsPerCluster: number, rootEntries = 512): Fat16Layout {
  if (bytes % SECTOR !== 0) throw new RangeError('the volume size must be a multiple of 512');
  const totalSectors = bytes / SECTOR;
  const rootSectors = Math.ceil((rootEntries * SLOT) / SECTOR);
  for (let reserved = 1; reserved <= sectorsPerCluster; reserved++) {
    const fatSectors = Math.ceil((totalSectors - reserved - rootSectors) / (256 * sectorsPerCluster + 2));
    const dataStart = reserved + 2 * fatSectors + rootSectors;
    if (dataStart % sectorsPerCluster !== 0) continue;
    const clusters = Math.floor((totalSectors - dataStart) / sectorsPerCluster);
    if (clusters < MIN_CLUSTERS || clusters > MAX_CLUSTERS) throw new RangeError(`${clusters} clusters: not a FAT16 volume`);
    if ((clusters + 2) * 2 > fatSectors * SECTOR) throw new RangeError('the FAT is too small for the clusters');
    return { totalSectors, reservedSectors: reserved, fatSectors, rootEntries, rootStart: reserved + 2 * fatSectors, dataStart, sectorsPerCluster, clusters };
  }
  throw new RangeError('no reserved area aligns the clusters');
}

/** The FAT16 boot sector (BPB and extended BPB) for a layout. */
export function fat16BootSector(l: Fat16Layout, o: Fat16Options): Uint8Array {
  const b = new Uint8Array(SECTOR);
  const v = new DataView(b.buffer);
  const ascii = (at: number, s: string, len: number) => {
    for (let i = 0; i < len; i++) b[at + i] = i < s.length ? s.charCodeAt(i) : 0x20;
  };
  b.set([0xeb, 0x3c, 0x90]);
  ascii(3, o.oemName ?? 'MSWIN4.1', 8);
  v.setUint16(11, SECTOR, true);
  b[13] = l.sectorsPerCluster;
  v.setUint16(14, l.reservedSectors, true);
  b[16] = 2;
  v.setUint16(17, l.rootEntries, true);
  v.setUint16(19, l.totalSectors < 0x10000 ? l.totalSectors : 0, true);
  b[21] = MEDIA_FIXED;
  v.setUint16(22, l.fatSectors, true);
  v.setUint16(24, 63, true);
  v.setUint16(26, 255, true);
  v.setUint32(28, o.hiddenSectors, true);
  v.setUint32(32, l.totalSectors < 0x10000 ? 0 : l.totalSectors, true);
  b[36] = 0x80;
  b[38] = 0x29;
  v.setUint32(39, o.volumeId >>> 0, true);
  ascii(43, o.label, 11);
  ascii(54, 'FAT16', 8);
  // Boot code: int 18h (no bootable disk here: try the next device), then halt in a loop.
  b.set([0xcd, 0x18, 0xeb, 0xfe], 62);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

interface Node {
  name: string;
  /** The 11-character 8.3 name. */
  raw: string;
  directory: boolean;
  /** The cluster chain (a directory's content, or a file's data). */
  chain: number[];
  size: number;
  created: Date;
  /** Byte offsets in the volume of its slots in its parent (long-name slots, then the short entry). */
  slots: number[];
  parent: Node | null;
  children: Map<string, Node>;
}

/** A run of sectors written, in sectors of the volume. */
export interface WrittenRun {
  sector: number;
  count: number;
}

export class Fat16Volume {
  readonly bytes: Uint8Array;
  readonly layout: Fat16Layout;
  private readonly written: Uint8Array;
  private readonly root: Node;
  private nextFree = 2;

  private constructor(o: Fat16Options, when: Date) {
    this.layout = fat16Layout(o.bytes, o.sectorsPerCluster, o.rootEntries);
    this.bytes = new Uint8Array(o.bytes);
    this.written = new Uint8Array(this.layout.totalSectors);
    this.root = { name: '', raw: '', directory: true, chain: [], size: 0, created: when, slots: [], parent: null, children: new Map() };
  }

  /**
   * A freshly formatted volume, as a quick format writes it: the boot
   * sector, both FATs and the root directory (all recorded as written), the
   * label in the root directory too, no cluster touched.
   */
  static format(o: Fat16Options, when: Date): Fat16Volume {
    const vol = new Fat16Volume(o, when);
    const l = vol.layout;
    vol.bytes.set(fat16BootSector(l, o), 0);
    vol.touch(0, l.dataStart * SECTOR);
    vol.setFat(0, 0xff00 | MEDIA_FIXED);
    vol.setFat(1, END_OF_CHAIN);
    if (o.label) {
      const slot = vol.freeSlots(vol.root, 1)[0];
      vol.put(slot, shortEntry({ raw: o.label.padEnd(11, ' '), attributes: ATTR_VOLUME, firstCluster: 0, size: 0, created: when, written: when }));
    }
    return vol;
  }

  get clusterSize(): number {
    return this.layout.sectorsPerCluster * SECTOR;
  }

  /** A mount: the driver clears the clean-shutdown bit and starts allocating from cluster 2 again. */
  mount(): void {
    this.nextFree = 2;
    this.setFat(1, this.fat(1) & ~CLEAN_SHUTDOWN);
  }

  /** A clean unmount: the clean-shutdown bit set again. */
  unmount(): void {
    this.setFat(1, this.fat(1) | CLEAN_SHUTDOWN);
  }

  mkdir(path: string, when: Date): void {
    const { parent, name } = this.parentOf(path);
    const chain = this.allocate(1);
    this.link(parent, name, true, chain, 0, when);
    const at = this.clusterOffset(chain[0]);
    this.bytes.fill(0, at, at + this.clusterSize);
    this.touch(at, this.clusterSize);
    const dot = (raw: string, cluster: number) => shortEntry({ raw, attributes: ATTR_DIRECTORY, firstCluster: cluster, size: 0, created: when, written: when });
    this.put(at, dot('.'.padEnd(11, ' '), chain[0]));
    this.put(at + SLOT, dot('..'.padEnd(11, ' '), parent === this.root ? 0 : parent.chain[0]));
  }

  /** Creates a file holding `data`. */
  writeFile(path: string, data: Uint8Array, when: Date): void {
    const { parent, name } = this.parentOf(path);
    const chain = this.allocate(Math.ceil(data.length / this.clusterSize));
    this.writeData(chain, data);
    this.link(parent, name, false, chain, data.length, when);
  }

  /**
   * Rewrites a file in place with `data`, as a program that opens it for
   * writing does: its clusters are kept (and all written again), a longer
   * file gets more clusters, a shorter one gives its tail back.
   */
  rewriteFile(path: string, data: Uint8Array, when: Date): void {
    const node = this.find(path, false);
    const need = Math.ceil(data.length / this.clusterSize);
    const chain = node.chain.slice(0, need);
    for (const c of node.chain.slice(need)) this.setFat(c, 0);
    if (chain.length < need) {
      const more = this.allocate(need - chain.length);
      if (chain.length) this.setFat(chain[chain.length - 1], more[0]);
      chain.push(...more);
    } else if (chain.length) {
      this.setFat(chain[chain.length - 1], END_OF_CHAIN);
    }
    this.writeData(chain, data);
    node.chain = chain;
    node.size = data.length;
    this.writeEntry(node, when);
  }

  /** Deletes a file: its slots marked 0xE5, its clusters freed, its data left in place. */
  deleteFile(path: string): void {
    const node = this.find(path, false);
    for (const at of node.slots) {
      this.bytes[at] = 0xe5;
      this.touch(at, 1);
    }
    for (const c of node.chain) this.setFat(c, 0);
    node.parent!.children.delete(node.name.toLowerCase());
  }

  /** The runs of sectors written since the last call (or since the format), and forgets them. */
  takeWritten(): WrittenRun[] {
    const runs: WrittenRun[] = [];
    const w = this.written;
    for (let s = 0; s < w.length;) {
      if (!w[s]) { s++; continue; }
      let e = s + 1;
      while (e < w.length && w[e]) e++;
      runs.push({ sector: s, count: e - s });
      s = e;
    }
    w.fill(0);
    return runs;
  }

  // ---- the tree ---------------------------------------------------------------------------------

  private parentOf(path: string): { parent: Node; name: string } {
    const parts = path.split('/');
    const name = parts.pop()!;
    checkLongName(name);
    const parent = parts.length ? this.find(parts.join('/'), true) : this.root;
    if (parent.children.has(name.toLowerCase())) throw new RangeError(`${path} exists`);
    return { parent, name };
  }

  private find(path: string, directory: boolean): Node {
    let node = this.root;
    for (const part of path.split('/')) {
      const next = node.children.get(part.toLowerCase());
      if (!next) throw new RangeError(`${path}: no such file or folder`);
      node = next;
    }
    if (node.directory !== directory) throw new RangeError(`${path} is ${node.directory ? 'a folder' : 'a file'}`);
    return node;
  }

  /** Adds an entry to `parent`: its long-name slots (when it needs them) and its short entry. */
  private link(parent: Node, name: string, directory: boolean, chain: number[], size: number, when: Date): Node {
    const taken = new Set([...parent.children.values()].map((c) => c.raw));
    const short = shortNameFor(name, taken);
    const slotBytes = short.needsLongName ? longNameSlots(name, short.raw) : [];
    const slots = this.freeSlots(parent, slotBytes.length + 1);
    slotBytes.forEach((s, i) => this.put(slots[i], s));
    const node: Node = { name, raw: short.raw, directory, chain, size, created: when, slots, parent, children: new Map() };
    parent.children.set(name.toLowerCase(), node);
    this.writeEntry(node, when);
    return node;
  }

  private writeEntry(node: Node, written: Date): void {
    const attributes = node.directory ? ATTR_DIRECTORY : ATTR_ARCHIVE;
    const entry = shortEntry({ raw: node.raw, attributes, firstCluster: node.chain[0] ?? 0, size: node.directory ? 0 : node.size, created: node.created, written });
    this.put(node.slots[node.slots.length - 1], entry);
  }

  // ---- directory slots --------------------------------------------------------------------------

  /** Byte offsets of the first run of `n` consecutive unused slots in `dir`; a subfolder grows by a cluster when it has none. */
  private freeSlots(dir: Node, n: number): number[] {
    for (;;) {
      const all = this.slotOffsets(dir);
      let start = 0;
      for (let i = 0; i < all.length; i++) {
        const unused = this.bytes[all[i]] === 0x00 || this.bytes[all[i]] === 0xe5;
        if (!unused) start = i + 1;
        else if (i + 1 - start === n) return all.slice(start, i + 1);
      }
      if (dir === this.root) throw new RangeError('the root directory is full');
      this.growDirectory(dir);
    }
  }

  private slotOffsets(dir: Node): number[] {
    const out: number[] = [];
    if (dir === this.root) {
      for (let i = 0; i < this.layout.rootEntries; i++) out.push(this.layout.rootStart * SECTOR + i * SLOT);
    } else {
      for (const c of dir.chain) for (let i = 0; i < this.clusterSize; i += SLOT) out.push(this.clusterOffset(c) + i);
    }
    return out;
  }

  private growDirectory(dir: Node): void {
    const [c] = this.allocate(1);
    this.setFat(dir.chain[dir.chain.length - 1], c);
    dir.chain.push(c);
    const at = this.clusterOffset(c);
    this.bytes.fill(0, at, at + this.clusterSize);
    this.touch(at, this.clusterSize);
  }

  private put(at: number, slot: Uint8Array): void {
    this.bytes.set(slot, at);
    this.touch(at, SLOT);
  }

  // ---- clusters and the FAT ---------------------------------------------------------------------

  private clusterOffset(c: number): number {
    return (this.layout.dataStart + (c - 2) * this.layout.sectorsPerCluster) * SECTOR;
  }

  /** Whole clusters written: the data, then zeros to the end of the last cluster. */
  private writeData(chain: number[], data: Uint8Array): void {
    const cs = this.clusterSize;
    chain.forEach((c, i) => {
      const at = this.clusterOffset(c);
      this.bytes.fill(0, at, at + cs);
      this.bytes.set(data.subarray(i * cs, (i + 1) * cs), at);
      this.touch(at, cs);
    });
  }

  /** `n` free clusters, next-fit from the hint, linked into a chain ending in END_OF_CHAIN. */
  private allocate(n: number): number[] {
    const last = this.layout.clusters + 1;
    const out: number[] = [];
    for (let tried = 0, c = this.nextFree; out.length < n; tried++, c = c >= last ? 2 : c + 1) {
      if (tried > this.layout.clusters) throw new RangeError('the volume is full');
      if (this.fat(c) === 0) out.push(c);
    }
    out.forEach((c, i) => this.setFat(c, i + 1 < out.length ? out[i + 1] : END_OF_CHAIN));
    if (out.length) this.nextFree = out[out.length - 1] >= last ? 2 : out[out.length - 1] + 1;
    return out;
  }

  private fat(c: number): number {
    const at = this.layout.reservedSectors * SECTOR + c * 2;
    return this.bytes[at] | (this.bytes[at + 1] << 8);
  }

  /** Sets an entry in both FAT copies. */
  private setFat(c: number, value: number): void {
    for (let copy = 0; copy < 2; copy++) {
      const at = (this.layout.reservedSectors + copy * this.layout.fatSectors) * SECTOR + c * 2;
      this.bytes[at] = value & 0xff;
      this.bytes[at + 1] = value >> 8;
      this.touch(at, 2);
    }
  }

  private touch(at: number, length: number): void {
    this.written.fill(1, Math.floor(at / SECTOR), Math.ceil((at + length) / SECTOR));
  }
}
