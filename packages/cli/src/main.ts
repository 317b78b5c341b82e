#!/usr/bin/env node
/**
 * `cairn`: the command line client of the Cairn control plane. Exit codes are listed in exit.ts
 * and docs/cli.md.
 */
import { CommanderError } from '@commander-js/extra-typings';
import pc from 'picocolors';
import { App } from './app.js';
import { CliError, EXIT } from './exit.js';
import { colourFor } from './output.js';
import { buildProgram } from './program.js';

function fail(code: number, message: string): never {
  const red = pc.createColors(colourFor(process.stderr)).red;
  const [first, ...rest] = message.split('\n');
  process.stderr.write([`${red('error:')} ${first}`, ...rest].join('\n') + '\n');
  process.exit(code);
}

async function main(): Promise<void> {
  const app = new App();
  process.on('SIGINT', () => {
    if (process.stderr.isTTY) process.stderr.write('\n');
    process.stderr.write(`interrupted${app.interruptMessage ? `: ${app.interruptMessage}` : ''}\n`);
    process.exit(EXIT.interrupted);
  });
  const program = buildProgram(app);
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    // Commander printed its own message (and the usage); help and --version end with 0.
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
    if (err instanceof CliError) fail(err.code, err.message);
    fail(EXIT.failed, (err as Error)?.stack ?? String(err));
  }
  process.exit(EXIT.ok);
}

await main();
