#!/usr/bin/env node
import { prestart } from '../dist/src/cli/prestart.js';

// Worker threads, when the command wants them, start before the rest of vhdtool loads.
prestart(process.argv);
const { main } = await import('../dist/src/cli/main.js');

main(process.argv).then((code) => {
  process.exitCode = code;
});
