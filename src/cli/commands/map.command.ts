import { InvalidArgumentError, type Command } from 'commander';
import type { MapPartition, MapResult } from '../../ops/map.js';
import { fmtBytes, json, progressFor, type CliIO } from '../context.js';

export function registerMap(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('map')
    .description('which partitions, file-system structures and files the sectors a disk holds belong to; optionally as a picture')
    .argument('<disk>', 'VHD file (.vhd, .avhd); its parents are read too')
    .option('--files', 'list the files that own the leaf\'s bytes, largest first')
    .option('--limit <n>', 'files listed per partition in the human output (default 20; --json lists all)', (v) => positiveInt(v))
    .option('--svg <file>', 'also draw the map as an SVG picture into FILE')
    .option('--parent <path>', "the disk's parent, overriding its locators")
    .option('--no-progress', 'no progress spinner')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExamples:\n  vhdtool map user1.vhd\n  vhdtool map user1.vhd --files --limit 50\n  vhdtool map user1.vhd --svg user1-map.svg\n  vhdtool map user1.vhd --files --json | jq \'.partitions[].files[:10]\'')
    .action(async (disk: string, o: { files?: boolean; limit?: number; svg?: string; parent?: string; json?: boolean; progress?: boolean }) => {
      const { analyzeMap } = await import('../../ops/map.js');
      const { result, picture } = await analyzeMap(disk, { parent: o.parent, files: o.files, progress: progressFor(io, o), signal: io.signal });
      if (o.svg) {
        const { renderMapSvg } = await import('../mapSvg.js');
        const { writeReportFile } = await import('../../io/reportFile.js');
        await writeReportFile(o.svg, renderMapSvg(picture), { flag: '--svg', inputs: result.layers.map((l) => l.path) });
      }
      if (o.json) json(io, result);
      else renderMap(io, result, o.limit ?? 20);
      done(0);
    });
}

function positiveInt(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) {
    throw new InvalidArgumentError('must be a whole number, at least 1');
  }
  return Number(v);
}

function renderMap(io: CliIO, r: MapResult, limit: number): void {
  io.out(`${r.path}: the leaf holds ${fmtBytes(r.leafBytes)} of a ${fmtBytes(r.virtualSize)} disk (${r.scheme === 'none' ? 'no' : r.scheme.toUpperCase()} partition table)`);
  for (const p of r.partitions) renderPartition(io, p, limit);
  const o = r.outside;
  io.out(`  outside partitions: ${fmtBytes(r.outsideBytes)} (tables ${fmtBytes(o.tableBytes)}, gaps ${fmtBytes(o.gapBytes)}, after the last partition ${fmtBytes(o.tailBytes)})`);
  for (const w of r.warnings) io.out(`  warning: ${w}`);
}

function renderPartition(io: CliIO, p: MapPartition, limit: number): void {
  const what = p.fileSystem === 'unknown' ? (p.detected ?? 'not read') : p.fileSystem;
  const cluster = p.clusterSize ? `, ${fmtBytes(p.clusterSize)} clusters` : '';
  io.out(`  partition ${p.index} (${p.scheme}${p.type !== 'none' ? ` ${p.type}` : ''}): ${what}${cluster}, ${fmtBytes(p.size)} at sector ${p.alignment.startSector}${p.state ? `, ${p.state}` : ''}`);
  if (p.error) io.out(`    not read: ${p.error.message}`);
  io.out(`    leaf bytes ${fmtBytes(p.leafBytes)}: file data ${fmtBytes(p.leafFileBytes)}, metadata ${fmtBytes(p.leafMetadataBytes)}, free ${fmtBytes(p.leafFreeBytes)}${p.leafUnknownBytes ? `, not read ${fmtBytes(p.leafUnknownBytes)}` : ''}`);
  io.out(`    alignment: ${alignmentText(p)}`);
  for (const r of p.stateReasons) io.out(`    state: ${r}`);
  for (const a of p.anomalies) io.out(`    anomaly (${a.kind}): ${a.message}`);
  if (!p.files) return;
  for (const f of p.files.slice(0, limit)) io.out(`    ${fmtBytes(f.leafBytes).padStart(11)}  ${f.path}  (size ${fmtBytes(f.size)})`);
  if (p.files.length > limit) io.out(`    ... and ${p.files.length - limit} more file${p.files.length - limit === 1 ? '' : 's'} (--limit N, or --json for all)`);
}

function alignmentText(p: MapPartition): string {
  const a = p.alignment;
  const parts = [a.bitmapAligned ? '4 KiB aligned' : `not 4 KiB aligned (a 4 KiB cluster spans 2 bitmap bytes)`];
  parts.push(a.blockAligned ? 'block aligned' : 'not block aligned');
  if (a.clustersCrossBlocks) parts.push('clusters cross block boundaries');
  return parts.join('; ');
}
