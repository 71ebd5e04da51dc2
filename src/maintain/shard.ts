/**
 * `--shard K/N`: N workers split one storage tree with no overlap. A family
 * of disks (a base and everything above it) belongs to shard
 * sha256(lower-case UUID of its base) mod N, so every worker computes the same
 * assignment from the same files, on any host, in any order. Pure.
 */
import { createHash } from 'node:crypto';

export interface Shard {
  /** 0-based: K in K/N (a Kubernetes Indexed Job's JOB_COMPLETION_INDEX). */
  index: number;
  count: number;
}

export const NO_SHARD: Shard = { index: 0, count: 1 };

export const MAX_SHARDS = 65536;

/** Parses "K/N" with 0 <= K < N; throws RangeError with a one-line reason. */
export function parseShard(s: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(s);
  if (!m) throw new RangeError('must be K/N, e.g. 0/4 (K counts from 0)');
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || count > MAX_SHARDS) throw new RangeError(`N must be between 1 and ${MAX_SHARDS}`);
  if (index >= count) throw new RangeError(`K must be between 0 and N-1 (got ${index}/${count}; K counts from 0)`);
  return { index, count };
}

/** The shard (0..count-1) that owns `key`. */
export function shardOf(key: string, count: number): number {
  if (count <= 1) return 0;
  const h = createHash('sha256').update(key.toLowerCase()).digest();
  // 48 bits are plenty and stay exact in a double.
  const v = h.readUIntBE(0, 6);
  return v % count;
}

export function inShard(key: string, shard: Shard): boolean {
  return shardOf(key, shard.count) === shard.index;
}

export function shardLabel(s: Shard): string {
  return `${s.index}/${s.count}`;
}
