/**
 * Is a file open in another process (a running virtual machine, qemu, a
 * backup agent)? On Linux this reads /proc/<pid>/fd of every process; where
 * /proc is unavailable it reports nothing.
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';

// The callback API, promisified: node:fs/promises costs start-up time to load (see io/fsys.ts).
const readdir = promisify(fs.readdir);
const readlink = promisify(fs.readlink);
const stat = promisify(fs.stat);

export interface OpenBy {
  pid: number;
}

/** Map "dev:ino" -> pids holding it open, for every process but this one. */
export async function openFilesByOthers(): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  const self = String(process.pid);
  await Promise.all(pids.map(async (pid) => {
    if (pid === self) return;
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      return;
    }
    for (const fd of fds) {
      try {
        const target = await readlink(`/proc/${pid}/fd/${fd}`);
        if (!target.startsWith('/')) continue;
        const st = await stat(`/proc/${pid}/fd/${fd}`);
        if (!st.isFile()) continue;
        const key = `${st.dev}:${st.ino}`;
        const list = out.get(key) ?? [];
        if (!list.includes(Number(pid))) list.push(Number(pid));
        out.set(key, list);
      } catch {
        /* fd closed meanwhile */
      }
    }
  }));
  return out;
}

export async function pidsHolding(dev: number, ino: number, index?: Map<string, number[]>): Promise<number[]> {
  const map = index ?? (await openFilesByOthers());
  return map.get(`${dev}:${ino}`) ?? [];
}
