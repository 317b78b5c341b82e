import { describe, expect, it } from 'vitest';
import { decideAssign, hostAccessFor, type AssignFacts } from './rules.js';

const base: AssignFacts = {
  taskId: 'tsk_1',
  attempt: 2,
  operation: 'backup',
  plugin: '@cairn/plugin-dummy',
  paramsJson: '{"instanceId":"ins_1","instanceName":"vm1","locator":{},"mode":"FULL"}',
  providerConfigJson: '{"endpoint":null,"config":{"durationMs":10},"credentials":{}}',
  journal: undefined,
  capabilities: ['backup', 'restore'],
  freeSlots: 1,
  drain: { enabled: false, message: '' },
  shuttingDown: false,
};

describe('decideAssign', () => {
  const cases: { name: string; facts: Partial<AssignFacts>; expect: Record<string, unknown> }[] = [
    { name: 'runs a new attempt', facts: {}, expect: { action: 'run', operation: 'backup' } },
    {
      name: 'runs a newer attempt of a task that finished here',
      facts: { journal: { attempt: 1, state: 'finished' } },
      expect: { action: 'run' },
    },
    {
      name: 're-acknowledges the attempt it is running',
      facts: { journal: { attempt: 2, state: 'running' } },
      expect: { action: 're-acknowledge' },
    },
    {
      name: 're-acknowledges even with no free slot and a drain on',
      facts: { journal: { attempt: 2, state: 'running' }, freeSlots: 0, drain: { enabled: true, message: 'm' } },
      expect: { action: 're-acknowledge' },
    },
    {
      name: 'ignores an attempt it already finished',
      facts: { journal: { attempt: 2, state: 'finished' } },
      expect: { action: 'ignore' },
    },
    {
      name: 'ignores an attempt it already rejected',
      facts: { journal: { attempt: 2, state: 'rejected' } },
      expect: { action: 'ignore' },
    },
    {
      name: 'ignores an attempt older than one it knows',
      facts: { journal: { attempt: 3, state: 'running' } },
      expect: { action: 'ignore' },
    },
    { name: 'ignores an assignment without a task id', facts: { taskId: '' }, expect: { action: 'ignore' } },
    { name: 'ignores an assignment without an attempt', facts: { attempt: 0 }, expect: { action: 'ignore' } },
    {
      name: 'supersedes an older attempt still running here',
      facts: { journal: { attempt: 1, state: 'running' }, freeSlots: 0 },
      expect: { action: 'run', supersedes: 1 },
    },
    {
      name: 'rejects a plugin that is not loaded',
      facts: { capabilities: undefined },
      expect: { action: 'reject', reasonCode: 'NO_PLUGIN' },
    },
    {
      name: 'rejects an operation the plugin lacks',
      facts: { operation: 'sync' },
      expect: { action: 'reject', reasonCode: 'UNSUPPORTED_OPERATION' },
    },
    {
      name: 'rejects an operation nobody knows',
      facts: { operation: 'teleport', capabilities: ['backup', 'teleport'] },
      expect: { action: 'reject', reasonCode: 'UNSUPPORTED_OPERATION' },
    },
    {
      name: 'rejects params that do not parse',
      facts: { paramsJson: '{"instanceId":' },
      expect: { action: 'reject', reasonCode: 'BAD_PARAMS' },
    },
    {
      name: 'rejects params that are not an object',
      facts: { paramsJson: '[1,2]' },
      expect: { action: 'reject', reasonCode: 'BAD_PARAMS' },
    },
    {
      name: 'rejects a provider config that does not parse',
      facts: { providerConfigJson: 'nope' },
      expect: { action: 'reject', reasonCode: 'BAD_PARAMS' },
    },
    {
      name: 'refuses a backup while the agent drains, with the drain message',
      facts: { drain: { enabled: true, message: 'disk swap until 18:00' } },
      expect: { action: 'reject', reasonCode: 'DRAINING', message: 'disk swap until 18:00' },
    },
    {
      name: 'runs a restore while the agent drains',
      facts: { operation: 'restore', drain: { enabled: true, message: 'm' } },
      expect: { action: 'run', operation: 'restore' },
    },
    {
      name: 'refuses a schedule change while the agent drains (it reaches the backup system being serviced)',
      facts: {
        operation: 'configure-schedule',
        capabilities: ['backup', 'configure-schedule', 'deconfigure-schedule', 'provider-schedules'],
        drain: { enabled: true, message: 'm' },
      },
      expect: { action: 'reject', reasonCode: 'DRAINING', message: 'm' },
    },
    {
      name: 'refuses a delete and a prune while the agent drains',
      facts: {
        operation: 'delete-backup',
        capabilities: ['backup', 'delete-backup', 'prune'],
        drain: { enabled: true, message: 'array swap' },
      },
      expect: { action: 'reject', reasonCode: 'DRAINING', message: 'array swap' },
    },
    {
      name: 'refuses a prune while the agent drains',
      facts: { operation: 'prune', capabilities: ['prune'], drain: { enabled: true, message: 'm' } },
      expect: { action: 'reject', reasonCode: 'DRAINING', message: 'm' },
    },
    {
      name: 'runs a schedule change of a plugin that lists it',
      facts: {
        operation: 'configure-schedule',
        capabilities: ['backup', 'configure-schedule', 'deconfigure-schedule', 'provider-schedules'],
      },
      expect: { action: 'run', operation: 'configure-schedule' },
    },
    {
      name: 'rejects a schedule change of a plugin that does not list it',
      facts: { operation: 'deconfigure-schedule' },
      expect: { action: 'reject', reasonCode: 'UNSUPPORTED_OPERATION' },
    },
    {
      name: 'refuses any new attempt, restores too, while shutting down',
      facts: { operation: 'restore', shuttingDown: true },
      expect: { action: 'reject', reasonCode: 'SHUTTING_DOWN' },
    },
    {
      name: 'still re-acknowledges the attempt it runs while shutting down',
      facts: { journal: { attempt: 2, state: 'running' }, shuttingDown: true },
      expect: { action: 're-acknowledge' },
    },
    {
      name: 'rejects when every slot is busy',
      facts: { freeSlots: 0 },
      expect: { action: 'reject', reasonCode: 'NO_SLOT' },
    },
    {
      name: 'treats empty params as an empty object',
      facts: { paramsJson: '', operation: 'restore' },
      expect: { action: 'run', params: {} },
    },
  ];

  it.each(cases)('$name', ({ facts, expect: expected }) => {
    expect(decideAssign({ ...base, ...facts })).toMatchObject(expected);
  });

  it('hands the plugin a normalised provider connection', () => {
    const d = decideAssign({ ...base, providerConfigJson: '{"endpoint":"https://x","config":{"a":1}}' });
    expect(d).toMatchObject({
      action: 'run',
      connection: { endpoint: 'https://x', config: { a: 1 }, credentials: {} },
    });
    expect((d as { connection: object }).connection).not.toHaveProperty('identity');
  });

  it('hands the plugin the repository identity the control plane recorded', () => {
    const d = decideAssign({
      ...base,
      providerConfigJson: '{"endpoint":"/srv/repo","config":{},"credentials":{},"identity":"abc123"}',
    });
    expect(d).toMatchObject({ action: 'run', connection: { identity: 'abc123' } });
  });

  const target = {
    plugin: '@cairn/plugin-restic',
    endpoint: '/srv/export',
    config: {},
    credentials: { password: 'p' },
  };
  const withTarget = (exportTo: unknown) =>
    decideAssign({
      ...base,
      providerConfigJson: JSON.stringify({ endpoint: null, config: {}, credentials: {}, exportTo }),
    });

  it('hands the plugin the export target the control plane sent, its identity kept', () => {
    expect(withTarget({ ...target, identity: 'r1' })).toMatchObject({
      action: 'run',
      connection: { exportTo: { ...target, identity: 'r1' } },
    });
    expect((withTarget(null) as { connection: object }).connection).not.toHaveProperty('exportTo');
  });

  it.each([
    ['not an object', 'x', 'provider_config_json.exportTo must be a JSON object'],
    ['a list', [target], 'provider_config_json.exportTo must be a JSON object'],
    [
      'without a plugin',
      { ...target, plugin: undefined },
      'provider_config_json.exportTo.plugin must be a plugin name',
    ],
    ['with an empty plugin', { ...target, plugin: '' }, 'provider_config_json.exportTo.plugin must be a plugin name'],
    [
      'with a numeric endpoint',
      { ...target, endpoint: 7 },
      'provider_config_json.exportTo.endpoint must be a string or null',
    ],
    ['without config', { ...target, config: undefined }, 'provider_config_json.exportTo.config must be a JSON object'],
    [
      'with credentials a string',
      { ...target, credentials: 'pw' },
      'provider_config_json.exportTo.credentials must be a JSON object',
    ],
    ['with a numeric identity', { ...target, identity: 1 }, 'provider_config_json.exportTo.identity must be a string'],
    ['a chain', { ...target, exportTo: target }, 'provider_config_json.exportTo.exportTo is not allowed'],
  ])('rejects an export target %s, naming the field', (_, exportTo, message) => {
    const d = withTarget(exportTo);
    expect(d).toMatchObject({ action: 'reject', reasonCode: 'BAD_PARAMS' });
    expect((d as { message: string }).message).toContain(message);
  });
});

describe('hostAccessFor', () => {
  it.each([
    ['names the tenant in a root', 'ten_01h', ['/srv/t/{tenant}', '/shared'], ['/srv/t/ten_01h', '/shared']],
    ['drops a tenant root for a missing tenant', '', ['/srv/t/{tenant}', '/shared'], ['/shared']],
    ['drops a tenant root for an id unfit for a path', '../../etc', ['/srv/t/{tenant}/data'], []],
    ['drops it for a dot id', '..', ['/srv/t/{tenant}'], []],
    ['keeps plain roots', 'ten_1', ['/srv/a/'], ['/srv/a/']],
  ])('%s', (_, tenant, roots, expected) => {
    expect(hostAccessFor(tenant, roots, ['/var/lib/cairn'])).toEqual({ roots: expected, denied: ['/var/lib/cairn'] });
  });
});
