import { SECTOR } from './constants.js';

/** CHS disk geometry as stored in the footer. */
export interface Geometry {
  /** Cylinders, u16. */
  cylinders: number;
  /** Heads, u8. */
  heads: number;
  /** Sectors per track, u8. */
  sectorsPerTrack: number;
}

/** The largest geometry the format can hold (65535 x 16 x 255). */
export const MAX_GEOMETRY: Geometry = { cylinders: 65535, heads: 16, sectorsPerTrack: 255 };

/**
 * CHS geometry for a disk of `size` bytes, by the algorithm in the appendix of
 * the VHD specification. The capacity it describes is rounded down, so it is
 * never more than `size`.
 */
export function geometryForSize(size: number): Geometry {
  let totalSectors = Math.floor(size / SECTOR);
  if (totalSectors > 65535 * 16 * 255) totalSectors = 65535 * 16 * 255;
  let sectorsPerTrack: number;
  let heads: number;
  let cylinderTimesHeads: number;
  if (totalSectors >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    heads = Math.floor((cylinderTimesHeads + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
  }
  const cylinders = Math.floor(cylinderTimesHeads / heads);
  return { cylinders, heads, sectorsPerTrack };
}

/** Capacity in bytes that a geometry describes. */
export function geometryCapacity(g: Geometry): number {
  return g.cylinders * g.heads * g.sectorsPerTrack * SECTOR;
}

export function isMaxGeometry(g: Geometry): boolean {
  return g.cylinders === 65535 && g.heads === 16 && g.sectorsPerTrack === 255;
}
