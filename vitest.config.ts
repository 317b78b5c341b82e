import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'packages/**/src/**/*.test.ts', 'proto/src/**/*.test.ts'],
    // test/lint-fixtures: deliberate lint breaches, linted (not run) by test/lint/boundaries.test.ts
    exclude: ['**/node_modules/**', '**/dist/**', 'test/lint-fixtures/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Vitest's default is one worker fewer than the CPUs: on a 2-core machine one file at a time.
    // Most files spend their time waiting on the processes they start (a control plane, agents,
    // restic), so files run side by side: at least 3 at once, or one per CPU on bigger machines.
    // CAIRN_TEST_WORKERS overrides it.
    maxWorkers: Number(process.env['CAIRN_TEST_WORKERS']) || Math.max(3, availableParallelism()),
    globalSetup: ['test/harness/global-setup.ts'],
  },
});
