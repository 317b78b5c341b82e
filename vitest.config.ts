import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'packages/**/src/**/*.test.ts', 'proto/src/**/*.test.ts'],
    // test/lint-fixtures: deliberate lint breaches, linted (not run) by test/lint/boundaries.test.ts
    exclude: ['**/node_modules/**', '**/dist/**', 'test/lint-fixtures/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/harness/global-setup.ts'],
  },
});
