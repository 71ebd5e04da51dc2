/**
 * "Peak memory ≤ 512 MiB whatever a header claims", for headers whose claims
 * are *valid*: a sparse file holding one real 2 GiB block, and a small file
 * whose BAT describes a 4 PiB disk. Every command must finish in seconds
 * within the memory bound (succeeding, or refusing with a documented code),
 * leave the input byte-identical and leave nothing behind.
 */
import { describe, expect, it } from 'vitest';
import { closeSync, openSync, writeSync, ftruncateSync } from 'node:fs';
import * as path from 'node:path';
import {
  encodeFooter, encodeHeader, sealFooter, sealHeader, FOOTER_SIZE,
  type Uuid,
} from '../../src/format/index.js';
import { newFooter, newHeader } from '../../src/vhd/build.js';
import { tempDir } from '../helpers/tmp.js';
import { hasBuild, lines, runCli, stackLines } from './helpers/cli.js';
import { diffSnapshots, snapshot } from './helpers/snapshot.js';

const MAX_RSS = 512 * 1024 * 1024;
const GiB = 1024 ** 3;

/** A dynamic disk written sparsely: header, BAT, then `blocks` (bitmap offset -> bytes to write there). */
function writeSparseDynamic(file: string, o: { virtualSize: number; blockSize: number; entries: number; bat: Map<number, number>; writes: Array<[number, Uint8Array]>; size: number; uuid: string }): void {
  const footer = sealFooter({ ...newFooter({ type: 'dynamic', virtualSize: o.virtualSize, uniqueId: o.uuid as Uuid, timestamp: 757382400 }), dataOffset: 512 });
  const header = sealHeader({ ...newHeader(o.blockSize, o.entries, null), tableOffset: 1536 });
  const fd = openSync(file, 'wx');
  try {
    writeSync(fd, encodeFooter(footer), 0, FOOTER_SIZE, 0);
    writeSync(fd, encodeHeader(header), 0, 1024, 512);
    // The BAT, in chunks: all unused but the listed entries.
    const batBytes = Math.ceil((o.entries * 4) / 512) * 512;
    const chunk = Buffer.alloc(Math.min(batBytes, 8 << 20), 0xff);
    for (let off = 0; off < batBytes; off += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, batBytes - off), 1536 + off);
    for (const [i, sector] of o.bat) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(sector);
      writeSync(fd, b, 0, 4, 1536 + i * 4);
    }
    for (const [at, bytes] of o.writes) writeSync(fd, bytes, 0, bytes.length, at);
    ftruncateSync(fd, o.size - FOOTER_SIZE);
    writeSync(fd, encodeFooter(footer), 0, FOOTER_SIZE, o.size - FOOTER_SIZE);
  } finally {
    closeSync(fd);
  }
}

interface Case {
  name: string;
  make(dir: string): void;
  /** Expected exit code per command. */
  codes: Record<string, number>;
}

const CASES: Case[] = [
  {
    // 2 GiB virtual, one 2 GiB block (512 KiB bitmap) stored sparsely: a 2 GiB file that takes a few KiB.
    name: 'one-2gib-block.vhd',
    make(dir) {
      const blockAt = 4096;
      const bitmap = Buffer.alloc(512 * 1024);
      bitmap[0] = 0x80; // sector 0 set; the other 4194303 bits clear
      const sector0 = Buffer.alloc(512, 0x5a);
      writeSparseDynamic(path.join(dir, this.name), {
        virtualSize: 2 * GiB, blockSize: 2 * GiB, entries: 1, bat: new Map([[0, blockAt / 512]]),
        writes: [[blockAt, bitmap], [blockAt + bitmap.length, sector0]],
        size: blockAt + bitmap.length + 2 * GiB + FOOTER_SIZE, uuid: '0b57113e-0000-4000-8000-0000000000a1',
      });
    },
    codes: { info: 0, check: 0, compare: 0, compactOut: 0, merge: 6 },
  },
  {
    // 4 PiB virtual in 2 GiB blocks: 2^21 BAT entries (8 MiB), nothing allocated.
    name: 'claims-4pib.vhd',
    make(dir) {
      const entries = 2 ** 21;
      writeSparseDynamic(path.join(dir, this.name), {
        virtualSize: 2 ** 52, blockSize: 2 * GiB, entries, bat: new Map(), writes: [],
        size: 1536 + entries * 4 + FOOTER_SIZE, uuid: '0b57113e-0000-4000-8000-0000000000a2',
      });
    },
    codes: { info: 0, check: 0, compare: 0, compactOut: 0, merge: 6 },
  },
];

describe.skipIf(!hasBuild())('memory stays bounded whatever a header claims (valid but enormous claims)', () => {
  for (const c of CASES) {
    it(`${c.name}: every command within 512 MiB and a few seconds`, async () => {
      const dir = tempDir('vhdtool-mem-');
      c.make(dir);
      const runs: Array<[string, string[]]> = [
        ['info', ['info', c.name]],
        ['check', ['check', c.name]],
        ['compare', ['compare', c.name, c.name, '--no-progress']],
        ['compactOut', ['compact', c.name, '--output', 'out.vhd', '--dry-run', '--no-progress']],
        ['merge', ['merge', c.name, c.name, 'out.vhd', '--no-progress']],
      ];
      for (const [key, args] of runs) {
        const before = snapshot(dir);
        const r = await runCli(args, { cwd: dir, timeoutMs: 60_000 });
        const where = `${c.name} ${args.join(' ')}: ${JSON.stringify({ code: r.code, ms: Math.round(r.ms), rss: r.maxRss, stderr: r.stderr })}`;
        expect(r.signal, where).toBeNull();
        expect(r.code, where).toBe(c.codes[key]);
        expect(stackLines(r.stdout + r.stderr), where).toEqual([]);
        if (r.code !== 0) expect(lines(r.stderr).length, where).toBe(1);
        expect(r.ms, where).toBeLessThan(10_000);
        expect(r.maxRss, where).not.toBeNull();
        expect(r.maxRss!, where).toBeLessThan(MAX_RSS);
        expect(diffSnapshots(before, snapshot(dir)), where).toEqual([]);
      }
    });
  }
});
