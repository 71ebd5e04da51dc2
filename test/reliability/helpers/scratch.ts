/**
 * Trial folders for tests that kill or race processes: on a tmpfs when there
 * is one (a kill -9 is a process crash; fsync speed is beside the point).
 * Each test file keeps its own set and removes it when done.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const SCRATCH = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

export class ScratchDirs {
  private readonly made: string[] = [];

  make(prefix: string): string {
    const d = mkdtempSync(path.join(SCRATCH, prefix));
    this.made.push(d);
    return d;
  }

  removeAll(): void {
    for (const d of this.made.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}
