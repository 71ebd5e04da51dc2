/**
 * The gates before a free map is trusted, as ntfs-3g applies them at mount:
 * - $Volume's $VOLUME_INFORMATION flag VOLUME_IS_DIRTY (0x0001);
 * - $LogFile: a log with active clients whose restart area lacks
 *   RESTART_VOLUME_IS_CLEAN (0x0002) was not shut down cleanly
 *   (ntfs_check_logfile / ntfs_is_logfile_clean); an empty log (all 0xFF,
 *   as mkntfs and ntfs-3g leave it) is clean;
 * - hiberfil.sys in the root: hibernated when its first 4 bytes are "hibr"
 *   or "HIBR" (hibernation and Fast Startup), or when it is shorter than the
 *   4096-byte header (ntfs_volume_check_hiberfile).
 * Pure functions over bytes; the volume reads them.
 */
import { u16, u32, u64 } from './bytes.js';
import { applyFixups } from './record.js';

const RSTR = 0x52545352; // "RSTR"
const CHKD = 0x444b4843; // "CHKD"
const NO_CLIENT = 0xffff;
const RESTART_VOLUME_IS_CLEAN = 0x0002;
export const VOLUME_IS_DIRTY = 0x0001;
export const HIBERFILE_HEADER = 4096;

export interface RestartArea {
  currentLsn: number;
  clientInUseList: number;
  flags: number;
  chkdsk: boolean;
}

/**
 * The restart area of the restart page at `off` in `b` (`pageSize` bytes
 * available), or null when the page is not a valid restart page.
 */
export function restartArea(b: Uint8Array, off: number, avail: number): RestartArea | null {
  if (avail < 512) return null;
  const magic = u32(b, off);
  if (magic !== RSTR && magic !== CHKD) return null;
  const sysPage = u32(b, off + 16);
  if (sysPage < 512 || sysPage > avail || (sysPage & (sysPage - 1)) !== 0) return null;
  const page = b.slice(off, off + sysPage);
  if (applyFixups(page, 0, sysPage) !== 'ok') return null;
  const ra = u16(page, 24);
  if (ra & 7 || ra + 16 > sysPage) return null;
  return {
    currentLsn: u64(page, ra),
    clientInUseList: u16(page, ra + 12),
    flags: u16(page, ra + 14),
    chkdsk: magic === CHKD,
  };
}

/** Why the $LogFile whose start is `b` is not clean, or null when it is. */
export function logfileProblem(b: Uint8Array): string | null {
  if (b.every((x) => x === 0xff)) return null;
  const first = restartArea(b, 0, b.length);
  const sysPage = first ? u32(b, 16) : 4096;
  const second = sysPage < b.length ? restartArea(b, sysPage, b.length - sysPage) : null;
  const ra = first && second ? (second.currentLsn > first.currentLsn ? second : first) : first ?? second;
  if (!ra) return '$LogFile has no valid restart page';
  if (ra.chkdsk) return null;
  if (ra.clientInUseList !== NO_CLIENT && !(ra.flags & RESTART_VOLUME_IS_CLEAN)) {
    return '$LogFile was not closed cleanly (Windows was not shut down properly)';
  }
  return null;
}

/** Why the hiberfil.sys whose first bytes are `head` (its size `size`) holds a hibernation image, or null. */
export function hiberfileProblem(head: Uint8Array, size: number): string | null {
  if (size < HIBERFILE_HEADER) return `hiberfil.sys is shorter (${size} bytes) than a hibernation header, which ntfs-3g treats as hibernated`;
  const sig = String.fromCharCode(head[0], head[1], head[2], head[3]);
  if (sig === 'hibr' || sig === 'HIBR') return `hiberfil.sys holds a hibernation image ("${sig}": Windows is hibernated or shut down with Fast Startup)`;
  return null;
}
