/** The ext2/ext3/ext4 reader as the guest layer sees it. */
import type { VolumeReader } from '../readers.js';
import { looksLikeExt } from './superblock.js';
import { ExtVolume } from './volume.js';

export const extReader: VolumeReader = {
  name: 'ext',
  probe: (head) => looksLikeExt(head),
  open: (src) => ExtVolume.open(src),
};

export { ExtVolume };
