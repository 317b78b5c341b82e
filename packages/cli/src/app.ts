/**
 * What every command shares: the global flags, the config file, the output, the API client, and
 * the message Ctrl-C prints while something is waited on.
 */
import { InvalidArgumentError, Option, type Command, type OptionValues } from '@commander-js/extra-typings';
import { Client } from './client.js';
import { configPath, readConfig, resolveTarget, type Config } from './config.js';
import { FORMATS, Output, type Format } from './output.js';

export interface Globals {
  output: Format;
  url?: string | undefined;
  token?: string | undefined;
  context?: string | undefined;
}

export class App {
  /** What Ctrl-C prints before exiting 130: set while a task is waited on. */
  interruptMessage: string | null = null;
  private globalsOf: () => Globals = () => ({ output: 'table' });

  constructor(readonly env: NodeJS.ProcessEnv = process.env) {}

  bind(program: { opts(): Globals }): void {
    this.globalsOf = () => program.opts();
  }

  get globals(): Globals {
    return this.globalsOf();
  }

  get configFile(): string {
    return configPath(this.env);
  }

  readConfig(): Config {
    return readConfig(this.configFile, (line) => process.stderr.write(`${line}\n`));
  }

  out(): Output {
    return new Output(this.globals.output, { stdout: process.stdout, stderr: process.stderr }, this.env);
  }

  client(): Client {
    const g = this.globals;
    return new Client(resolveTarget(g, this.env, this.readConfig(), this.configFile), (line) =>
      process.stderr.write(`${line}\n`),
    );
  }

  /** `cairn <command>` with the flags that chose the server (never the token): to run it again. */
  commandLine(command: string): string {
    const g = this.globals;
    const flags = [
      g.context !== undefined ? ` --context ${g.context}` : '',
      g.url !== undefined ? ` --url ${g.url}` : '',
    ];
    return `cairn ${command}${flags.join('')}`;
  }

  /** The command that watches a task again. */
  watchCommand(taskId: string): string {
    return this.commandLine(`task watch ${taskId}`);
  }
}

/** A whole number in [min, max], for flags such as --limit and --timeout. */
export function intArg(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}`);
    return n;
  };
}

export function addGlobalOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  program: Command<A, O, G>,
) {
  return program
    .addOption(new Option('-o, --output <format>', 'output format').choices(FORMATS).default('table' as Format))
    .option('--url <url>', 'the control plane URL (overrides CAIRN_URL and the context)')
    .option('--token <token>', 'the API token (overrides CAIRN_TOKEN and the context)')
    .option('--context <name>', 'use this context of the config file instead of the current one');
}

/** --limit, --cursor and --all on a list command. */
export function pagingOptions<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
) {
  return cmd
    .option('--limit <n>', 'items per page (1-500; the server’s default is 50)', intArg(1, 500))
    .option('--cursor <cursor>', 'the page after this cursor (a nextCursor of an earlier page)')
    .option('--all', 'every page, following nextCursor');
}

export function paging(opts: { limit?: number; cursor?: string; all?: boolean }) {
  return {
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}),
    ...(opts.all ? { all: true } : {}),
  };
}

/** Path segments from user input are encoded, so an id can never reach another route. */
export const seg = (s: string) => encodeURIComponent(s);

/** `<group> describe ID`: one object of `collection` (`/v1/tasks`) in full. */
export function describeCommand(group: Command, app: App, description: string, collection: string): void {
  group
    .command('describe')
    .description(description)
    .argument('<id>')
    .action(async (id) => {
      app.out().detail(await app.client().get(`${collection}/${seg(id)}`));
    });
}
