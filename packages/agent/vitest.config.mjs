import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The agent's own tests, runnable without the repository-wide harness:
//   npx vitest run --config packages/agent/vitest.config.mjs
// (.mjs: the repository typecheck and lint projects do not cover package-level configs)
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  test: {
    include: ['src/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
