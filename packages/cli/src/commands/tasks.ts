/** `cairn backup` and `cairn task`: start work, list it, and wait for it to end. */
import { Option, type Command } from '@commander-js/extra-typings';
import { describeCommand, paging, pagingOptions, seg, type App } from '../app.js';
import { BACKUP, TASK } from '../columns.js';
import type { TaskView } from '../wait.js';
import { taskOrWait, timeoutOption, waitable, waitAndReport } from './common.js';

const TASK_STATES = ['queued', 'dispatched', 'running', 'succeeded', 'failed', 'cancelled', 'lost'] as const;

export function taskCommands(program: Command, app: App): void {
  const backup = program.command('backup').description('restore points, and backups to make them');
  waitable(
    backup
      .command('create')
      .description('back up an instance now (where its offering allows ad-hoc backups)')
      .argument('<instance>', 'the instance id')
      .addOption(new Option('--mode <mode>', 'a full backup or an increment').choices(['FULL', 'INCREMENT'] as const)),
    'the backup task',
  ).action(async (instance, opts) => {
    const task = await app.client().request<TaskView>('POST', `/v1/instances/${seg(instance)}/backups`, {
      body: opts.mode ? { mode: opts.mode } : {},
    });
    await taskOrWait(app, task, opts);
  });
  pagingOptions(
    backup.command('list').description('list restore points').option('--instance <id>', 'of this instance only'),
  ).action(async (opts) => {
    app.out().list(await app.client().list('/v1/backups', { instanceId: opts.instance }, paging(opts)), BACKUP);
  });
  describeCommand(backup, app, 'show a restore point', '/v1/backups');
  waitable(
    backup
      .command('delete')
      .description('delete a restore point through its provider: prints the delete-backup task')
      .argument('<id>'),
    'the delete task',
  ).action(async (id, opts) => {
    await taskOrWait(app, await app.client().request<TaskView>('DELETE', `/v1/backups/${seg(id)}`), opts);
  });
  waitable(
    backup
      .command('restore')
      .description(
        'restore a restore point: in place, with --target-path to a path on the agent host, or with --target-namespace into a Kubernetes namespace',
      )
      .argument('<backup>', 'the restore point id')
      .option('--target-path <path>', 'an absolute path on the agent host; the instance is left alone')
      .option(
        '--target-namespace <namespace>',
        'a Kubernetes namespace to restore the claims into (CSI provider, sp-admin); the instance is left alone',
      ),
    'the restore task',
  ).action(async (id, opts) => {
    // Both given go to the server as given: it refuses the pair naming targetNamespace.
    const body = {
      ...(opts.targetPath !== undefined ? { targetPath: opts.targetPath } : {}),
      ...(opts.targetNamespace !== undefined ? { targetNamespace: opts.targetNamespace } : {}),
    };
    await taskOrWait(
      app,
      await app.client().request<TaskView>('POST', `/v1/backups/${seg(id)}/restore`, { body }),
      opts,
    );
  });
  waitable(
    backup
      .command('restore-volume')
      .description('restore one volume of a restore point and attach it to another instance (same tenant and zone)')
      .argument('<backup>', 'the restore point id')
      .requiredOption('--volume <name>', 'the volume to restore (e.g. disk-1)')
      .requiredOption('--target-instance <id>', 'the instance it is attached to'),
    'the restore-volume task',
  ).action(async (id, opts) => {
    const body = { volume: opts.volume, targetInstanceId: opts.targetInstance };
    await taskOrWait(
      app,
      await app.client().request<TaskView>('POST', `/v1/backups/${seg(id)}/restore-volume`, { body }),
      opts,
    );
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
