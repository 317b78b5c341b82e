#!/usr/bin/env node
/**
 * `cairn-plugin-conformance <package> --config <file>`: runs the conformance checks on a plugin
 * package (an npm name, or a path such as `.`), printing each check as it ends.
 *
 * Exit codes: 0 every check passed (or was skipped); 1 a check failed; 2 bad usage or config
 * (the message names the problem).
 */
import { Command, CommanderError } from 'commander';
import { readConfigFile } from './config.js';
import { formatCheck, formatSummary } from './report.js';
import { ConformanceUsageError, runConformance } from './run.js';

const NAME = 'cairn-plugin-conformance';

function usage(message: string): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  const program = new Command(NAME)
    .description(
      'Checks a Cairn provider plugin: backs sample data up, restores and compares it, cancels, deletes, and tries its confinement to host paths',
    )
    .argument('<package>', 'the plugin: an npm package name, or a path to its package directory')
    .requiredOption('-c, --config <file>', 'JSON config: the provider connection and the locator of {dir}')
    .option('--json', 'print the report as JSON instead of lines')
    .option('--keep', 'keep the work directory (sample data, restores) for a look afterwards')
    .exitOverride((err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : 2))
    .showHelpAfterError('(run with --help for usage)');
  program.parse(argv);
  const [spec] = program.args as [string];
  const flags = program.opts<{ config: string; json?: boolean; keep?: boolean }>();
  const config = await readConfigFile(flags.config);
  const report = await runConformance({
    ...config,
    packageName: spec,
    keepWorkDir: flags.keep === true,
    onCheck: (check) => {
      if (!flags.json) process.stdout.write(`${formatCheck(check)}\n`);
    },
  });
  process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatSummary(report)}\n`);
  return report.ok ? 0 : 1;
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConformanceUsageError) usage(err.message);
    process.stderr.write(`${NAME}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(70);
  },
);
