/** `cairn maintenance get|on|off`: maintenance windows, global or of a zone or an agent. */
import { Option, type Command, type OptionValues } from '@commander-js/extra-typings';
import { seg, type App } from '../app.js';
import { MAINTENANCE } from '../columns.js';

function scopePath(opts: { zone?: string; agent?: string }): string {
  if (opts.zone !== undefined) return `/v1/zones/${seg(opts.zone)}/maintenance`;
  if (opts.agent !== undefined) return `/v1/agents/${seg(opts.agent)}/maintenance`;
  return '/v1/maintenance';
}

function scoped<A extends unknown[], O extends OptionValues, G extends OptionValues>(cmd: Command<A, O, G>) {
  return cmd
    .addOption(new Option('--zone <zone>', 'the window of this zone').conflicts('agent'))
    .addOption(new Option('--agent <id>', 'the window of this agent').conflicts('zone'));
}

export function maintenanceCommands(program: Command, app: App): void {
  const m = program
    .command('maintenance')
    .description('maintenance windows: stop new backups, globally (default), in a zone or on an agent');
  scoped(m.command('get').description('show the maintenance state')).action(async (opts) => {
    app.out().one(await app.client().get(scopePath(opts)), MAINTENANCE);
  });
  scoped(
    m
      .command('on')
      .description('start a maintenance window (sp-admin): backups there fail with its message')
      .option('--message <text>', 'what refused backups say'),
  ).action(async (opts) => {
    const body = { enabled: true, ...(opts.message !== undefined ? { message: opts.message } : {}) };
    app.out().one(await app.client().request('PUT', scopePath(opts), { body }), MAINTENANCE);
  });
  scoped(m.command('off').description('end a maintenance window (sp-admin)')).action(async (opts) => {
    app.out().one(await app.client().request('PUT', scopePath(opts), { body: { enabled: false } }), MAINTENANCE);
  });
}
