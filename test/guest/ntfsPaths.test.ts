/** Paths from parent references on synthetic tables: loops, reuse, depth past Windows' limit. */
import { describe, expect, it } from 'vitest';
import { MAX_PATH, Paths, type PathTables } from '../../src/guest/ntfs/paths.js';
import { NO_PARENT_SLOT } from '../../src/guest/ntfs/tables.js';

/** Tables for records 0..n-1: `dirs` are directories; parent[r] and names given; every record in use, sequence 1. */
function tables(n: number, parent: (r: number) => number, name: (r: number) => string, dir: (r: number) => boolean): PathTables {
  const t: PathTables = {
    count: n,
    inUse: () => true,
    isDirectory: (r) => r === 5 || dir(r),
    sequence: new Uint16Array(n).fill(1),
    parent: new Uint32Array(n).fill(NO_PARENT_SLOT),
    parentSeq: new Uint16Array(n).fill(1),
    names: [],
  };
  for (let r = 6; r < n; r++) {
    t.parent[r] = parent(r);
    t.names[r] = name(r);
  }
  return t;
}

describe('NTFS paths', () => {
  it('a chain of directories deeper than 32,767 characters continues under $OrphanFiles, each path within the limit', () => {
    const n = 6 + 400;
    const p = new Paths(tables(n, (r) => (r === 6 ? 5 : r - 1), (r) => `${r}`.padEnd(250, 'x'), (r) => r < n - 1));
    const deepest = p.pathOf(n - 1).path;
    expect(deepest.startsWith('$OrphanFiles/')).toBe(true);
    for (let r = 6; r < n; r++) expect(p.pathOf(r).path.length).toBeLessThanOrEqual(MAX_PATH);
    expect(p.orphans.some((o) => /longer than 32767/.test(o.why))).toBe(true);
    expect(p.pathOf(7).path).toBe(`${'6'.padEnd(250, 'x')}/${'7'.padEnd(250, 'x')}`);
  });

  it('a loop of two directories, and a file below it, resolve once under $OrphanFiles', () => {
    // 6 -> 7 -> 6 (loop), 8 in 7, 9 in root.
    const p = new Paths(tables(10, (r) => ({ 6: 7, 7: 6, 8: 7, 9: 5 } as Record<number, number>)[r], (r) => `n${r}`, (r) => r === 6 || r === 7));
    expect(p.pathOf(8).path).toMatch(/^\$OrphanFiles\/(n6\/n7|n7)\/n8$/);
    expect(p.pathOf(9).path).toBe('n9');
    expect(p.orphans.filter((o) => /loop/.test(o.why))).toHaveLength(1);
  });

  it('a reused parent (sequence mismatch) or a parent out of range makes an orphan; $Extend children are system', () => {
    const t = tables(14, (r) => ({ 6: 5, 7: 6, 8: 99, 12: 11, 13: 12 } as Record<number, number>)[r] ?? 5, (r) => `n${r}`, (r) => r === 6 || r === 11 || r === 12);
    t.parentSeq[7] = 9;
    t.names[11] = '$Extend';
    t.parent[11] = 5;
    const p = new Paths(t);
    expect(p.pathOf(7).path).toBe('$OrphanFiles/n7');
    expect(p.pathOf(8).path).toBe('$OrphanFiles/n8');
    expect(p.orphans.map((o) => o.why)).toEqual(['its parent record 6 has been reused', 'its parent record 99 is not in use']);
    expect(p.pathOf(13)).toEqual({ path: '$Extend/n12/n13', underExtend: true });
    expect(p.pathOf(6).underExtend).toBe(false);
  });
});
