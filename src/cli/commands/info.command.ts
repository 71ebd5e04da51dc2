import type { Command } from 'commander';
import type { InfoResult } from '../../ops/info.js';
import { asText, displaySafe } from '../../errors.js';
import { plural } from '../../plural.js';
import { fmtBytes, json, type CliIO } from '../context.js';

export function registerInfo(program: Command, io: CliIO, done: (code: number) => void): void {
  program
    .command('info')
    .description('show the footer, header, locators, allocation and the whole chain of a disk')
    .argument('<disk>', 'VHD file (.vhd, .avhd)')
    .option('--parent <path>', "the disk's parent, overriding its locators")
    .option('--lenient', 'read past checksum and footer-copy errors (forensics); reported as warnings')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nExamples:\n  vhdtool info child.vhd\n  vhdtool info child.vhd --json | jq .chain\n  vhdtool info moved-child.vhd --parent /srv/golden/base.vhd')
    .action(async (disk: string, o: { parent?: string; lenient?: boolean; json?: boolean }) => {
      const { info } = await import('../../ops/info.js');
      const r = await info(disk, { parent: o.parent, lenient: o.lenient });
      if (o.json) json(io, r);
      else renderInfo(io, r);
      done(0);
    });
}

function renderInfo(io: CliIO, r: InfoResult): void {
  const f = r.footer as Record<string, unknown>;
  io.out(`${r.path}`);
  io.out(`  type            ${r.type}`);
  io.out(`  cookie          ${asText(String(f.cookie).replace(/\\0/g, '\0'))}`);
  io.out(`  virtual size    ${r.virtualSize} bytes (${fmtBytes(r.virtualSize)})`);
  io.out(`  file size       ${r.fileSize} bytes (${fmtBytes(r.fileSize)})`);
  io.out(`  uuid            ${r.uuid}`);
  io.out(`  created         ${String(f.timestamp)} by "${String(f.creatorApplication)}" ${String(f.creatorVersion)} on ${String(f.creatorHostOs)}`);
  const g = f.geometry as { cylinders: number; heads: number; sectorsPerTrack: number };
  io.out(`  geometry        ${g.cylinders}/${g.heads}/${g.sectorsPerTrack} (C/H/S)`);
  if (f.savedState) io.out('  saved state     YES (a virtual machine was saved with this disk attached)');
  if (r.header) {
    const h = r.header as Record<string, unknown>;
    io.out(`  block size      ${r.blockSize} bytes (${fmtBytes(r.blockSize!)})`);
    io.out(`  BAT             ${String(h.maxTableEntries)} entries at offset ${String(h.tableOffset)}`);
    io.out(`  allocated       ${plural(r.allocatedBlocks, 'block')}, ${plural(r.sectorsSet, 'sector')} set (${fmtBytes(r.sectorsSet * 512)})`);
  }
  if (r.parentUuid) {
    const h = r.header as Record<string, unknown>;
    io.out(`  parent uuid     ${r.parentUuid}`);
    io.out(`  parent name     ${String(h.parentUnicodeName)}`);
    io.out(`  parent time     ${h.parentTimestamp === null ? '(not set)' : String(h.parentTimestamp)}`);
  }
  for (const l of r.locators) {
    // The path as written (one backslash is one backslash), control characters escaped.
    const where = l.path !== null ? displaySafe(String(l.path)) : `(${String(l.error ?? 'opaque')})`;
    io.out(`  locator ${String(l.index)}       ${String(l.platform)} ${where} at ${String(l.dataOffset)}, ${plural(Number(l.dataLength), 'byte')}, space ${String(l.dataSpace)} ${String(l.spaceUnit ?? '?')}`);
  }
  io.out('  chain (leaf first):');
  for (const line of columns(r.chain.map((c, i) => [`${i}:`, displaySafe(c.path), c.type, c.uuid, fmtBytes(c.virtualSize), c.parentFoundBy ? `parent via ${c.parentFoundBy}` : '']))) {
    io.out(`    ${line}`);
  }
  for (const w of r.warnings) io.out(`  warning: ${w}`);
}

/** Rows of cells as lines with every column left-aligned (the last one unpadded). */
export function columns(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, [...c].length); });
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i] - [...c].length))).join('  ').trimEnd());
}
