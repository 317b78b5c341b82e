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

/**
 * A JSON flag's `null`, until the body is built: commander stores a parser's `null` as `''`, so
 * `--sla null` would reach the API as `"sla": ""`. `given` turns it back into `null`.
 */
export const JSON_NULL = Symbol('JSON null');

/** What a JSON flag takes: a JSON object, or any JSON value; `null` (to clear a field) only where the API takes it. */
export interface JsonShape {
  shape: 'object' | 'value';
  nullable?: boolean;
}

/**
 * The parser of a flag whose value is JSON (`--locator '{"vm":"web-1"}'`): the value, checked for
 * the shape the API takes, or a usage error (exit 2, commander names the flag) before any request.
 * A `null` it takes comes back as JSON_NULL.
 *
 * @example new Option('--sla <json>').argParser(jsonArg({ shape: 'object', nullable: true }))
 */
export function jsonArg({ shape, nullable = false }: JsonShape) {
  const expected =
    shape === 'object'
      ? `a JSON object such as '{"key":"value"}'${nullable ? ', or null to clear it' : ''}`
      : 'any JSON value but null';
  return (value: string): unknown => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value) as unknown;
    } catch (err) {
      throw new InvalidArgumentError(`not JSON (${(err as Error).message}): write ${expected}`);
    }
    if (parsed === null) {
      if (nullable) return JSON_NULL;
      throw new InvalidArgumentError(`null is not taken here: write ${expected}`);
    }
    if (shape === 'object' && (typeof parsed !== 'object' || Array.isArray(parsed)))
      throw new InvalidArgumentError(`not a JSON object: write ${expected}`);
    return parsed;
  };
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
  for (const [flag, field] of Object.entries(names))
    if (opts[flag] !== undefined) body[field] = opts[flag] === JSON_NULL ? null : opts[flag];
  return body;
}
