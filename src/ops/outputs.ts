/** Guards on output paths: never an input (by any name), never clobbered unless asked. */
import * as path from 'node:path';
import { VhdToolError } from '../errors.js';
import type { FileSystem } from '../io/fsys.js';
import type { Chain } from '../chain/chain.js';

/** Refuses `out` when it names any layer of the chains, through symlinks and hard links too. */
export async function refuseOutputIsInput(fs: FileSystem, out: string, chains: Chain[]): Promise<void> {
  const abs = path.resolve(out);
  let st = null;
  try {
    st = await fs.stat(abs);
  } catch {
    st = null;
  }
  let real = abs;
  try {
    real = path.join(await fs.realpath(path.dirname(abs)), path.basename(abs));
  } catch {
    /* directory missing: reported when writing */
  }
  for (const c of chains) {
    for (const l of c.layersLeafFirst) {
      if ((st && st.dev === l.dev && st.ino === l.ino) || real === l.realPath) {
        throw new VhdToolError('OUTPUT_IS_INPUT', `output is an input (${l.path}); refusing to write over it`, out);
      }
    }
  }
}

/** Refuses an existing `out` unless `force`; returns whether it exists. */
export async function refuseExisting(fs: FileSystem, out: string, force: boolean): Promise<boolean> {
  try {
    const st = await fs.lstat(out);
    if (st.isDirectory) throw new VhdToolError('OUTPUT_EXISTS', 'output is a directory', out);
    if (!force) throw new VhdToolError('OUTPUT_EXISTS', 'output already exists (use --force to replace it)', out);
    return true;
  } catch (e) {
    if (e instanceof VhdToolError) throw e;
    return false;
  }
}

/** The directory of `out` must exist. */
export async function requireOutputDir(fs: FileSystem, out: string): Promise<void> {
  const dir = path.dirname(path.resolve(out));
  try {
    const st = await fs.stat(dir);
    if (!st.isDirectory) throw new Error('not a directory');
  } catch {
    throw new VhdToolError('WRITE_FAILED', `output directory ${dir} does not exist`, out);
  }
}
