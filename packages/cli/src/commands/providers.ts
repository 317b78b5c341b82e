/** `cairn enrollment`, `provider` and `offering`: what the service provider sets up (sp-admin). */
import { Option, type Command, type OptionValues } from '@commander-js/extra-typings';
import { describeCommand, intArg, paging, pagingOptions, seg, type App } from '../app.js';
import { CHECK, ENROLLMENT, GRANT, OFFERING, PROVIDER, PROVIDER_OFFERING, ROOTS } from '../columns.js';
import { CliError, EXIT } from '../exit.js';
import { outcome, waitForTask, type TaskView } from '../wait.js';
import { given, jsonArg, printDeleted, taskOrWait, waitable, waitOptions } from './common.js';

const TENANT_LOCATORS = ['sp-only', 'granted-roots', 'any'] as const;

interface Preflight {
  ok: boolean;
  checks: { name: string; ok: boolean; message: string; advice?: string }[];
  task: TaskView;
}

/** A command on one provider connection: `<id>` and `--zone`. */
function onProvider(group: Command, name: string, description: string) {
  return group
    .command(name)
    .description(description)
    .argument('<id>', 'the provider connection id')
    .requiredOption('--zone <zone>', 'the zone of the connection');
}

const providerPath = (zone: string, id?: string) =>
  `/v1/zones/${seg(zone)}/providers${id !== undefined ? `/${seg(id)}` : ''}`;

/** The flags a provider connection is created and changed with. */
function providerFields<A extends unknown[], O extends OptionValues, G extends OptionValues>(cmd: Command<A, O, G>) {
  return cmd
    .option('--endpoint <url>', 'where the backup system is (e.g. a restic repository URL)')
    .option('--config <json>', 'plugin settings, a JSON object', jsonArg({ shape: 'object' }))
    .option(
      '--credentials <json>',
      'write-only secrets, a JSON object (never shown again); null removes them',
      jsonArg({ shape: 'object', nullable: true }),
    )
    .addOption(
      new Option('--tenant-locators <who>', 'who may set the locators used through it').choices(TENANT_LOCATORS),
    )
    .option('--export-to <id>', 'another connection of the zone it exports its backups into (CSI: a restic one)');
}

const PROVIDER_FIELDS = {
  endpoint: 'endpoint',
  config: 'config',
  credentials: 'credentials',
  tenantLocators: 'tenantLocators',
  exportTo: 'exportTo',
};

/** The flags of an offering's policy; on `update` a flag left out keeps the value. */
/** The body fields of an offering's flags; `--no-sla` is `sla: null`. */
function offeringBody(opts: Record<string, unknown>): Record<string, unknown> {
  const body = given(opts, OFFERING_FIELDS);
  if (opts['sla'] === false) body['sla'] = null;
  return body;
}

function offeringFields<A extends unknown[], O extends OptionValues, G extends OptionValues>(cmd: Command<A, O, G>) {
  return cmd
    .option('--description <text>', 'what the offering is, for tenants')
    .option('--allow-adhoc', 'tenants may back up now (cairn backup create)')
    .option('--no-allow-adhoc', 'tenants may not back up ad hoc')
    .option('--allow-user-schedules', 'tenants may set their own schedules')
    .option('--no-allow-user-schedules', 'tenants may not set their own schedules')
    .option('--min-interval <seconds>', "the fewest seconds between fires of a tenant's schedule", intArg(60, 86_400))
    .option(
      '--sla <json>',
      'the SLA, {"cron", "timezone"?, "keepLast", "rpoMinutes"?} (Cairn or the provider runs it); null: none',
      jsonArg({ shape: 'object', nullable: true }),
    )
    .option('--no-sla', 'no SLA');
}

const OFFERING_FIELDS = {
  name: 'name',
  description: 'description',
  allowAdhoc: 'allowAdhoc',
  allowUserSchedules: 'allowUserSchedules',
  minInterval: 'minUserScheduleIntervalS',
  sla: 'sla',
};

