import { VHD_EPOCH_MS } from './constants.js';

/** A VHD time stamp: unsigned seconds since 2000-01-01T00:00:00Z. */
export type VhdTime = number;

export function vhdTimeToDate(t: VhdTime): Date {
  return new Date(VHD_EPOCH_MS + t * 1000);
}

/** Converts a Date to a VHD time stamp, clamped to the u32 range. */
export function dateToVhdTime(d: Date): VhdTime {
  const s = Math.floor((d.getTime() - VHD_EPOCH_MS) / 1000);
  return Math.min(0xffffffff, Math.max(0, s));
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/**
 * "2024-05-01T12:00:00Z". Computed with integer arithmetic (the civil date
 * of a day number, after Howard Hinnant's days_from_civil inverse) rather
 * than Date#toISOString: a process's first Date formatting costs ~0.6 ms of
 * set-up, a noticeable part of `vhdtool info`'s start-up. Any u32 VHD time
 * (years 2000-2136) is in range.
 */
export function vhdTimeToIso(t: VhdTime): string {
  const secs = VHD_EPOCH_MS / 1000 + t;
  const days = Math.floor(secs / 86400);
  const sod = secs - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const time = `${pad2(Math.floor(sod / 3600))}:${pad2(Math.floor((sod % 3600) / 60))}:${pad2(sod % 60)}`;
  return `${year}-${pad2(month)}-${pad2(day)}T${time}Z`;
}
