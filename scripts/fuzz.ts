/**
 * `npm run fuzz`: a long fuzzing campaign over every parser and the chain
 * reader (see scripts/fuzz-lib.ts for what is fed where).
 *
 *   node dist/scripts/fuzz.js [--count N] [--seed S] [--no-real] [--out DIR]
 *
 * Defaults: 20000 inputs, a random seed (printed, so a run can be repeated).
 * Prints the inputs tried, the outcomes by error code, and every finding (an
 * exception other than VhdToolError, or a step that did not finish) with the
 * input that caused it; findings are also written as JSON to DIR (default
 * fuzz-findings/ in the system temp directory). Exit status 0 when nothing
 * was found, 1 otherwise.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { FuzzFinding, describeInput, inputArb, loadSeeds, runInput, workspace } from './fuzz-lib.js';

const USAGE = `usage: node dist/scripts/fuzz.js [--count N] [--seed S] [--no-real] [--out DIR]
  --count N   inputs to try (default 20000, or VHDTOOL_FUZZ_COUNT)
  --seed S    the campaign's seed (default: random, printed so a run can be repeated)
  --no-real   leave out the real-world fixtures as seed files
  --out DIR   where findings are written as JSON (default: vhdtool-fuzz-findings in the temp directory)
example: npm run fuzz -- --count 4000 --seed 20261127`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Unknown options (a misspelt one would otherwise start a 5-minute campaign) and --help. */
function checkArgs(argv: string[]): number | null {
  const withValue = new Set(['--count', '--seed', '--out']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') { process.stdout.write(USAGE + '\n'); return 0; }
    if (withValue.has(a)) { i++; continue; }
    if (a === '--no-real') continue;
    process.stderr.write(`fuzz: unknown option ${a}\n${USAGE}\n`);
    return 2;
  }
  return null;
}

async function main(): Promise<number> {
  const early = checkArgs(process.argv.slice(2));
  if (early !== null) return early;
  const count = Number(arg('--count') ?? process.env.VHDTOOL_FUZZ_COUNT ?? 20000);
  const seed = Number(arg('--seed') ?? Date.now() % 2 ** 31);
  const outDir = path.resolve(arg('--out') ?? path.join(tmpdir(), 'vhdtool-fuzz-findings'));
  const root = mkdtempSync(path.join(tmpdir(), 'vhdtool-fuzz-'));
  const t0 = Date.now();
  try {
    const seeds = await loadSeeds(path.join(root, 'helpers'), { real: !process.argv.includes('--no-real') });
    const ws = workspace(root);
    const arb = inputArb(seeds);
    process.stdout.write(`vhdtool fuzz: ${count} inputs, seed ${seed}, ${seeds.length} seed files (${seeds.filter((s) => s.name.startsWith('real/')).length} real)\n`);
    const codes: Record<string, number> = {};
    const findings: Array<{ input: string; finding: string }> = [];
    let tried = 0;
    let ok = 0;
    let peakRss = 0;
    const batch = 250;
    for (let b = 0; tried < count; b++) {
      const inputs = fc.sample(arb, { numRuns: Math.min(batch, count - tried), seed: seed + b });
      for (const input of inputs) {
        tried++;
        try {
          const o = await runInput(input, seeds, ws);
          ok += o.ok;
          for (const [k, v] of Object.entries(o.codes)) codes[k] = (codes[k] ?? 0) + v;
        } catch (e) {
          const finding = e instanceof FuzzFinding ? e.message : `harness: ${e instanceof Error ? e.stack : String(e)}`;
          findings.push({ input: describeInput(input, seeds), finding });
          process.stdout.write(`FINDING #${findings.length} (input ${tried}): ${finding}\n  input: ${describeInput(input, seeds).slice(0, 600)}\n`);
        }
        peakRss = Math.max(peakRss, process.memoryUsage().rss);
      }
      if ((b + 1) % 8 === 0 || tried >= count) {
        process.stdout.write(`  ${tried}/${count} inputs, ${findings.length} findings, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
      }
    }
    await ws.close();
    const secs = (Date.now() - t0) / 1000;
    process.stdout.write(`\nInputs tried: ${tried} (seed ${seed}) in ${secs.toFixed(0)} s\n`);
    process.stdout.write(`Steps that succeeded: ${ok}; refused with a VhdToolError: ${Object.entries(codes).sort().map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
    process.stdout.write(`Peak RSS of the harness: ${(peakRss / 2 ** 20).toFixed(0)} MiB\n`);
    process.stdout.write(`Findings (anything but a VhdToolError, or a hang): ${findings.length}\n`);
    if (findings.length) {
      mkdirSync(outDir, { recursive: true });
      const file = path.join(outDir, `findings-seed-${seed}.json`);
      writeFileSync(file, JSON.stringify(findings, null, 2));
      process.stdout.write(`Written to ${file}\n`);
    }
    return findings.length ? 1 : 0;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main().then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`fuzz: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 2;
});
