#!/usr/bin/env node
/**
 * `cairn`: the command line client of the Cairn control plane. Exit codes are listed in exit.ts
 * and docs/cli.md.
 */
import { Command, CommanderError } from '@commander-js/extra-typings';
import pc from 'picocolors';
import { addGlobalOptions, App } from './app.js';
import { CLI_VERSION } from './client.js';
import { eventCommands } from './commands/events.js';
import { maintenanceCommands } from './commands/maintenance.js';
import { resourceCommands } from './commands/resources.js';
import { sessionCommands } from './commands/session.js';
import { taskCommands } from './commands/tasks.js';
import { CliError, EXIT } from './exit.js';
import { colourFor } from './output.js';

export function buildProgram(app: App) {
  const program = addGlobalOptions(
    new Command('cairn')
      .description('Manage a Cairn backup control plane through its HTTP API.')
      .version(CLI_VERSION)
      .exitOverride()
      .showHelpAfterError()
      .configureHelp({ showGlobalOptions: true }),
  );
  app.bind(program);
  const root = program as unknown as Command;
  sessionCommands(root, app);
  resourceCommands(root, app);
  taskCommands(root, app);
  eventCommands(root, app);
  maintenanceCommands(root, app);
  return program;
}

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
