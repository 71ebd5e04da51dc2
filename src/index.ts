/**
 * vhdtool as a library (`import { compact } from 'vhdtool'`): the operations
 * the command line runs, with the same options and the results its `--json`
 * prints (the README gives their shapes); reading a chain's guest-visible
 * content; the typed errors with their exit codes; and the pure VHD codecs.
 *
 * Every operation is called the same way: its path(s), then one options
 * object: `info(path, o)`, `check(path, o)`, `compact(path, o)`,
 * `merge(child, parent, out, o)`, `convert(path, out, o)`, `compare(a, b, o)`,
 * `maintain(roots, o)`, `diff(a, b | undefined, o)`, `templateCheck(child, newTemplate, o)`,
 * `templateCheckRoots(roots, newTemplate, o)`. The options take `fs` (a FileSystem; default: the
 * real one), `threads`, `progress` and `signal` where they apply.
 */
export { info, type InfoOptions, type InfoResult, type ChainEntry } from './ops/info.js';
export { check, type CheckDiskOptions } from './ops/check.js';
export { checkDisk, describeCheck, type CheckOptions, type CheckReport } from './check/check.js';
export { compact, type CompactOptions, type CompactResult } from './ops/compact.js';
export { merge, convert, type MergeOptions, type ConvertOptions, type MergeResult } from './ops/merge.js';
export { rebase, type RebaseOptions, type RebaseResult } from './ops/rebase.js';
export { compare, type CompareOptions, type CompareResult } from './ops/compare.js';
export { map, analyzeMap, type MapOptions, type MapResult, type MapPartition, type MapFile } from './ops/map.js';
export { diff, type DiffOptions, type DiffResult, type DiffPartitionResult } from './ops/diff.js';
export { templateCheck, templateCheckRoots, type TemplateCheckOptions, type TemplateCheckResult, type TemplateRootsOptions, type TemplateRootsResult } from './ops/templateCheck.js';
export { maintain, type MaintainOptions } from './ops/maintain.js';
export { create, type CreateOptions, type CreateResult } from './ops/create.js';
export { relink, type RelinkOptions, type RelinkResult } from './ops/relink.js';
export { PROOF_STEPS, type Proof, type ProofCheck, type ProofStep } from './ops/relink/proof.js';
export type { FileSystemsCheck, PartitionCheck, FoundAnomaly } from './ops/relink/fsProof.js';
export type { MaintainReport } from './maintain/report.js';
export { openChain, type OpenChainOptions } from './chain/openChain.js';
export type { Chain, Layer } from './chain/chain.js';
export { ChainReader } from './chain/reader.js';
export { chainSource } from './chain/guestSource.js';
export { readGuestLayout, type GuestLayout, type PartitionView } from './guest/layout.js';
export { RangeSet, RangeSetBuilder } from './guest/ranges.js';
export type { ByteSource } from './guest/source.js';
export type { Volume, VolumeScan, GuestFile, Anomaly, FsKind } from './guest/volume.js';
export { createRunner, defaultThreads, type TaskRunner, type RunnerOptions } from './parallel/pool.js';
export { nodeFileSystem, type FileSystem, type RandomAccessFile, type FileStat } from './io/fsys.js';
export type { ProgressSink } from './progress.js';
export { VhdToolError, FormatError, ErrorCodes, type ErrorCode } from './errors.js';
export * as format from './format/index.js';
