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

export function vhdTimeToIso(t: VhdTime): string {
  return vhdTimeToDate(t).toISOString().replace('.000Z', 'Z');
}
