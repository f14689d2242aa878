import { defineConfig } from 'vitest/config';

// One config for every workspace. Hub tests bind real ports and start real
// databases, so files run in parallel forks but tests inside a file in order.
export default defineConfig({
  test: {
    include: ['devices/test/**/*.test.ts', 'hub/test/**/*.test.ts', 'simulators/test/**/*.test.ts', 'console/test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    fileParallelism: true,
  },
});
