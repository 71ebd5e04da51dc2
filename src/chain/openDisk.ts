/**
 * Opening "any disk": a VHD with its chain, or a raw disk image as a chain of
 * one fixed layer. Only commands that accept raw input (rebase) use this;
 * every other command opens VHDs alone (openChain), so a file that is not a
 * VHD stays an error there.
 */
import { VhdToolError, fromSystemError } from '../errors.js';
import type { FileSystem } from '../io/fsys.js';
import { openRaw, probeFormat } from '../vhd/raw.js';
import type { Chain } from './chain.js';
import { openChain, type OpenChainOptions } from './openChain.js';

export async function openDiskOrRaw(fs: FileSystem, p: string, opts: OpenChainOptions = {}): Promise<Chain> {
  let st;
  try {
    st = await fs.stat(p);
  } catch (e) {
    throw fromSystemError(e, p, false);
  }
  if (st.isDirectory) throw new VhdToolError('NOT_A_FILE', 'is a directory, not a disk image', p);
  if (!st.isFile) throw new VhdToolError('NOT_A_FILE', 'is not a regular file', p);
  let file;
  try {
    file = await fs.openRead(p);
  } catch (e) {
    throw fromSystemError(e, p, false);
  }
  let format;
  try {
    format = await probeFormat(file);
  } catch (e) {
    throw fromSystemError(e, p, false);
  } finally {
    await file.close().catch(() => undefined);
  }
  if (format.kind === 'vhd') return openChain(fs, p, opts);
  if (format.kind === 'foreign') {
    throw new VhdToolError('UNSUPPORTED', `is ${format.name}, not a VHD or a raw disk image; convert it to raw first (qemu-img convert -O raw)`, p);
  }
  if (opts.parent !== undefined) throw new VhdToolError('USAGE', 'is a raw disk image: it has no parent, so --parent does not apply', p);
  const vhd = await openRaw(fs, p);
  try {
    const realPath = await fs.realpath(p);
    const s = await fs.stat(p);
    const layer = { path: p, realPath, dev: s.dev, ino: s.ino, mtimeMs: s.mtimeMs, vhd, meta: vhd.meta, parentFoundBy: null };
    return { layersLeafFirst: [layer], close: () => vhd.close() };
  } catch (e) {
    await vhd.close();
    throw fromSystemError(e, p, false);
  }
}
