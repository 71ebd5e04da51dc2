/**
 * Fuzzing in `npm test` (a modest count; `npm run fuzz` runs the long
 * campaign): mutated real fixtures and hostile-corpus files, and VHDs built
 * from random metadata, fed to every parser (decodeFooter, decodeHeader,
 * decodeLocatorData, openVhd in every mode), to openChain and the
 * ChainReader, to checkDisk, to a compact dry run and to compare, as a leaf
 * and as a parent under an intact child. Only VhdToolError may come out, with
 * a one-line message, and every step finishes within its time limit.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { describeInput, inputArb, loadSeeds, runInput, workspace, type Seed, type Workspace } from '../scripts/fuzz-lib.js';
import { tempDir } from '../test/helpers/tmp.js';

const RUNS = Number(process.env.VHDTOOL_FUZZ_RUNS ?? 300);

let seeds: Seed[] = [];
let ws: Workspace;

describe('fuzz: mutated and random VHDs through every parser and the chain reader', () => {
  beforeAll(async () => {
    const root = tempDir('vhdtool-fuzz-');
    seeds = await loadSeeds(path.join(root, 'helpers'));
    ws = workspace(root);
  });
  afterAll(async () => {
    await ws?.close();
  });

  it(`${RUNS} inputs: only VhdToolError, one-line messages, no hang`, async () => {
    expect(seeds.length).toBeGreaterThan(10);
    let tried = 0;
    let refused = 0;
    let ok = 0;
    await fc.assert(fc.asyncProperty(inputArb(seeds), async (input) => {
      tried++;
      try {
        const o = await runInput(input, seeds, ws, 20_000);
        ok += o.ok;
        refused += Object.values(o.codes).reduce((a, b) => a + b, 0);
      } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\ninput: ${describeInput(input, seeds).slice(0, 2000)}`);
      }
    }), { numRuns: RUNS });
    // eslint-disable-next-line no-console
    console.log(`fuzz: ${tried} inputs (${seeds.length} seed files), ${ok} steps succeeded, ${refused} refused with a VhdToolError, 0 findings`);
    // The inputs reach both outcomes: not everything is refused at the door, not everything passes.
    expect(ok).toBeGreaterThan(tried);
    expect(refused).toBeGreaterThan(tried);
  });
});
