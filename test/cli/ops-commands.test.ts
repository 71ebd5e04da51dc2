/**
 * The CLI of compact, merge, convert, compare and cat: flags reach the
 * operations, --json prints the documented shape, exit codes are right, and
 * errors are one line naming the file.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { tempDir } from '../helpers/tmp.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SAMPLE = path.join(ROOT, 'fixtures', 'sample');

async function cli(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'vhdtool', ...args], { out: (l) => out.push(l), err: (l) => err.push(l), tty: false });
  return { code, out, err };
}

function sampleCopy(): { dir: string; base: string; child: string } {
  const dir = tempDir();
  copyFileSync(path.join(SAMPLE, 'base.vhd'), path.join(dir, 'base.vhd'));
  copyFileSync(path.join(SAMPLE, 'child.vhd'), path.join(dir, 'child.vhd'));
  return { dir, base: path.join(dir, 'base.vhd'), child: path.join(dir, 'child.vhd') };
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('vhdtool compact', () => {
  it('--dry-run --json reports reclaimableBytes equal to the reduction the real run then achieves', async () => {
    const { child } = sampleCopy();
    const before = statSync(child).size;
    const hash = sha(child);
    const dry = await cli('compact', child, '--dry-run', '--json', '--threads', '0');
    expect(dry.code).toBe(0);
    const d = JSON.parse(dry.out.join('\n'));
    expect(sha(child)).toBe(hash);
    expect(d.dryRun).toBe(true);
    expect(d.reclaimableBytes).toBeGreaterThan(0);
    expect(d.sectors.sameAsParent + d.sectors.zeroOverZero + d.sectors.kept).toBe(d.sectors.examined);
    const real = await cli('compact', child, '--json', '--threads', '1');
    expect(real.code).toBe(0);
    const r = JSON.parse(real.out.join('\n'));
    expect(before - statSync(child).size).toBe(d.reclaimableBytes);
    expect(r.reclaimedBytes).toBe(d.reclaimableBytes);
    expect(r.sectors).toEqual(d.sectors);
    expect(r.blocks).toEqual(d.blocks);
  });

  it('refuses a fixed disk with exit 6 and points to convert', async () => {
    const dir = tempDir();
    const fixed = path.join(dir, 'f.vhd');
    const { base } = sampleCopy();
    expect((await cli('convert', base, fixed, '--type', 'fixed', '--threads', '0')).code).toBe(0);
    const r = await cli('compact', fixed);
    expect(r.code).toBe(6);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toContain(fixed);
    expect(r.err[0]).toContain('convert');
  });

  it('refuses --output naming the input (exit 6), and an existing --output without --force', async () => {
    const { dir, child } = sampleCopy();
    const r = await cli('compact', child, '--output', child);
    expect(r.code).toBe(6);
    expect(r.err[0]).toMatch(/output is an input/);
    const other = path.join(dir, 'other.vhd');
    copyFileSync(child, other);
    const before = sha(other);
    const e = await cli('compact', child, '--output', other);
    expect(e.code).toBe(6);
    expect(sha(other)).toBe(before);
    expect((await cli('compact', child, '--output', other, '--force', '--threads', '0')).code).toBe(0);
    expect(sha(other)).not.toBe(before);
  });
});

describe('vhdtool merge, convert and compare', () => {
  it('merge --json describes the output; compare says identical (exit 0); a byte changed says different (exit 1)', async () => {
    const { dir, base, child } = sampleCopy();
    const out = path.join(dir, 'merged.vhd');
    const m = await cli('merge', child, base, out, '--json', '--threads', '0');
    expect(m.code).toBe(0);
    const j = JSON.parse(m.out.join('\n'));
    expect(j.outputType).toBe('dynamic');
    expect(j.output).toBe(out);
    expect(j.fileSize).toBe(statSync(out).size);
    expect(j.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const same = await cli('compare', child, out, '--json');
    expect(same.code).toBe(0);
    expect(JSON.parse(same.out.join('\n')).identical).toBe(true);
    const diff = await cli('compare', child, base);
    expect(diff.code).toBe(1);
    expect(diff.out[0]).toMatch(/^Content mismatch at offset \d+\.$/);
  });

  it('merge refuses an existing OUT without --force (exit 6), a wrong PARENT (exit 5, naming both UUIDs), and a bad --type (exit 2)', async () => {
    const { dir, base, child } = sampleCopy();
    const out = path.join(dir, 'exists.vhd');
    copyFileSync(base, out);
    const before = sha(out);
    expect((await cli('merge', child, base, out)).code).toBe(6);
    expect(sha(out)).toBe(before);
    const wrong = path.join(dir, 'wrong.vhd');
    expect((await cli('convert', base, wrong, '--threads', '0')).code).toBe(0);
    const r = await cli('merge', child, wrong, path.join(dir, 'x.vhd'));
    expect(r.code).toBe(5);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toContain('5a3b1e00-0000-4000-8000-000000000001');
    expect(existsSync(path.join(dir, 'x.vhd'))).toBe(false);
    const t = await cli('merge', child, base, path.join(dir, 'y.vhd'), '--type', 'vhdx');
    expect(t.code).toBe(2);
    expect(t.err).toHaveLength(1);
  });
});

describe('the built binary', () => {
  it('cat streams the guest content; --help has examples; errors are one line with no stack trace', () => {
    const bin = path.join(ROOT, 'bin', 'vhdtool.js');
    const { base, child } = sampleCopy();
    const raw = execFileSync('node', [bin, 'cat', child], { maxBuffer: 64 << 20 });
    expect(raw.length).toBe(32 * 1024 * 1024);
    const viaMerge = tempDir();
    const out = path.join(viaMerge, 'm.vhd');
    execFileSync('node', [bin, 'convert', child, out, '--type', 'fixed', '--threads', '0']);
    const fixed = readFileSync(out);
    expect(Buffer.compare(fixed.subarray(0, raw.length), raw)).toBe(0);
    const help = execFileSync('node', [bin, 'compact', '--help']).toString();
    expect(help).toContain('Examples:');
    const bad = spawnSync('node', [bin, 'info', path.join(viaMerge, 'missing.vhd')]);
    expect(bad.status).toBe(3);
    const lines = bad.stderr.toString().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('missing.vhd');
    expect(bad.stderr.toString()).not.toMatch(/\n\s+at /);
    void base;
  });
});

describe('the bundled sample chain', () => {
  it('is exactly what scripts/make-sample.ts generates', () => {
    const dir = tempDir();
    execFileSync('node', [path.join(ROOT, 'dist', 'scripts', 'make-sample.js'), dir]);
    for (const f of ['base.vhd', 'child.vhd']) expect(sha(path.join(dir, f))).toBe(sha(path.join(SAMPLE, f)));
  });
});