export function providerCommands(program: Command, app: App): void {
  program
    .command('enrollment')
    .description('one-time tokens that enroll agents (sp-admin)')
    .command('create')
    .description('create an enrollment token for an agent of a zone; it is shown only this once')
    .requiredOption('--zone <zone>', 'the zone the agent serves')
    .option('--ttl <seconds>', 'how long the token is valid (60 s to 30 days; default 1 day)', intArg(60, 2_592_000))
    .action(async (opts) => {
      const body = { zone: opts.zone, ...(opts.ttl !== undefined ? { ttlSeconds: opts.ttl } : {}) };
      const created = await app.client().request('POST', '/v1/agent-enrollments', { body });
      const out = app.out();
      out.note('the token is shown only this once: give it to cairn-agent enroll --token');
      out.one(created, ENROLLMENT);
    });

  const provider = program.command('provider').description('provider connections of a zone (sp-admin)');
  providerFields(
    provider
      .command('create')
      .description('create a provider connection: a plugin and where its backup system is')
      .argument('<name>')
      .requiredOption('--zone <zone>', 'the zone it serves')
      .requiredOption('--plugin <name>', 'the plugin that talks to it (e.g. @cairn/plugin-restic)'),
  ).action(async (name, opts) => {
    const body = { name, plugin: opts.plugin, ...given(opts, PROVIDER_FIELDS) };
    app.out().one(await app.client().request('POST', providerPath(opts.zone), { body }), PROVIDER);
  });
  pagingOptions(
    provider
      .command('list')
      .description('list the provider connections of a zone')
      .requiredOption('--zone <zone>', 'the zone'),
  ).action(async (opts) => {
    app.out().list(await app.client().list(providerPath(opts.zone), {}, paging(opts)), PROVIDER);
  });
  onProvider(provider, 'describe', 'show a provider connection').action(async (id, opts) => {
    app.out().detail(await app.client().get(providerPath(opts.zone, id)));
  });
  providerFields(
    onProvider(provider, 'update', 'change a provider connection (the plugin cannot change); applies to future tasks')
      .option('--name <name>', 'a new name')
      .option('--forget-repository-identity', 'forget the recorded repository identity (after moving it on purpose)')
      .option('--no-export-to', 'export nowhere'),
  ).action(async (id, opts) => {
    // `--no-export-to` is declared before `--export-to <id>`: given neither, commander says true.
    const { exportTo, ...rest } = opts;
    const body = {
      ...given(rest, { name: 'name', ...PROVIDER_FIELDS }),
      ...(opts.forgetRepositoryIdentity ? { repositoryIdentity: null } : {}),
      ...(typeof exportTo === 'string' ? { exportTo } : exportTo === false ? { exportTo: null } : {}),
    };
    app.out().one(await app.client().request('PATCH', providerPath(opts.zone, id), { body }), PROVIDER);
  });
  onProvider(provider, 'delete', 'delete a provider connection (refused while an offering uses it)').action(
    async (id, opts) => {
      await app.client().request('DELETE', providerPath(opts.zone, id));
      printDeleted(app, 'provider connection', id);
    },
  );
  onProvider(provider, 'preflight', "run the plugin's checks on an agent of the zone; exit 1 when one fails")
    .option('--locator <json>', "check this instance's locator too (any JSON but null)", jsonArg({ shape: 'value' }))
    .option('--initialise', "create the connection's repository if it does not exist yet (restic's first run)")
    .action(async (id, opts) => {
      const body = {
        ...(opts.locator !== undefined ? { locator: opts.locator } : {}),
        ...(opts.initialise ? { initialise: true } : {}),
      };
      const client = app.client();
      const out = app.out();
      const first = await client.request<Preflight | { task: TaskView }>(
        'POST',
        `${providerPath(opts.zone, id)}/preflight`,
        { body },
      );
      let answer: Preflight;
      if ('checks' in first) answer = first;
      else {
        // Past the server's wait: the task goes on; its output holds the checks once it succeeded.
        const id = first.task.id;
        const task = await waitForTask(client, out, id, waitOptions(app, app.watchCommand(id), undefined));
        const end = outcome(task);
        if (end.message !== undefined) throw new CliError(end.code, end.message);
        answer = { ...(task['output'] as Omit<Preflight, 'task'>), task };
      }
      if (out.structured) out.data(answer);
      else out.table(answer.checks, CHECK);
      const failed = answer.checks.filter((c) => !c.ok).length;
      if (!answer.ok) throw new CliError(EXIT.failed, `preflight: ${failed} of ${answer.checks.length} checks failed`);
    });
  waitable(
    onProvider(provider, 'sync', 'compare the restore points the provider holds with the records: a sync task').option(
      '--confirm',
      'let this sync mark vanished what a held sync would not',
    ),
    'the sync task',
  ).action(async (id, opts) => {
    const path = `${providerPath(opts.zone, id)}/sync${opts.confirm ? '?confirm=true' : ''}`;
    await taskOrWait(app, await app.client().request<TaskView>('POST', path), opts);
  });
  onProvider(provider, 'drift', 'show the drift report of the last applied sync').action(async (id, opts) => {
    app.out().detail(await app.client().get(`${providerPath(opts.zone, id)}/drift`));
  });
  const roots = provider
    .command('roots')
    .description(
      'the host roots a tenant may name in its locators and restore targets (--tenant-locators granted-roots)',
    );
  const rootsPath = (zone: string, id: string, tenant: string) =>
    `${providerPath(zone, id)}/tenant-roots/${seg(tenant)}`;
  onProvider(roots, 'get', 'show the roots granted to a tenant on the connection (none: an empty list)')
    .requiredOption('--tenant <id>', 'the tenant')
    .action(async (id, opts) => {
      app.out().one(await app.client().get(rootsPath(opts.zone, id, opts.tenant)), ROOTS);
    });
  onProvider(roots, 'set', "replace a tenant's roots on the connection with ROOT… (absolute directories)")
    .argument('[roots...]', "absolute directories on the agents' hosts")
    .requiredOption('--tenant <id>', 'the tenant')
    .option('--none', 'withdraw every root of the tenant')
    .action(async (id, list, opts) => {
      if (list.length === 0 && !opts.none)
        throw new CliError(EXIT.usage, 'name at least one root, or --none to withdraw them all');
      if (list.length > 0 && opts.none) throw new CliError(EXIT.usage, 'give roots or --none, not both');
      const body = { roots: list };
      app.out().one(await app.client().request('PUT', rootsPath(opts.zone, id, opts.tenant), { body }), ROOTS);
    });
  waitable(
    onProvider(provider, 'prune', "free the data of deleted restore points (locks the provider's repository)"),
    'the prune task',
  ).action(async (id, opts) => {
    await taskOrWait(app, await app.client().request<TaskView>('POST', `${providerPath(opts.zone, id)}/prune`), opts);
  });

  const offering = program.command('offering').description('offerings: what tenants protect instances with');
  onProvider(offering, 'list-provider', 'list the offerings a provider connection exposes (asks its plugin)').action(
    async (id, opts) => {
      const page = await app
        .client()
        .get<{ items: unknown[]; taskId: string }>(`${providerPath(opts.zone, id)}/offerings`);
      const out = app.out();
      if (out.structured) return out.data(page);
      out.table(page.items as Record<string, unknown>[], PROVIDER_OFFERING);
    },
  );
  offeringFields(
    offering
      .command('import')
      .description(
        "make an offering of a provider's offering (EXTERNAL_ID, from list-provider), or without it a native one whose schedule Cairn runs; the creator's tenant is granted it",
      )
      .argument('<provider>', 'the provider connection id')
      .argument('[external-id]', "the provider's offering")
      .requiredOption('--zone <zone>', 'the zone of the provider connection')
      .requiredOption('--name <name>', 'its name for tenants'),
  ).action(async (providerId, externalId, opts) => {
    const body = {
      zone: opts.zone,
      providerId,
      ...(externalId !== undefined ? { externalId } : {}),
      allowAdhoc: false,
      allowUserSchedules: false,
      ...offeringBody(opts),
    };
    app.out().one(await app.client().request('POST', '/v1/offerings', { body }), OFFERING);
  });
  pagingOptions(offering.command('list').description('list the offerings (a tenant: those granted to it)')).action(
    async (opts) => {
      app.out().list(await app.client().list('/v1/offerings', {}, paging(opts)), OFFERING);
    },
  );
  describeCommand(offering, app, 'show an offering', '/v1/offerings');
  offeringFields(
    offering
      .command('update')
      .description("change an offering's name or policy (not its zone or provider)")
      .argument('<id>')
      .option('--name <name>', 'a new name'),
  ).action(async (id, opts) => {
    const body = offeringBody(opts);
    app.out().one(await app.client().request('PATCH', `/v1/offerings/${seg(id)}`, { body }), OFFERING);
  });
  offering
    .command('delete')
    .description('delete an offering')
    .argument('<id>')
    .action(async (id) => {
      await app.client().request('DELETE', `/v1/offerings/${seg(id)}`);
      printDeleted(app, 'offering', id);
    });
  offering
    .command('grant')
    .description('let a tenant use an offering')
    .argument('<id>', 'the offering id')
    .requiredOption('--tenant <id>', 'the tenant')
    .action(async (id, opts) => {
      const body = { tenantId: opts.tenant };
      app.out().one(await app.client().request('POST', `/v1/offerings/${seg(id)}/grants`, { body }), GRANT);
    });
  offering
    .command('revoke')
    .description("withdraw a tenant's grant of an offering")
    .argument('<id>', 'the offering id')
    .requiredOption('--tenant <id>', 'the tenant')
    .action(async (id, opts) => {
      await app.client().request('DELETE', `/v1/offerings/${seg(id)}/grants/${seg(opts.tenant)}`);
      const out = app.out();
      out.note(`tenant ${opts.tenant} may no longer use offering ${id}`);
      out.one({ offeringId: id, tenantId: opts.tenant, revoked: true }, GRANT);
    });
}
