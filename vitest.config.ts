import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that take longest (over a minute each on a 2-core machine, both stores), longest
 * first. Vitest orders files by the durations of the last run it remembers; a fresh checkout (CI)
 * has none, and then ordered by size one of these could start last and run alone at the end. This
 * is an order only: every file runs, and nothing else changes.
 */
const LONGEST_FIRST = [
  'test/e2e/prune.test.ts',
  'test/e2e/maintenance.test.ts',
  'packages/agent/src/state/wal-crash.test.ts',
  'test/e2e/cli-jobs.test.ts',
  'test/e2e/cli-journey.test.ts',
  'test/e2e/stream-limits.test.ts',
  'test/e2e/event-stream.test.ts',
  'test/e2e/agent-budget.test.ts',
  'test/e2e/cli.test.ts',
  'test/e2e/agent-wire.test.ts',
  'test/e2e/console.test.ts',
  'test/e2e/credentials.test.ts',
  'test/e2e/slow-bodies.test.ts',
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((name) => f.moduleId.endsWith(`/${name}`));
      return i === -1 ? LONGEST_FIRST.length : i;
    };
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
      .map(({ f }) => f);
  }
}

export default defineConfig({
  // JSX is the web console's only (packages/console): compiled for Preact, as its own build does.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  test: {
    // .test.tsx: the web console's component tests (happy-dom, chosen per file).
    include: ['test/**/*.test.ts', 'packages/**/src/**/*.test.{ts,tsx}', 'proto/src/**/*.test.ts'],
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
    sequence: { sequencer: LongestFirst },
  },
});
