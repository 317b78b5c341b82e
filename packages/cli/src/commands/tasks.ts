/** `cairn backup` and `cairn task`: start work, list it, and wait for it to end. */
import { Option, type Command } from '@commander-js/extra-typings';
import { describeCommand, intArg, paging, pagingOptions, seg, type App } from '../app.js';
import { BACKUP, TASK } from '../columns.js';
import { CliError } from '../exit.js';
import { outcome, waitForTask, type TaskView } from '../wait.js';

const TASK_STATES = ['queued', 'dispatched', 'running', 'succeeded', 'failed', 'cancelled', 'lost'] as const;

/** Waits for a task, prints it as it ended, and ends with the exit code of its outcome. */
async function waitAndReport(app: App, id: string, timeoutS: number | undefined): Promise<void> {
  const out = app.out();
  const task = await waitForTask(app.client(), out, id, {
    timeoutS,
    watchCommand: app.watchCommand(id),
    onInterruptMessage: (m) => (app.interruptMessage = m),
  });
  out.one(task, TASK);
  const end = outcome(task);
  if (end.message !== undefined) throw new CliError(end.code, end.message);
}

const timeoutOption = () =>
  new Option('--timeout <seconds>', 'stop waiting after this long (exit 5); the task goes on').argParser(
    intArg(1, 31_536_000),
  );

export function taskCommands(program: Command, app: App): void {
  const backup = program.command('backup').description('restore points, and backups to make them');
  backup
    .command('create')
    .description('back up an instance now (where its offering allows ad-hoc backups)')
    .argument('<instance>', 'the instance id')
    .addOption(new Option('--mode <mode>', 'a full backup or an increment').choices(['FULL', 'INCREMENT'] as const))
    .option('--wait', 'wait for the backup task to end; the exit code is its outcome')
    .addOption(timeoutOption().implies({ wait: true }))
    .action(async (instance, opts) => {
      const task = await app.client().request<TaskView>('POST', `/v1/instances/${seg(instance)}/backups`, {
        body: opts.mode ? { mode: opts.mode } : {},
      });
      if (!opts.wait) return app.out().one(task, TASK);
      await waitAndReport(app, task.id, opts.timeout);
    });
  pagingOptions(
    backup.command('list').description('list restore points').option('--instance <id>', 'of this instance only'),
  ).action(async (opts) => {
    app.out().list(await app.client().list('/v1/backups', { instanceId: opts.instance }, paging(opts)), BACKUP);
  });
  describeCommand(backup, app, 'show a restore point', '/v1/backups');
  backup
    .command('delete')
    .description('delete a restore point through its provider: prints the delete-backup task')
    .argument('<id>')
    .option('--wait', 'wait for the delete task to end; the exit code is its outcome')
    .addOption(timeoutOption().implies({ wait: true }))
    .action(async (id, opts) => {
      const task = await app.client().request<TaskView>('DELETE', `/v1/backups/${seg(id)}`);
      if (!opts.wait) return app.out().one(task, TASK);
      await waitAndReport(app, task.id, opts.timeout);
    });

  const task = program.command('task').description('tasks: the work agents do');
  pagingOptions(
    task
      .command('list')
      .description('list tasks, newest first')
      .addOption(new Option('--state <state>', 'in this state only').choices(TASK_STATES))
      .option('--kind <kind>', 'of this kind only (backup, restore, delete-backup, …)')
      .option('--instance <id>', 'of this instance only'),
  ).action(async (opts) => {
    const query = { state: opts.state, kind: opts.kind, instanceId: opts.instance };
    app.out().list(await app.client().list('/v1/tasks', query, paging(opts)), TASK);
  });
  describeCommand(task, app, 'show a task: state, progress, error, output', '/v1/tasks');
  task
    .command('cancel')
    .description('cancel a task: at once when queued, through the plugin when running')
    .argument('<id>')
    .action(async (id) => {
      app.out().one(await app.client().request('POST', `/v1/tasks/${seg(id)}/cancel`), TASK);
    });
  task
    .command('watch')
    .description('wait for a task to end, showing its state; the exit code is its outcome')
    .argument('<id>')
    .addOption(timeoutOption())
    .action(async (id, opts) => {
      await waitAndReport(app, id, opts.timeout);
    });
}
