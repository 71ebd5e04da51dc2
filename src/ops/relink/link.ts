/**
 * What relink writes: the child's new header (parent name, locator entries;
 * the parent UUID only with --ignore-id-mismatch, the parent time stamp only
 * when --force accepted a later parent) and its locator data, and where that
 * data goes. Pure: metadata in, bytes and offsets out.
 *
 * Locators written: W2ku (the parent's absolute path) and W2ru (relative to
 * the child's folder), always; MacX (a file URL) when the child had one;
 * the deprecated ASCII Wi2k/Wi2r when the child had them and the path is
 * ASCII. A "Mac " alias (opaque) and anything that cannot be rewritten are
 * dropped, their data zeroed.
 *
 * In place: each new locator takes an existing locator's slot (the same
 * platform's when there is one), whose room is the space the producer
 * reserved, bounded by the next structure. When one does not fit, or there
 * is no slot, the file is rewritten instead.
 */
import {
  encodeHeader, encodeUtf16Le, roundUp, sealHeader, SECTOR, UNUSED_LOCATOR,
  type DynamicHeader, type LocatorEntry, type PlatformCode, type Uuid,
} from '../../format/index.js';
import {
  asciiLocatorData, macXLocatorData, parentUnicodeNameFor, relativeLocatorPath, HYPERV_LOCATOR_SPACE, type LocatorData,
} from '../../vhd/build.js';
import type { VhdMeta } from '../../vhd/image.js';
import type { Patch } from '../../io/journal.js';

export interface LinkChanges {
  /** Real path of the child (relative locators start from its folder). */
  childPath: string;
  /** Real path of the new parent. */
  parentPath: string;
  /** Set with --ignore-id-mismatch: the UUID the header will name. */
  parentUuid: Uuid | null;
  /** Set when --force accepted a later parent: its time stamp. */
  parentTimestamp: number | null;
}

export interface PlannedLocator {
  platform: PlatformCode;
  /** The path as written (decoded). */
  text: string;
  data: Uint8Array;
}

/** The locators to write, in the order of the header entries they take. */
export function desiredLocators(meta: VhdMeta, c: LinkChanges): { locators: PlannedLocator[]; dropped: string[] } {
  const rel = relativeLocatorPath(c.childPath, c.parentPath);
  const out: PlannedLocator[] = [
    { platform: 'W2ku', text: c.parentPath, data: encodeUtf16Le(c.parentPath) },
    { platform: 'W2ru', text: rel, data: encodeUtf16Le(rel) },
  ];
  const dropped: string[] = [];
  const had = new Set(meta.locators.map((l) => l.entry.platform));
  if (had.has('MacX')) {
    const d = macXLocatorData(c.parentPath);
    out.push({ platform: 'MacX', text: new TextDecoder().decode(d), data: d });
  }
  for (const [p, text] of [['Wi2k', c.parentPath], ['Wi2r', rel]] as const) {
    if (!had.has(p)) continue;
    const d = asciiLocatorData(text);
    if (d) out.push({ platform: p, text, data: d });
    else dropped.push(`${p} (the path is not ASCII)`);
  }
  if (had.has('Mac ')) dropped.push('Mac  (an opaque Mac OS alias, which vhdtool cannot write)');
  return { locators: out, dropped };
}

/** The new header, with `entries` as its locator entries. */
export function newLinkHeader(meta: VhdMeta, c: LinkChanges, entries: LocatorEntry[]): DynamicHeader {
  const h = meta.header!;
  return sealHeader({
    ...h,
    parentUniqueId: c.parentUuid ?? h.parentUniqueId,
    parentTimestamp: c.parentTimestamp ?? h.parentTimestamp,
    parentUnicodeName: parentUnicodeNameFor(c.childPath, c.parentPath),
    locators: entries,
  });
}

/** Space to reserve for each locator in a rewritten file: Hyper-V's, or the data rounded up to 4 KiB. */
export function rewriteLocators(locs: PlannedLocator[]): LocatorData[] {
  return locs.map((l) => {
    const min = l.platform === 'W2ku' || l.platform === 'W2ru' ? HYPERV_LOCATOR_SPACE[l.platform] : 4096;
    return { platform: l.platform, data: l.data, space: Math.max(min, roundUp(l.data.length, 4096)) };
  });
}

/** An existing locator's room in the file. */
export interface Slot {
  index: number;
  platform: string;
  offset: number;
  /** Bytes usable for data: the reserved space, bounded by the next structure. */
  capacity: number;
  /** Bytes the old data occupies, rounded up to a sector. */
  oldBytes: number;
  entry: LocatorEntry;
}

