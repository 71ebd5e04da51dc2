import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Vitest's default is one worker less than the cores: on the 2-core CI machine, one file at a time.
// The suite's files spend much of their time waiting on the tools they run (mkfs, ntfs-3g, Sleuth
// Kit, qemu-img, the CLI), so two at a time keeps both cores busy.
const workers = Math.max(2, availableParallelism() - 1);

export default defineConfig({
  test: {
    maxWorkers: workers,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'properties',
          include: ['properties/**/*.prop.ts'],
          testTimeout: 300_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
