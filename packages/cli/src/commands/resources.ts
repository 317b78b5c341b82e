/** `cairn tenant`, `token`, `agent` and `instance`: lists, creates and views of the API's objects. */
import { Option, type Command } from '@commander-js/extra-typings';
import { describeCommand, paging, pagingOptions, seg, type App } from '../app.js';
import { AGENT, INSTANCE, NEW_TOKEN, TENANT, TOKEN } from '../columns.js';
import { CliError, EXIT } from '../exit.js';
import type { Page } from '../client.js';

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
  pagingOptions(instance.command('list').description('list the instances')).action(async (opts) => {
    const page: Page<unknown> = await app.client().list('/v1/instances', {}, paging(opts));
    app.out().list(page, INSTANCE);
  });
  instance
    .command('create')
    .description('create an instance')
    .argument('<name>')
    .requiredOption('--zone <zone>', 'the zone it lives in')
    .requiredOption('--locator <json>', 'what the plugin needs to find it, as JSON (e.g. \'{"vm":"web-1"}\')')
    .option('--agent <id>', 'pin it to this agent')
    .option('--tenant <id>', 'create it for this tenant (sp-admin)')
    .action(async (name, opts) => {
      let locator: unknown;
      try {
        locator = JSON.parse(opts.locator);
      } catch (err) {
        throw new CliError(EXIT.usage, `--locator: not JSON: ${(err as Error).message}`);
      }
      const body = {
        name,
        zone: opts.zone,
        locator,
        ...(opts.agent !== undefined ? { agentId: opts.agent } : {}),
        ...(opts.tenant !== undefined ? { tenantId: opts.tenant } : {}),
      };
      app.out().one(await app.client().request('POST', '/v1/instances', { body }), INSTANCE);
    });
  describeCommand(instance, app, 'show an instance', '/v1/instances');
}