/** The slots of the child's locators. */
export function slotsOf(meta: VhdMeta): Slot[] {
  const slots: Slot[] = [];
  for (const l of meta.locators) {
    const e = l.entry;
    const oldBytes = roundUp(e.dataLength, SECTOR);
    let end = e.dataOffset + Math.max(oldBytes, l.spaceBytes ?? 0);
    // Never into another structure, nor past the data area.
    for (const r of meta.regions) if (r.start >= e.dataOffset + oldBytes && r.start < end && !r.name.startsWith(`locator ${l.index} `)) end = r.start;
    for (const o of meta.locators) if (o !== l && o.entry.dataOffset > e.dataOffset && o.entry.dataOffset < end) end = o.entry.dataOffset;
    end = Math.min(end, meta.footerOffset);
    slots.push({ index: l.index, platform: String(e.platform), offset: e.dataOffset, capacity: Math.max(0, end - e.dataOffset), oldBytes, entry: e });
  }
  return slots;
}

export interface InPlacePlan {
  entries: LocatorEntry[];
  /** Slot used by each planned locator, in the planned order. */
  placed: Array<{ locator: PlannedLocator; slot: Slot }>;
  /** Slots no new locator takes: cleared, their data zeroed. */
  freed: Slot[];
}

/**
 * Places the new locators into existing slots, or returns why it cannot:
 * each takes the slot of its own platform when it fits, else the smallest
 * free slot it fits.
 */
export function placeInPlace(meta: VhdMeta, locs: PlannedLocator[]): InPlacePlan | { reason: string } {
  const slots = slotsOf(meta);
  if (slots.length === 0) return { reason: 'the child has no locator slots to rewrite' };
  const free = new Set(slots);
  const placed: InPlacePlan['placed'] = [];
  for (const l of locs) {
    const own = slots.find((s) => free.has(s) && s.platform === l.platform && s.capacity >= l.data.length);
    const any = [...free].filter((s) => s.capacity >= l.data.length).sort((a, b) => a.capacity - b.capacity)[0];
    const slot = own ?? any;
    if (!slot) return { reason: `the new ${l.platform} locator (${l.data.length} bytes) fits no reserved locator space (largest free: ${Math.max(0, ...[...free].map((s) => s.capacity))} bytes)` };
    free.delete(slot);
    placed.push({ locator: l, slot });
  }
  const entries = meta.header!.locators.map((e) => ({ ...e }));
  for (const s of free) entries[s.index] = { ...UNUSED_LOCATOR };
  for (const { locator, slot } of placed) {
    // Keep the producer's data space (and its unit) when it still describes the room; else state the room in bytes.
    const keep = spaceFits(slot.entry.dataSpace, slot.capacity, locator.data.length);
    entries[slot.index] = {
      platform: locator.platform, dataSpace: keep ? slot.entry.dataSpace : Math.floor(slot.capacity / SECTOR) * SECTOR,
      dataLength: locator.data.length, reserved: 0, dataOffset: slot.offset,
    };
  }
  return { entries, placed, freed: [...free] };
}

function spaceFits(dataSpace: number, capacity: number, length: number): boolean {
  const bytes = dataSpace < SECTOR ? dataSpace * SECTOR : dataSpace % SECTOR === 0 ? dataSpace : -1;
  return bytes >= length && bytes <= capacity;
}

/**
 * The in-place writes: every slot's new data (zero-padded over what the old
 * data used), zeros over freed slots' old data, and the header last. The
 * journal makes the whole set atomic for vhdtool; the order serves other
 * tools that meet a disk a crash left half written before any vhdtool rolled
 * it back: until the header (checksummed) is written, they see the old
 * header, whose locators now hold new paths at most cut to the old lengths,
 * and the parent's UUID still guards what they open.
 * `read(offset, length)` returns the bytes there now.
 */
export async function inPlacePatches(meta: VhdMeta, header: DynamicHeader, plan: InPlacePlan, read: (offset: number, length: number) => Promise<Uint8Array>): Promise<Patch[]> {
  const patches: Patch[] = [];
  for (const { locator, slot } of plan.placed) {
    const len = Math.min(slot.capacity, Math.max(slot.oldBytes, roundUp(locator.data.length, SECTOR)));
    const neu = new Uint8Array(len);
    neu.set(locator.data);
    patches.push({ offset: slot.offset, old: await read(slot.offset, len), new: neu });
  }
  for (const s of plan.freed) {
    const len = Math.min(s.capacity, s.oldBytes);
    if (len > 0) patches.push({ offset: s.offset, old: await read(s.offset, len), new: new Uint8Array(len) });
  }
  const headerAt = meta.footer.dataOffset!;
  patches.push({ offset: headerAt, old: await read(headerAt, 1024), new: encodeHeader(header) });
  return patches.filter((p) => !Buffer.from(p.old).equals(Buffer.from(p.new)));
}
