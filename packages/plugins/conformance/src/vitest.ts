/**
 * @cairn/plugin-conformance/vitest: the conformance checks as vitest tests, one test a check
 * (a failed check fails its test with the reason, a skipped one is reported skipped with it).
 *
 * @example
 * import { describeConformance } from '@cairn/plugin-conformance/vitest';
 * describeConformance('cairn-plugin-acme', {
 *   packageName: new URL('..', import.meta.url).pathname,
 *   connection: ({ scratch }) => ({ config: { storeDir: `${scratch}/store` } }),
 *   locatorFor: (dir) => ({ path: dir }),
 * });
 */
import { beforeAll, describe, it } from 'vitest';
import { CHECK_NAMES, runConformance, type ConformanceOptions, type ConformanceReport } from './run.js';

export interface DescribeConformanceOptions {
  /** How long the whole run may take. Default 10 minutes. */
  timeoutMs?: number;
}

/**
 * Declares a vitest suite `title` that runs the kit once (in `beforeAll`) and one test per
 * check. `options` may be a function, called when the suite runs.
 */
export function describeConformance(
  title: string,
  options: ConformanceOptions | (() => ConformanceOptions | Promise<ConformanceOptions>),
  { timeoutMs = 10 * 60_000 }: DescribeConformanceOptions = {},
): void {
  describe(title, () => {
    let report: ConformanceReport | undefined;
    beforeAll(async () => {
      report = await runConformance(typeof options === 'function' ? await options() : options);
    }, timeoutMs);
    for (const name of CHECK_NAMES) it(name, (ctx) => settleCheck(report, name, (note) => ctx.skip(note)));
  });
}

/**
 * Ends the test of one check as the check ended: returns when it passed, calls `skip` with the
 * reason when it was skipped, throws the reason when it failed (or the run never reached it).
 */
export function settleCheck(report: ConformanceReport | undefined, name: string, skip: (note: string) => void): void {
  const check = report?.checks.find((c) => c.name === name);
  if (!check) throw new Error(`the conformance run did not reach ${name}`);
  if (check.status === 'skip') skip(check.reason);
  if (check.status === 'fail') throw new Error(`${name}: ${check.reason}`);
}
