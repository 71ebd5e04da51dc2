/**
 * The guest layer's error: a partition table or a file system that cannot be
 * read as it claims. It is a VhdToolError (code BAD_FILESYSTEM, exit 9) so the
 * CLI reports it as one line; the operations that read several partitions
 * catch it per partition and report it there, attributed with `inPartition`.
 */
import { VhdToolError } from '../errors.js';

export class GuestError extends VhdToolError {
  constructor(message: string, data: Record<string, unknown> = {}) {
    super('BAD_FILESYSTEM', message, undefined, data);
    this.name = 'GuestError';
  }
}

/** The error, its message prefixed with the partition and file system it concerns ("partition 2 (ntfs): ..."). */
export function inPartition(e: unknown, index: number, fs?: string): VhdToolError {
  const where = fs ? `partition ${index} (${fs})` : `partition ${index}`;
  if (e instanceof VhdToolError) {
    if (e.message.startsWith(where)) return e;
    return new VhdToolError(e.code, `${where}: ${e.message}`, e.path, { ...e.data, partition: index });
  }
  return new VhdToolError('INTERNAL', `${where}: internal error: ${e instanceof Error ? e.message : String(e)} (please report this)`);
}

/** Stops a scan when its signal has fired: the same INTERRUPTED error (exit 130) from every reader. */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new VhdToolError('INTERRUPTED', 'interrupted');
}
