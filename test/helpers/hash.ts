/** Guest-content hashing through vhdtool's own chain reader. */
import { createHash } from 'node:crypto';
import { nodeFileSystem } from '../../src/io/fsys.js';
import { openChain, type OpenChainOptions } from '../../src/chain/openChain.js';
import { ChainReader } from '../../src/chain/reader.js';

export async function contentHash(disk: string, opts: OpenChainOptions = {}): Promise<string> {
  const chain = await openChain(nodeFileSystem, disk, opts);
  try {
    const h = createHash('sha256');
    await new ChainReader(chain).stream((b) => { h.update(b); });
    return h.digest('hex');
  } finally {
    await chain.close();
  }
}

export async function content(disk: string, opts: OpenChainOptions = {}): Promise<Uint8Array> {
  const chain = await openChain(nodeFileSystem, disk, opts);
  try {
    const r = new ChainReader(chain);
    return await r.read(0, r.size);
  } finally {
    await chain.close();
  }
}
