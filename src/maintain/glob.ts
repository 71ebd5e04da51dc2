/**
 * `--exclude GLOB` for maintain. Pure.
 *
 *   *    any run of characters except "/"
 *   **   any run of characters, "/" included ("a/**" matches "a/" and all below)
 *   ?    one character except "/"
 *   [..] a character class ([!..] or [^..] negates)
 *
 * A pattern without "/" is matched against the name of every file and folder
 * ("*.avhd", "snapshots"); a pattern with "/" against the path relative to the
 * root ("clients/old/**"), or, when it starts with "/", against the absolute
 * path. A folder that matches is not entered.
 */
import * as path from 'node:path';

export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        // "**/" also matches no folder at all.
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      let neg = false;
      if (body[0] === '!' || body[0] === '^') {
        neg = true;
        body = body.slice(1);
      }
      body = body.replace(/[\\\]]/g, (m) => '\\' + m);
      re += `[${neg ? '^' : ''}${body}]`;
      i = end;
    } else {
      re += c.replace(/[.+^${}()|\\]/g, (m) => '\\' + m);
    }
  }
  return new RegExp(`^${re}$`);
}

export interface Excluder {
  /**
   * `rel`: POSIX path relative to the root ("" for the root itself);
   * `abs`: absolute path; `isDir`: a folder (then "x/**" patterns match it too).
   */
  (rel: string, abs: string, isDir: boolean): boolean;
}

export function makeExcluder(globs: readonly string[]): Excluder {
  const rules = globs.filter((g) => g.length > 0).map((g) => {
    const trimmed = g.length > 1 ? g.replace(/\/+$/, '') : g;
    return { re: globToRegExp(trimmed), byName: !trimmed.includes('/'), absolute: trimmed.startsWith('/') };
  });
  if (rules.length === 0) return () => false;
  return (rel, abs, isDir) => {
    const name = path.posix.basename(rel || abs.split(path.sep).join('/'));
    const absPosix = abs.split(path.sep).join('/');
    for (const r of rules) {
      if (r.byName) {
        if (r.re.test(name)) return true;
        continue;
      }
      const subject = r.absolute ? absPosix : rel;
      if (r.re.test(subject)) return true;
      if (isDir && r.re.test(subject + '/')) return true;
    }
    return false;
  };
}
