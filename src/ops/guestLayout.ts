/** A chain's guest view read as partitions and volumes, for the operations that look inside the guest (map, diff). */
import { ChainReader } from '../chain/reader.js';
import { chainSource } from '../chain/guestSource.js';
import type { Chain } from '../chain/chain.js';
import { readGuestLayout, type GuestLayout } from '../guest/layout.js';
import { VhdToolError } from '../errors.js';

/** The view's partition table and volumes; a table that cannot be trusted at all is BAD_FILESYSTEM naming the disk. */
export async function layoutOf(chain: Chain, path: string): Promise<GuestLayout> {
  try {
    return await readGuestLayout(chainSource(new ChainReader(chain)));
  } catch (e) {
    if (e instanceof VhdToolError) throw e.withPath(path);
    throw e;
  }
}
