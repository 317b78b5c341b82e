/**
 * What several command groups share: waiting for a task (`--wait`, `--timeout`), JSON flag values,
 * and what a delete prints.
 */
import { InvalidArgumentError, Option, type Command, type OptionValues } from '@commander-js/extra-typings';
import { intArg, type App } from '../app.js';
import { col } from '../output.js';
import { TASK } from '../columns.js';
import { CliError } from '../exit.js';
import { outcome, waitForTask, type TaskView, type WaitOptions } from '../wait.js';

/** The options of a wait: the command that watches again, and where Ctrl-C finds its message. */
export function waitOptions(app: App, watchCommand: string, timeoutS: number | undefined): WaitOptions {
  return {
    timeoutS,
    watchCommand,
    onInterruptMessage: (m) => (app.interruptMessage = m),
  };
}

/** Waits for a task, prints it as it ended, and ends with the exit code of its outcome. */
export async function waitAndReport(app: App, id: string, timeoutS: number | undefined): Promise<void> {
  const out = app.out();
  const task = await waitForTask(app.client(), out, id, waitOptions(app, app.watchCommand(id), timeoutS));
  out.one(task, TASK);
  const end = outcome(task);
  if (end.message !== undefined) throw new CliError(end.code, end.message);
}

export const timeoutOption = () =>
  new Option('--timeout <seconds>', 'stop waiting after this long (exit 5); the work goes on').argParser(
    intArg(1, 31_536_000),
  );

/** `--wait` and `--timeout S` (which implies it) on a command that starts a task. */
export function waitable<A extends unknown[], O extends OptionValues, G extends OptionValues>(
  cmd: Command<A, O, G>,
  what = 'the task',
) {
  return cmd
    .option('--wait', `wait for ${what} to end; the exit code is its outcome`)
    .addOption(timeoutOption().implies({ wait: true }));
}

/** The task a request started: printed, or with `--wait` followed to its end. */
export async function taskOrWait(
  app: App,
  task: TaskView,
  opts: { wait?: boolean | undefined; timeout?: number | undefined },
): Promise<void> {
  if (!opts.wait) return app.out().one(task, TASK);
  await waitAndReport(app, task.id, opts.timeout);
}

/** A flag value that is JSON (`--locator '{"vm":"web-1"}'`): parsed, or a usage error naming the flag. */
export function jsonArg(value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch (err) {
    throw new InvalidArgumentError(`not JSON: ${(err as Error).message}`);
  }
}

/** What a delete (answered 204, no body) prints: `{id, deleted: true}`. */
export function printDeleted(app: App, what: string, id: string): void {
  const out = app.out();
  out.note(`${what} ${id} deleted`);
  out.one({ id, deleted: true }, [col('ID', 'id'), col('DELETED', 'deleted')]);
}

/** The fields of `opts` that were given, renamed to the API's names: the body of a create or PATCH. */
export function given(opts: Record<string, unknown>, names: Record<string, string>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [flag, field] of Object.entries(names)) if (opts[flag] !== undefined) body[field] = opts[flag];
  return body;
}
