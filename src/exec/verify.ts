/**
 * Verifying a written file before it is published: re-open it with every
 * structural check, compare its metadata with what was planned, and re-read
 * every byte range the executor wrote, comparing SHA-1 digests.
 */
import { VhdToolError } from '../errors.js';
import type { Bat, Footer } from '../format/index.js';
import type { FileSystem } from '../io/fsys.js';
import type { TaskRunner } from '../parallel/pool.js';
import { openVhd } from '../vhd/image.js';
import type { DigestLog } from './digestLog.js';

export interface Expected {
  footer: Footer;
  /** For sparse outputs. */
  bat?: Bat;
  blockSize?: number;
  parentUniqueId?: string | null;
  fileSize: number;
  digests: DigestLog;
}

function fail(what: string, temp: string): never {
  throw new VhdToolError('VERIFY_FAILED', `output did not verify (${what}); nothing was replaced`, temp);
}

export async function verifyWritten(fs: FileSystem, temp: string, runner: TaskRunner, exp: Expected): Promise<void> {
  let vhd;
  try {
    vhd = await openVhd(fs, temp, { mode: 'strict' });
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e), temp);
  }
  try {
    const m = vhd.meta;
    if (m.fileSize !== exp.fileSize) fail(`size ${m.fileSize}, planned ${exp.fileSize}`, temp);
    if (m.footer.uniqueId !== exp.footer.uniqueId) fail('UUID differs', temp);
    if (m.footer.currentSize !== exp.footer.currentSize) fail('size differs', temp);
    if (m.type !== exp.footer.diskType) fail('disk type differs', temp);
    if (exp.bat) {
      if (!m.bat || m.blockSize !== exp.blockSize) fail('block size differs', temp);
      if ((m.header!.parentUniqueId ?? null) !== (exp.parentUniqueId ?? null)) fail('parent UUID differs', temp);
      for (let i = 0; i < m.blockCount; i++) if (m.bat.get(i) !== exp.bat.get(i)) fail(`BAT entry ${i} differs`, temp);
    }
  } finally {
    await vhd.close();
  }
  const limit = Math.max(2, runner.threads * 2);
  const inflight: Array<Promise<void>> = [];
  for (let i = 0; i < exp.digests.length; i++) {
    const r = exp.digests.get(i);
    inflight.push(runner.run<string>({ kind: 'digest', file: temp, offset: r.offset, length: r.length }).then((d) => {
      if (d !== r.digest) fail(`bytes at offset ${r.offset} differ from what was written`, temp);
    }));
    if (inflight.length >= limit) await inflight.shift();
  }
  await Promise.all(inflight);
}
