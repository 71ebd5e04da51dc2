/**
 * Who owns which cluster: the cross-check ntfsclone makes before it trusts a
 * volume ("Cluster accounting failed"), for every file system.
 *
 * A reader adds the ranges each file (and each metadata structure) claims.
 * `check` then finds clusters claimed twice and clusters claimed by someone
 * but marked free in the allocation map. Either means the maps cannot be
 * trusted: compaction must not drop what the free map offers, and a relink
 * whose composed view shows them is probably to the wrong parent.
 */
import { unionOfSorted, type RangeSet } from './ranges.js';
import type { Anomaly } from './volume.js';

/** Anomalies of each kind listed by name; the rest are counted. */
const LIST = 8;

export class Ownership {
  private s = new Float64Array(1024);
  private e = new Float64Array(1024);
  private o = new Uint32Array(1024);
  private n = 0;
  private readonly names: Array<string | number> = [];

  /**
   * `describe`, if given, names the owners registered by key (ownerKey):
   * only the few an anomaly's message names are ever described.
   */
  constructor(private readonly describe?: (key: number) => string) {}

  /** Registers an owner by name (a path, "$MFT", "inode table of group 3"); returns its number. */
  owner(name: string): number {
    this.names.push(name);
    return this.names.length - 1;
  }

  /**
   * Registers an owner by a number the constructor's `describe` turns into
   * its name when a message needs it (a reader with hundreds of thousands of
   * files builds no path for them here); returns its number.
   */
  ownerKey(key: number): number {
    this.names.push(key);
    return this.names.length - 1;
  }

  private nameOf(owner: number): string {
    const n = this.names[owner];
    if (n === undefined) return '?';
    return typeof n === 'number' ? (this.describe ? this.describe(n) : `#${n}`) : n;
  }

  add(owner: number, ranges: RangeSet): void {
    for (let i = 0; i < ranges.count; i++) this.push(ranges.start(i), ranges.end(i), owner);
  }

  addRange(owner: number, start: number, end: number): void {
    if (end > start) this.push(start, end, owner);
  }

  private push(start: number, end: number, owner: number): void {
    if (this.n === this.s.length) {
      const grow = <T extends Float64Array | Uint32Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.s = grow(this.s);
      this.e = grow(this.e);
      this.o = grow(this.o);
    }
    this.s[this.n] = start;
    this.e[this.n] = end;
    this.o[this.n] = owner;
    this.n++;
  }

  /**
   * Everything owned, and the anomalies: clusters owned twice, and owned
   * clusters that `free` (the allocation map's free space) contains.
   */
  check(free: RangeSet): { owned: RangeSet; anomalies: Anomaly[] } {
    // Starts and ends sorted apart (native typed-array sorts): a sweep gives
    // the union and the places covered twice; owners are looked up only for
    // the few double-owned places the message names.
    const starts = this.s.slice(0, this.n).sort();
    const ends = this.e.slice(0, this.n).sort();
    const { set: ownedSet, deep: dbl } = unionOfSorted(starts, ends, 2);
    const anomalies: Anomaly[] = [];
    if (!dbl.isEmpty) {
      const pairs: string[] = [];
      for (let k = 0; k < dbl.count && pairs.length < LIST; k++) pairs.push(`${this.ownersAt(dbl.start(k))} at byte ${dbl.start(k)}`);
      anomalies.push({
        kind: 'double-owned',
        message: `${dbl.bytes} bytes are claimed by two owners (${pairs.join('; ')})`,
        ranges: dbl,
      });
    }
    const bad = ownedSet.intersect(free);
    if (!bad.isEmpty) {
      anomalies.push({
        kind: 'owned-but-free',
        message: `${bad.bytes} bytes in use by files are marked free in the allocation map (first at byte ${bad.first})`,
        ranges: bad,
      });
    }
    return { owned: ownedSet, anomalies };
  }

  /** The names of the (first two) owners claiming byte `pos`, earliest claim first. */
  private ownersAt(pos: number): string {
    const found: number[] = [];
    for (let i = 0; i < this.n && found.length < 2; i++) {
      if (this.s[i] <= pos && pos < this.e[i] && !found.includes(this.o[i])) found.push(this.o[i]);
    }
    if (found.length < 2) return `${this.nameOf(found[0])} (twice)`;
    return `${this.nameOf(found[0])} and ${this.nameOf(found[1])}`;
  }
}
