/** The NTFS reader: recognised by its boot sector, opened as an NtfsVolume. */
import type { VolumeReader } from '../readers.js';
import { looksLikeNtfs } from './boot.js';
import { NtfsVolume } from './volume.js';

export const ntfsReader: VolumeReader = {
  name: 'ntfs',
  probe: (head) => looksLikeNtfs(head),
  open: (src) => NtfsVolume.open(src),
};

export { NtfsVolume };
