/** `cairn tenant`, `token`, `agent`, `instance` and `quota`: lists, creates and views of the API's objects. */
import { Option, type Command } from '@commander-js/extra-typings';
import { describeCommand, intArg, paging, pagingOptions, seg, type App } from '../app.js';
import { AGENT, INSTANCE, NEW_TOKEN, QUOTA, SCHEDULE, TASK, TENANT, TOKEN } from '../columns.js';
import { CliError, EXIT } from '../exit.js';
import type { Page } from '../client.js';
import type { TaskView } from '../wait.js';
import { jsonArg, printDeleted, taskOrWait, waitable } from './common.js';

const ROLES = ['sp-admin', 'tenant-admin', 'tenant-user'] as const;

export function resourceCommands(program: Command, app: App): void {
  const tenant = program.command('tenant').description('tenants (sp-admin)');
  pagingOptions(tenant.command('list').description('list the tenants')).action(async (opts) => {
    app.out().list(await app.client().list('/v1/tenants', {}, paging(opts)), TENANT);
  });
  tenant
    .command('create')
    .description('create a tenant')
    .argument('<name>')
    .action(async (name) => {
      app.out().one(await app.client().request('POST', '/v1/tenants', { body: { name } }), TENANT);
    });
  describeCommand(tenant, app, 'show a tenant', '/v1/tenants');

  const token = program.command('token').description('API tokens of a tenant');
  token
    .command('create')
    .description('create an API token; its secret is shown only this once')
    .requiredOption('--tenant <id>', 'the tenant the token belongs to')
    .requiredOption('--name <name>', 'what the token is for')
    .addOption(new Option('--role <role>', 'what the token may do').choices(ROLES).default('tenant-user' as const))
    .action(async (opts) => {
      const created = await app
        .client()
        .request('POST', `/v1/tenants/${seg(opts.tenant)}/tokens`, { body: { role: opts.role, name: opts.name } });
      const out = app.out();
      out.note('the token is shown only this once: keep it now');
      out.one(created, NEW_TOKEN);
    });
  pagingOptions(
    token
      .command('list')
      .description('list the API tokens of a tenant (never their secrets)')
      .requiredOption('--tenant <id>', 'the tenant'),
  ).action(async (opts) => {
    app.out().list(await app.client().list(`/v1/tenants/${seg(opts.tenant)}/tokens`, {}, paging(opts)), TOKEN);
  });

  const agent = program.command('agent').description('agents (sp-admin)');
  pagingOptions(agent.command('list').description('list the agents')).action(async (opts) => {
    app.out().list(await app.client().list('/v1/agents', {}, paging(opts)), AGENT);
  });
  describeCommand(agent, app, 'show an agent: its plugins, maintenance and credential state', '/v1/agents');

  const instance = program.command('instance').description('instances: the things backed up');
  pagingOptions(
    instance
      .command('list')
      .description('list the instances')
      .option('--search <text>', 'only those whose name contains the text (ignoring case), or whose id it is'),
  ).action(async (opts) => {
    const page: Page<unknown> = await app.client().list('/v1/instances', { q: opts.search }, paging(opts));
    app.out().list(page, INSTANCE);
  });
  instance
    .command('create')
    .description('create an instance')
    .argument('<name>')
    .requiredOption('--zone <zone>', 'the zone it lives in')
    .requiredOption(
      '--locator <json>',
      'what the plugin needs to find it, any JSON but null (e.g. \'{"vm":"web-1"}\')',
      jsonArg({ shape: 'value' }),
    )
    .option('--agent <id>', 'pin it to this agent')
    .option('--tenant <id>', 'create it for this tenant (sp-admin)')
    .action(async (name, opts) => {
      const body = {
        name,
        zone: opts.zone,
        locator: opts.locator,
        ...(opts.agent !== undefined ? { agentId: opts.agent } : {}),
        ...(opts.tenant !== undefined ? { tenantId: opts.tenant } : {}),
      };
      app.out().one(await app.client().request('POST', '/v1/instances', { body }), INSTANCE);
    });
  describeCommand(instance, app, 'show an instance', '/v1/instances');
  waitable(
    instance
      .command('protect')
      .description('put an instance under an offering (granted to its tenant, in its zone)')
      .argument('<id>')
      .requiredOption('--offering <id>', 'the offering'),
    "the provider's configure-schedule task, where it runs the SLA itself",
  ).action(async (id, opts) => {
    const body = { offeringId: opts.offering };
    const answer = await app
      .client()
      .request<Record<string, unknown>>('PUT', `/v1/instances/${seg(id)}/offering`, { body });
    // 202: the provider runs the SLA's schedule itself, and a configure-schedule task tells it.
    if (!('task' in answer)) return app.out().one(answer, INSTANCE);
    app.out().note(`the provider is asked to run the schedule: task ${(answer['task'] as TaskView).id}`);
    await taskOrWait(app, answer['task'] as TaskView, opts);
  });
  instance
    .command('unprotect')
    .description('remove the offering of an instance; its restore points stay unless --force')
    .argument('<id>')
    .option('--force', 'delete its restore points too (a delete-backup task each)')
    .action(async (id, opts) => {
      const path = `/v1/instances/${seg(id)}/offering${opts.force ? '?force=true' : ''}`;
      const answer = await app.client().request<Page<TaskView> | undefined>('DELETE', path);
      app.out().list({ items: answer?.items ?? [], nextCursor: null }, TASK);
    });
  const schedule = instance.command('schedule').description("an instance's own backup schedule (user schedule)");
  schedule
    .command('set')
    .description("set or replace an instance's schedule (where its offering allows user schedules)")
    .argument('<id>', 'the instance id')
    .requiredOption('--cron <expr>', 'when: 5 fields, or 6 with seconds first (e.g. "0 2 * * *")')
    .option('--timezone <tz>', 'IANA time zone of the cron expression', 'UTC')
    .requiredOption('--keep-last <n>', 'restore points kept (1-10000)', intArg(1, 10_000))
    .action(async (id, opts) => {
      const body = { cron: opts.cron, timezone: opts.timezone, keepLast: opts.keepLast };
      app.out().one(await app.client().request('PUT', `/v1/instances/${seg(id)}/schedule`, { body }), SCHEDULE);
    });
  schedule
    .command('get')
    .description("show an instance's schedule (exit 4 when it has none)")
    .argument('<id>', 'the instance id')
    .action(async (id) => {
      app.out().one(await app.client().get(`/v1/instances/${seg(id)}/schedule`), SCHEDULE);
    });
  schedule
    .command('delete')
    .description("remove an instance's schedule")
    .argument('<id>', 'the instance id')
    .action(async (id) => {
      await app.client().request('DELETE', `/v1/instances/${seg(id)}/schedule`);
      printDeleted(app, 'the schedule of instance', id);
    });

  const quota = program.command('quota').description("a tenant's quotas: limits, usage, defaults");
  quota
    .command('get')
    .description("show a tenant's quotas")
    .argument('<tenant>', 'the tenant id')
    .action(async (tenant) => {
      printQuotas(app, await app.client().get(`/v1/tenants/${seg(tenant)}/quotas`));
    });
  quota
    .command('set')
    .description('set quota limits (sp-admin): name=N, or name=default; the others keep theirs')
    .argument('<tenant>', 'the tenant id')
    .argument('<limits...>', 'e.g. instances=50 jobs=default')
    .action(async (tenant, limits) => {
      const body = Object.fromEntries(limits.map(quotaLimit));
      printQuotas(app, await app.client().request('PUT', `/v1/tenants/${seg(tenant)}/quotas`, { body }));
    });
}

/** `name=N` or `name=default` (also `null`): a quota limit to set. */
export function quotaLimit(arg: string): [string, number | null] {
  const m = /^([A-Za-z]+)=(\d+|default|null)$/.exec(arg);
  if (!m)
    throw new CliError(EXIT.usage, `quota limit ${JSON.stringify(arg)}: write name=N (a whole number) or name=default`);
  return [m[1]!, m[2] === 'default' || m[2] === 'null' ? null : Number(m[2])];
}

function printQuotas(app: App, quotas: Record<string, Record<string, unknown>>): void {
  const out = app.out();
  if (out.structured) return out.data(quotas);
  out.table(
    Object.entries(quotas).map(([name, q]) => ({ name, ...q })),
    QUOTA,
  );
}
