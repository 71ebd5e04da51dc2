/**
 * The compare-bound part of `compare`, in one process, for `npm run bench`:
 * how much faster N threads are than 1 once the worker threads are running.
 * The command-line figures include Node's start-up, loading the modules and
 * starting the worker threads, which no thread count changes. As in the
 * command, N threads are compare's main thread and N - 1 workers.
 *
 *   node dist/scripts/bench-scaling.js A B THREADS REPS
 *
 * Prints one JSON object: seconds per repetition with 1 thread and with
 * THREADS, the repetitions interleaved, after one warm-up run of each.
 */
import { compare } from '../src/ops/compare.js';
import { compareRunnerOptions } from '../src/ops/compareThreads.js';
import { createRunner } from '../src/parallel/pool.js';

async function main(): Promise<void> {
  const [a, b, threadsArg, repsArg] = process.argv.slice(2);
  const threads = Number(threadsArg);
  const reps = Number(repsArg);
  if (!a || !b || !(threads >= 1) || !(reps >= 1)) throw new Error('usage: bench-scaling A B THREADS REPS');
  // compare's main thread takes a share of the work: N threads are the main thread and N - 1 workers.
  const one = createRunner(compareRunnerOptions(1));
  const many = createRunner(compareRunnerOptions(threads));
  const out = { threads, t1: [] as number[], tn: [] as number[], identical: true };
  try {
    const run = async (runner: typeof one): Promise<number> => {
      const t = process.hrtime.bigint();
      const r = await compare(a, b, { runner });
      out.identical &&= r.identical;
      return Number(process.hrtime.bigint() - t) / 1e9;
    };
    await run(one);
    await run(many);
    for (let i = 0; i < reps; i++) {
      // Alternate which goes first, as the main benchmark does.
      if (i % 2 === 0) { out.t1.push(await run(one)); out.tn.push(await run(many)); }
      else { out.tn.push(await run(many)); out.t1.push(await run(one)); }
    }
  } finally {
    await one.close();
    await many.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench-scaling: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
