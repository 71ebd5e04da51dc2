/**
 * A chain of VHD layers, leaf first: `layers[0]` is the disk the user named,
 * `layers[layers.length - 1]` is the base (fixed or dynamic).
 */
import type { Vhd, VhdMeta } from '../vhd/image.js';

export interface Layer {
  /** The path as found (the argument, or the resolved parent candidate). */
  path: string;
  /** Canonical path (symlinks resolved). */
  realPath: string;
  /** Device and inode, to recognise the same file under another name. */
  dev: number;
  ino: number;
  /** Modification time when opened, to notice a file changed under us. */
  mtimeMs: number;
  vhd: Vhd;
  meta: VhdMeta;
  /** How the parent of this layer was found (null for the base). */
  parentFoundBy: string | null;
}

export interface Chain {
  /** Leaf first, base last. */
  layersLeafFirst: Layer[];
  close(): Promise<void>;
}

export function leaf(c: Chain): Layer {
  return c.layersLeafFirst[0];
}

export function base(c: Chain): Layer {
  return c.layersLeafFirst[c.layersLeafFirst.length - 1];
}
