/** The one check every partition scheme makes: no two extents share a sector. */
import { GuestError } from '../errors.js';

export interface Extent {
  /** "partition 2", "the EBR at sector 4096". */
  what: string;
  /** First unit (sector or LBA). */
  start: number;
  /** One past the last unit. */
  end: number;
}

/** Throws a GuestError naming the first two extents found sharing a unit (`unit` names them: "sectors", "LBAs"). */
export function refuseOverlaps(extents: Extent[], unit: string, where: string): void {
  const sorted = [...extents].sort((a, b) => a.start - b.start || a.end - b.end);
  let reach: Extent | null = null;
  for (const e of sorted) {
    if (reach && e.start < reach.end) {
      throw new GuestError(
        `${where}: ${reach.what} (${unit} ${reach.start}-${reach.end - 1}) and ${e.what} (${unit} ${e.start}-${e.end - 1}) overlap`,
      );
    }
    if (!reach || e.end > reach.end) reach = e;
  }
}
