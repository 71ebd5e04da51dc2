/**
 * A read-only view of a file that reads zeros past its end, up to `size`:
 * how `--lenient` reads a file cut inside its last block (forensics). Writing
 * through it is refused.
 */
import type { RandomAccessFile } from './fsys.js';

export function zeroExtended(file: RandomAccessFile, realSize: number, size: number): RandomAccessFile {
  const fill = (buf: Uint8Array, off: number, len: number, pos: number, got: number): number => {
    // A short read inside the file is just short (the caller reads on); zeros start at its real end.
    if (pos + got < realSize) return got;
    const want = Math.max(0, Math.min(len, size - pos));
    if (got >= want) return got;
    buf.fill(0, off + got, off + want);
    return want;
  };
  const refuse = async (): Promise<never> => {
    throw Object.assign(new Error('read-only view of a cut file'), { code: 'EROFS' });
  };
  return {
    path: file.path,
    async read(buf, off, len, pos) {
      return fill(buf, off, len, pos, await file.read(buf, off, len, pos));
    },
    readSync(buf, off, len, pos) {
      return fill(buf, off, len, pos, file.readSync(buf, off, len, pos));
    },
    write: refuse,
    writev: refuse,
    async size() {
      return Math.max(size, realSize);
    },
    truncate: refuse,
    sync: () => file.sync(),
    close: () => file.close(),
  };
}
