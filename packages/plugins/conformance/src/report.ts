import type { CheckResult, ConformanceReport } from './run.js';

const LABEL = { pass: 'PASS', fail: 'FAIL', skip: 'SKIP' } as const;

/** One check as one line: `FAIL cancel: did not stop within 300 ms after cancel`. */
export function formatCheck(check: CheckResult): string {
  return `${LABEL[check.status]} ${check.name}: ${check.reason}`;
}

/** The closing line of a report: `12 passed, 1 failed, 7 skipped`. */
export function formatSummary(report: ConformanceReport): string {
  const { pass, fail, skip } = report.counts;
  const plugin = report.plugin ? `${report.plugin.name} ${report.plugin.version}: ` : '';
  return `${plugin}${pass} passed, ${fail} failed, ${skip} skipped`;
}

/** The whole report as text, one line a check and the summary. */
export function formatReport(report: ConformanceReport): string {
  return [...report.checks.map(formatCheck), formatSummary(report)].join('\n');
}
