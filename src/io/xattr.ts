/**
 * Extended attributes (SELinux labels, user.* attributes, ACLs stored as
 * system.* attributes) through the attr tools, getfattr and setfattr.
 *
 * Node has no xattr API. The attr tools call the same system calls
 * (llistxattr, lgetxattr, lsetxattr), print every attribute of every
 * namespace the caller can see (`-m -`), with values in hex, so a dump
 * round-trips byte for byte and can be compared. Names are kept exactly as
 * getfattr prints them (octal-escaped, as setfattr reads them back).
 *
 * Where the attr tools are missing, python3's os.listxattr/getxattr/setxattr
 * (Linux) do the same calls; names are kept in getfattr's escaped form either
 * way, so a dump read one way compares with one read the other. With
 * neither, a file is not replaced at all (see io/atomic.ts).
 *
 * Evaluated and not chosen: fs-xattr (a node-gyp addon: a compiler on every
 * host, and an install script npm does not run by default), @napi-rs/xattr
 * (a prebuilt native binary for a handful of platforms, loaded into a tool
 * that runs as root), and `cp --attributes-only --preserve=xattr` (it keeps a
 * temporary's data, but it skips what /etc/xattr.conf says to skip, such as
 * security.evm and system.nfs4_acl, without a word: it cannot tell us what
 * it did not copy).
 */
import { execFile } from 'node:child_process';

/** One extended attribute: its name as getfattr escapes it, its value in hex (no 0x). */
export interface Xattr {
  name: string;
  hex: string;
}

/** Why extended attributes could not be read or written. */
export class XattrError extends Error {
  constructor(message: string, readonly missingTool = false) {
    super(message);
    this.name = 'XattrError';
  }
}

const TIMEOUT_MS = 30_000;

function run(tool: string, args: string[], input?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(tool, args, { encoding: 'latin1', timeout: TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          reject(new XattrError(`${tool} not found (install the attr package: apt install attr, dnf install attr)`, true));
          return;
        }
        const why = Buffer.from(String(stderr), 'latin1').toString('utf8').trim().split('\n')[0] || err.message.split('\n')[0];
        reject(new XattrError(`${tool} failed: ${why}`));
        return;
      }
      resolve(stdout);
    });
    if (input) child.stdin?.end(input);
  });
}

/** Parses `getfattr -d -e hex` output for one file. */
export function parseDump(text: string): Xattr[] {
  const out: Xattr[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) {
      out.push({ name: line, hex: '' });
      continue;
    }
    const value = line.slice(eq + 1);
    if (!/^0x[0-9a-fA-F]*$/.test(value)) throw new XattrError(`unexpected getfattr output: ${JSON.stringify(line.slice(0, 80))}`);
    out.push({ name: line.slice(0, eq), hex: value.slice(2).toLowerCase() });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Every extended attribute of `p` (following a final symbolic link), sorted by name. */
export async function readXattrs(p: string): Promise<Xattr[]> {
  try {
    return parseDump(await run('getfattr', ['--absolute-names', '--dump', '--match=-', '--encoding=hex', '--', p]));
  } catch (e) {
    if (!(e instanceof XattrError && e.missingTool)) throw e;
    return readWithPython(p, e);
  }
}

const PY_READ = `import os, sys, json
p = sys.argv[1]
print(json.dumps(sorted([os.fsencode(n).hex(), os.getxattr(p, n).hex()] for n in os.listxattr(p))))`;

const PY_WRITE = `import os, sys, json
p = sys.argv[1]
for n, v in json.load(sys.stdin):
    os.setxattr(p, bytes.fromhex(n), bytes.fromhex(v), follow_symlinks=False)`;

/** Both tools missing: the message names what to install. */
function bothMissing(first: XattrError): XattrError {
  return new XattrError(`${first.message.replace(/ \(install.*$/, '')}, and python3 is not there either (install the attr package: apt install attr, dnf install attr)`, true);
}

async function readWithPython(p: string, first: XattrError): Promise<Xattr[]> {
  let out: string;
  try {
    out = await run('python3', ['-c', PY_READ, p]);
  } catch (e) {
    if (e instanceof XattrError && e.missingTool) throw bothMissing(first);
    throw e;
  }
  const pairs = JSON.parse(out) as Array<[string, string]>;
  return pairs.map(([n, v]) => ({ name: escapeName(Buffer.from(n, 'hex')), hex: v }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** An attribute name as getfattr prints it: bytes outside a safe set as \ooo. */
export function escapeName(name: Uint8Array): string {
  let s = '';
  for (const b of name) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9._+,:@%/-]/.test(c) ? c : `\\${b.toString(8).padStart(3, '0')}`;
  }
  return s;
}

/** The bytes of a name getfattr escaped. */
export function unescapeName(name: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const m = /^\\([0-7]{3})/.exec(name.slice(i));
    if (m) {
      out.push(parseInt(m[1], 8));
      i += 3;
    } else out.push(...Buffer.from(name[i], 'latin1'));
  }
  return Buffer.from(out);
}

/** A path as getfattr writes it in a dump (every byte but a few safe ones octal-escaped). */
export function escapePath(p: string): string {
  let s = '';
  for (const b of Buffer.from(p, 'utf8')) {
    const c = String.fromCharCode(b);
    s += /[A-Za-z0-9/._+,:@%-]/.test(c) ? c : `\\${b.toString(8).padStart(3, '0')}`;
  }
  return s;
}

/** Sets the attributes on `p` (a regular file this process made; a symbolic link is not followed). */
export async function writeXattrs(p: string, attrs: readonly Xattr[]): Promise<void> {
  if (attrs.length === 0) return;
  const lines = [`# file: ${escapePath(p)}`, ...attrs.map((a) => `${a.name}=0x${a.hex}`), '', ''];
  try {
    await run('setfattr', ['--no-dereference', '--restore=-'], Buffer.from(lines.join('\n'), 'latin1'));
  } catch (e) {
    if (!(e instanceof XattrError && e.missingTool)) throw e;
    const pairs = attrs.map((a) => [unescapeName(a.name).toString('hex'), a.hex]);
    try {
      await run('python3', ['-c', PY_WRITE, p], Buffer.from(JSON.stringify(pairs)));
    } catch (e2) {
      if (e2 instanceof XattrError && e2.missingTool) throw bothMissing(e);
      throw e2;
    }
  }
}
