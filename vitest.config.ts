import { defineConfig } from 'vitest/config';

const all = ['devices/test/**/*.test.ts', 'hub/test/**/*.test.ts', 'simulators/test/**/*.test.ts', 'console/test/**/*.test.ts'];
// Browser, ffmpeg and RTSP tests measure time-bound behaviour ("a playlist within
// 10 s", "a popup within 2 s"); on a 2-core machine they run after the rest, one
// file at a time, so they do not compete with each other for the CPU.
const heavy = ['**/*.e2e.test.ts', 'simulators/test/demo.test.ts'];

// Timeouts only guard against a hang: a hub starting on PGlite takes a second on a
// quiet machine and can take a minute on a 2-core machine shared with other work.
const shared = { testTimeout: 120_000, hookTimeout: 300_000, pool: 'forks' as const };

export default defineConfig({
  test: {
    projects: [
      { test: { ...shared, name: 'unit', include: all, exclude: ['**/node_modules/**', ...heavy], maxWorkers: 2, sequence: { groupOrder: 0 } } },
      { test: { ...shared, name: 'e2e', include: heavy, exclude: ['**/node_modules/**'], maxWorkers: 1, fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
