/**
 * Where to look for a differencing disk's parent. Pure: locator values and the
 * child's directory in, an ordered list of candidate paths out.
 *
 * Order:
 *  1. relative locators (W2ru, then Wi2r), resolved from the child's directory;
 *  2. absolute locators (W2ku, MacX, Wi2k): a POSIX absolute path as written,
 *     then (for any absolute path, Windows ones included) its file name beside
 *     the child;
 *  3. the header's Parent Unicode Name: a relative path (as vhdtool's create
 *     and relink write it, "../golden/base.vhd") from the child's directory,
 *     then its file name beside the child.
 *
 * Locator paths are untrusted: they are only ever opened for reading, and the
 * parent's UUID must match before anything is read from it.
 */
import * as path from 'node:path';
import type { LocatorInfo } from '../vhd/image.js';

const RELATIVE = ['W2ru', 'Wi2r'];
const ABSOLUTE = ['W2ku', 'MacX', 'Wi2k'];

export interface Candidate {
  path: string;
  /** Where the candidate came from, for messages: "W2ru locator", "parent name"... */
  source: string;
}

/** The last component of a Windows or POSIX path. */
export function baseName(p: string): string {
  const parts = p.split(/[\\/]/);
  return parts[parts.length - 1] ?? '';
}

function isWindowsAbsolute(p: string): boolean {
  return /^[a-zA-Z]:[\\/]/.test(p) || p.startsWith('\\\\');
}

/** Converts a Windows-style relative path (".\a\b.vhd", "..\x.vhd") to a POSIX one. */
export function windowsRelativeToPosix(p: string): string {
  return p.replace(/\\/g, '/');
}

export function parentCandidates(childPath: string, locators: LocatorInfo[], parentName: string): Candidate[] {
  const dir = path.dirname(path.resolve(childPath));
  const out: Candidate[] = [];
  const add = (p: string, source: string) => {
    if (!p) return;
    const abs = path.resolve(dir, p);
    if (!out.some((c) => c.path === abs)) out.push({ path: abs, source });
  };
  const valueOf = (l: LocatorInfo) => (l.value.ok && l.value.path !== null ? l.value.path : null);

  for (const kind of RELATIVE) {
    for (const l of locators) {
      const v = valueOf(l);
      if (l.entry.platform !== kind || v === null) continue;
      if (isWindowsAbsolute(v) || v.startsWith('/')) add(baseName(v), `${kind} locator (file name)`);
      else add(windowsRelativeToPosix(v), `${kind} locator`);
    }
  }
  for (const kind of ABSOLUTE) {
    for (const l of locators) {
      const v = valueOf(l);
      if (l.entry.platform !== kind || v === null) continue;
      if (v.startsWith('/')) add(v, `${kind} locator`);
      else if (!isWindowsAbsolute(v)) add(windowsRelativeToPosix(v), `${kind} locator`);
      add(baseName(v), `${kind} locator (file name)`);
    }
  }
  if (parentName && /[\\/]/.test(parentName) && !isWindowsAbsolute(parentName) && !parentName.startsWith('/')) {
    add(windowsRelativeToPosix(parentName), 'parent name (relative path)');
  }
  if (parentName) add(baseName(parentName), 'parent name');
  return out;
}
