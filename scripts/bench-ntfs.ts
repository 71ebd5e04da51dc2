/**
 * The benchmark's generators write NTFS volumes through ntfs-3g (FUSE), as
 * Windows-like file systems are made on Linux: root and /dev/fuse needed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import * as path from 'node:path';

/** Mounts `img` with ntfs-3g in the foreground, runs `fn` on the mount point, unmounts and waits for ntfs-3g to finish writing. */
export async function withNtfs(img: string, fn: (mnt: string) => void): Promise<void> {
  const mnt = mkdtempSync(path.join(path.dirname(img), 'mnt-'));
  const child = spawn('ntfs-3g', ['-o', 'no_detach,big_writes', img, mnt], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    for (let i = 0; ; i++) {
      if (readFileSync('/proc/mounts', 'utf8').includes(` ${mnt} `)) break;
      if (i > 500 || child.exitCode !== null) throw new Error(`ntfs-3g did not mount ${img}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    fn(mnt);
  } finally {
    spawnSync('umount', [mnt]);
    await exited;
    rmdirSync(mnt);
  }
}
