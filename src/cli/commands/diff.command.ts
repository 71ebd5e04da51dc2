import { InvalidArgumentError, type Command } from 'commander';
import { displaySafe } from '../../errors.js';
import type { DiffPartitionResult, DiffResult } from '../../ops/diff.js';
import { fmtBytes, json, parseThreads, progressFor, type CliIO } from '../context.js';

interface DiffFlags {
  parentA?: string;
  parentB?: string;
  limit?: number;
  threads?: number;
  json?: boolean;
  progress?: boolean;
}

export function registerDiff(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('diff')
    .description("which files changed between two disks' guest file systems (NTFS, FAT, ext); with one disk, which files it changed over its parent")
    .argument('<a>', 'the old disk (VHD, read through its parents); alone: a differencing disk, compared with its own parent chain')
    .argument('[b]', 'the new disk (VHD, read through its parents)')
    .option('--parent-a <path>', "A's parent, overriding its locators")
    .option('--parent-b <path>', "B's parent, overriding its locators")
    .option('--limit <n>', 'entries listed per kind and partition in the human output (default 50; --json lists all)', positiveInt)
    .option('--threads <n>', 'worker threads that find the differing sectors (0 = the main thread)', parseThreads)
    .option('--no-progress', 'no progress spinner')
    .option('--json', 'print one JSON object')
    .addHelpText('after', `
diff A B lists what changed from A (old) to B (new): added files are in B only.
diff A compares A with its own parent chain: the files this child changed.
Files are matched by the file system's identity (NTFS record and sequence
number, ext inode and generation; FAT has none, so a FAT rename is a delete
and an add). Only files on sectors that differ are read; the rest are equal
without reading their data.

Exit status: 0 no file or directory changed; 1 some did (or a partition that
differs could not be compared); 2 bad usage (one disk that has no parent);
3-5 a disk or its chain cannot be opened; 6 the sizes differ and the larger
disk holds data past the smaller's end; 9 a file system that differs cannot
be read (the message names the disk and the partition); 130 interrupted.

Examples:
  vhdtool diff user1.vhd
  vhdtool diff golden.vhd golden-v2.vhd
  vhdtool diff user1-monday.vhd user1-friday.vhd --limit 200
  vhdtool diff user1.vhd --json | jq '.partitions[].modified'`)
    .action(async (a: string, b: string | undefined, o: DiffFlags) => {
      const { diff } = await import('../../ops/diff.js');
      const r = await diff(a, b, { parentA: o.parentA, parentB: o.parentB, threads: o.threads, progress: progressFor(io, o), signal: io.signal });
      if (o.json) json(io, r);
      else renderDiff(io, r, o.limit ?? 50);
      done(hasChanges(r) ? 1 : 0);
    });
}

function positiveInt(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('must be a whole number, at least 1');
  return Number(v);
}

/** True when a file or directory changed, or a partition that differs was not compared. */
export function hasChanges(r: DiffResult): boolean {
  const s = r.summary;
  return s.added + s.deleted + s.modified + s.renamed + s.createdDirectories + s.deletedDirectories > 0
    || r.partitions.some((p) => !p.compared && p.differingBytes > 0);
}

function renderDiff(io: CliIO, r: DiffResult, limit: number): void {
  const how = r.mode === 'parent' ? `${displaySafe(r.new)} over its parent ${displaySafe(r.old)}` : `${displaySafe(r.old)} -> ${displaySafe(r.new)}`;
  io.out(`${how}: ${fmtBytes(r.differingBytes)} of sectors differ${r.outsideBytes ? ` (${fmtBytes(r.outsideBytes)} outside every partition)` : ''}`);
  for (const p of r.partitions) renderPartition(io, p, limit);
  const s = r.summary;
  io.out(`${s.added} added, ${s.deleted} deleted, ${s.modified} modified, ${s.renamed} renamed; directories: ${s.createdDirectories} created, ${s.deletedDirectories} deleted`);
}

function renderPartition(io: CliIO, p: DiffPartitionResult, limit: number): void {
  const fs = p.oldFileSystem !== p.fileSystem ? `${p.oldFileSystem} -> ${p.fileSystem}` : p.fileSystem;
  const layout = p.layout === 'same' ? '' : `, ${p.layout}`;
  io.out(`  partition ${p.index} (${fs}${layout}): ${fmtBytes(p.differingBytes)} differ${p.filesRead ? `; ${p.filesRead} file(s) read (${fmtBytes(p.bytesRead)})` : ''}`);
  if (p.note) io.out(`    ${displaySafe(p.note)}`);
  for (const [side, st] of [['old', p.state.old], ['new', p.state.new]] as const) {
    if (st && st !== 'clean') io.out(`    warning: the ${side} side's file system is ${st}: its metadata may not describe every file yet`);
  }
  for (const r of p.state.reasons) io.out(`    state: ${displaySafe(r)}`);
  const list = (mark: string, items: string[]) => {
    for (const line of items.slice(0, limit)) io.out(`    ${mark} ${displaySafe(line)}`);
    if (items.length > limit) io.out(`    ${mark} ... and ${items.length - limit} more (--limit N, or --json for all)`);
  };
  list('+', p.added.map((f) => `${f.path} (${fmtBytes(f.size)})`));
  list('-', p.deleted.map((f) => `${f.path} (${fmtBytes(f.size)})`));
  list('M', p.modified.map((f) => `${f.path} (${f.oldSize === f.size ? fmtBytes(f.size) : `${fmtBytes(f.oldSize)} -> ${fmtBytes(f.size)}`})`));
  list('R', p.renamed.map((f) => `${f.from}${f.directory ? '/' : ''} -> ${f.to}${f.directory ? '/' : ''}`));
  list('+', p.createdDirectories.map((d) => `${d.path}/`));
  list('-', p.deletedDirectories.map((d) => `${d.path}/`));
}
