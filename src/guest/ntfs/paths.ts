/**
 * Full paths from $FILE_NAME parent references, built after the MFT pass
 * from compact per-record tables. Only directories' paths are kept; a
 * file's path is its parent's plus its name. A record whose parent chain
 * does not reach the root (a deleted or reused parent, a parent that is not
 * a directory, a loop) is an orphan: it is placed under `$OrphanFiles/`, as
 * Sleuth Kit does, so its clusters still have an owner.
 */
import { NO_PARENT_SLOT } from './tables.js';

export const ROOT = 5;
export const EXTEND = 11;
export const ORPHANS = '$OrphanFiles';
/** Longest path kept (Windows' own limit, in UTF-16 units); a deeper record is placed under $OrphanFiles. */
export const MAX_PATH = 32767;
/** Records 0..15 are the file system's own ($MFT ... $Extend and reserved). */
export const SYSTEM_RECORDS = 16;

export interface PathTables {
  /** Records known (length of the tables). */
  count: number;
  inUse(r: number): boolean;
  isDirectory(r: number): boolean;
  sequence: Uint16Array;
  parent: Uint32Array;
  parentSeq: Uint16Array;
  names: Array<string | undefined>;
}

// 0: not visited yet (the table starts zeroed).
const BUSY = 1;
const DONE = 2;

export class Paths {
  private readonly state: Uint8Array;
  private readonly dirs = new Map<number, string>();
  /** Records whose own parent reference failed (the tops of orphaned subtrees), with why. */
  readonly orphans: Array<{ record: number; why: string }> = [];
  /** Directories under $Extend (system files). */
  private readonly sysDir: Uint8Array;

  constructor(private readonly t: PathTables) {
    this.state = new Uint8Array(t.count);
    this.sysDir = new Uint8Array(t.count);
    if (t.count > ROOT) {
      this.state[ROOT] = DONE;
      this.dirs.set(ROOT, '');
    }
  }

  /** Why record r's parent reference cannot be followed, or null. */
  private parentProblem(r: number): string | null {
    const p = this.t.parent[r];
    if (p === NO_PARENT_SLOT) return 'it has no usable parent reference';
    if (p >= this.t.count || !this.t.inUse(p)) return `its parent record ${p} is not in use`;
    if (this.t.parentSeq[r] !== 0 && this.t.parentSeq[r] !== this.t.sequence[p]) return `its parent record ${p} has been reused`;
    if (!this.t.isDirectory(p)) return `its parent record ${p} is not a directory`;
    return null;
  }

  private name(r: number): string {
    return this.t.names[r] ?? `$record-${r}`;
  }

  /** The path of directory `d` (every directory resolves; orphans under $OrphanFiles). */
  private dirPath(d: number): string {
    const known = this.dirs.get(d);
    if (known !== undefined) return known;
    // Climb until a resolved directory, a bad reference or a loop; then resolve downwards.
    const chain: number[] = [];
    let r = d;
    let base: string;
    for (;;) {
      const k = this.dirs.get(r);
      if (k !== undefined) { base = k; break; }
      if (this.state[r] === BUSY) {
        this.orphans.push({ record: r, why: 'its parent references form a loop' });
        chain.push(r);
        base = ORPHANS;
        this.dirs.set(r, `${ORPHANS}/${this.name(r)}`);
        break;
      }
      this.state[r] = BUSY;
      chain.push(r);
      const why = this.parentProblem(r);
      if (why) {
        this.orphans.push({ record: r, why });
        base = ORPHANS;
        break;
      }
      r = this.t.parent[r];
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const c = chain[i];
      this.state[c] = DONE;
      if (this.dirs.has(c)) { base = this.dirs.get(c) as string; continue; }
      const parent = i + 1 < chain.length ? chain[i + 1] : this.t.parent[c];
      if (base !== ORPHANS && parent < this.t.count && (this.sysDir[parent] || parent === EXTEND)) this.sysDir[c] = 1;
      base = this.join(c, base);
      this.dirs.set(c, base);
    }
    return this.dirs.get(d) as string;
  }

  /** The path of directory d (resolved as locate resolves it), for comparing two views' paths. */
  directoryPath(d: number): string {
    return this.dirPath(d);
  }

  /** Whether directory d, once resolved, lies under $Extend (its files are system files). */
  inExtend(d: number): boolean {
    return this.sysDir[d] === 1;
  }

  /** The path of record r (a file or a directory), and whether it lies under $Extend. */
  pathOf(r: number): { path: string; underExtend: boolean } {
    const underExtend = this.locate(r);
    return { path: this.pathAfterLocate(r), underExtend };
  }

  /**
   * Whether record r lies under $Extend, after every check pathOf makes
   * (an orphan is recorded here, as pathOf records it), without building
   * r's own path: a file's path is one string per file, and most callers
   * need few of them (pathAfterLocate).
   */
  locate(r: number): boolean {
    // Records 12..15 are reserved: in use, yet without a name.
    if (r === ROOT || (r < SYSTEM_RECORDS && this.t.names[r] === undefined)) return false;
    if (this.t.isDirectory(r)) {
      this.dirPath(r);
      return this.sysDir[r] === 1 || r === EXTEND;
    }
    const why = this.parentProblem(r);
    if (why) {
      this.orphans.push({ record: r, why });
      return false;
    }
    const p = this.t.parent[r];
    if (!this.fits(this.dirPath(p), this.name(r))) this.orphans.push({ record: r, why: `its path would be longer than ${MAX_PATH} characters` });
    return p === EXTEND || this.sysDir[p] === 1;
  }

  /** What locate(r) returned, once it has run (it records nothing). */
  locatedInExtend(r: number): boolean {
    if (r === ROOT || (r < SYSTEM_RECORDS && this.t.names[r] === undefined)) return false;
    if (this.t.isDirectory(r)) return this.sysDir[r] === 1 || r === EXTEND;
    if (this.parentProblem(r)) return false;
    const p = this.t.parent[r];
    return p === EXTEND || this.sysDir[p] === 1;
  }

  /** The path of record r, once locate(r) has run (it records nothing). */
  pathAfterLocate(r: number): string {
    if (r === ROOT) return '';
    if (r < SYSTEM_RECORDS && this.t.names[r] === undefined) return `$Reserved${r}`;
    if (this.t.isDirectory(r)) return this.dirPath(r);
    const name = this.name(r);
    if (this.parentProblem(r)) return `${ORPHANS}/${name}`;
    const dir = this.dirPath(this.t.parent[r]);
    if (dir === '') return name;
    return this.fits(dir, name) ? `${dir}/${name}` : `${ORPHANS}/${name}`;
  }

  private fits(dir: string, name: string): boolean {
    return dir === '' || dir.length + 1 + name.length <= MAX_PATH;
  }

  /** `dir/name` for record r, or r under $OrphanFiles when that would pass MAX_PATH. */
  private join(r: number, dir: string): string {
    const name = this.name(r);
    if (dir === '') return name;
    if (this.fits(dir, name)) return `${dir}/${name}`;
    this.orphans.push({ record: r, why: `its path would be longer than ${MAX_PATH} characters` });
    return `${ORPHANS}/${name}`;
  }
}
