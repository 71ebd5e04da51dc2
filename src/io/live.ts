/**
 * Files this process made and must not leave behind: temporaries being
 * written and locks held. On SIGINT/SIGTERM the CLI removes them before it
 * exits, even when the operation itself cannot wind down in time.
 */
import { unlinkSync } from 'node:fs';

/** Temporary files currently being written by this process. */
export const liveTemps = new Set<string>();
/** Lock files currently held by this process. */
export const liveLocks = new Set<string>();

/** Removes every live temporary and lock, synchronously (safe in a signal handler and at exit). */
export function removeLiveFilesSync(): void {
  for (const set of [liveTemps, liveLocks]) {
    for (const p of set) {
      try {
        unlinkSync(p);
      } catch {
        /* already gone */
      }
    }
    set.clear();
  }
}
