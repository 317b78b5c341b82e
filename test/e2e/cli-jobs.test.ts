/**
 * The `cairn` CLI's second slice, the built binary against a real control plane and a real
 * dummy-plugin agent: a provider set up, checked and offered, an instance protected, backed up and
 * restored, a backup job made from a file and run, maintenance refusing a backup; each command in
 * JSON and in YAML. A job run whose member fails (exit 1) and its retries; JSON flags given null.
 * And `backup create --wait` under a real terminal, its progress line rewritten.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { CLI, cliEnv, formattedCli, startCli } from '@cairn/test-harness/cli';
import { backends } from '@cairn/test-harness/databases';
import { tempDir } from '@cairn/test-harness/processes';
import { protectInstance } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';

const run = promisify(execFile);

/** Whether util-linux `script` is here to give the CLI a pseudo-terminal. */
async function hasScript(): Promise<boolean> {
  try {
    await run('sh', ['-c', 'command -v script']);
    return true;
  } catch {
    console.warn('util-linux script is not installed: the terminal test is skipped');
    return false;
  }
}

describe.each(backends)('the cairn CLI: providers, offerings, restores and jobs (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ name: 'host-1' }] });
  let api: Api;
  let env: Record<string, string>;

  const cairn = (args: string[]) => startCli(args, env).done;

  beforeAll(async () => {
    const { cp } = stack;
    api = stack.admin;
    env = { CAIRN_URL: cp.url, CAIRN_TOKEN: cp.adminToken, CAIRN_CONFIG: path.join(tempDir('cli-jobs'), 'c.yaml') };
  });

  it.each(['json', 'yaml'] as const)(
    'provider → preflight → offering → protect → backup → restore → job run → maintenance, with -o %s',
    { timeout: 600_000 },
    async (format) => {
      const { parse, ok, refused } = formattedCli(format, env);
      const zone = ['--zone', 'zone-a'];
      const store = tempDir('cli-dummy-store');

      const enrollment = await ok(['enrollment', 'create', '--zone', 'zone-b', '--ttl', '600']);
      expect(enrollment).toMatchObject({ zone: 'zone-b', token: expect.any(String) });

      // A provider connection, checked.
      const config = JSON.stringify({ durationMs: 400, steps: 2, storeDir: store });
      const prv = await ok(
        ['provider', 'create', `dummy-${format}`, ...zone, '--plugin', '@cairn/plugin-dummy', '--config', config],
        0,
      );
      expect(prv).toMatchObject({ name: `dummy-${format}`, plugin: '@cairn/plugin-dummy', hasCredentials: false });
      expect((await ok(['provider', 'list', ...zone])).items).toContainEqual(expect.objectContaining({ id: prv.id }));
      expect(await ok(['provider', 'describe', prv.id, ...zone])).toMatchObject({ id: prv.id, config: { steps: 2 } });
      const updated = await ok([
        'provider',
        'update',
        prv.id,
        ...zone,
        '--credentials',
        '{"secret":"s3cret"}',
        '--tenant-locators',
        'any',
      ]);
      expect(updated).toMatchObject({ id: prv.id, hasCredentials: true, tenantLocators: 'any' });
      const pre = await ok(['provider', 'preflight', prv.id, ...zone]);
      expect(pre).toMatchObject({ ok: true, task: { kind: 'preflight', state: 'succeeded' } });
      expect(pre.checks.map((c: { name: string }) => c.name)).toEqual(['config-valid', 'store-writable']);
      // A failing check: exit 1, the checks still printed, the count on stderr.
      const failing = await cairn([
        ...['provider', 'preflight', prv.id, ...zone, '-o', format],
        ...['--locator', '{"dummy":{"failPreflight":"store-writable"}}'],
      ]);
      expect(failing.code, failing.stderr).toBe(1);
      expect(parse(failing.stdout).checks).toContainEqual(
        expect.objectContaining({ name: 'store-writable', ok: false, advice: expect.any(String) }),
      );
      expect(failing.stderr).toContain('preflight: 1 of 2 checks failed');

      // Offerings: the provider's own, one imported, a native one to back up with.
      const own = await ok(['offering', 'list-provider', prv.id, ...zone]);
      expect(own.items.map((o: { externalId: string }) => o.externalId)).toEqual(['dummy-gold', 'dummy-silver']);
      const silver = await ok(['offering', 'import', prv.id, 'dummy-silver', ...zone, '--name', `silver-${format}`]);
      expect(silver).toMatchObject({ externalId: 'dummy-silver', allowAdhoc: false, providerId: prv.id });
      const native = await ok([
        ...['offering', 'import', prv.id, ...zone, '--name', `native-${format}`],
        ...['--allow-adhoc', '--allow-user-schedules', '--min-interval', '3600'],
      ]);
      expect(native).toMatchObject({ externalId: null, allowAdhoc: true, minUserScheduleIntervalS: 3600 });
      expect((await ok(['offering', 'list'])).items).toContainEqual(expect.objectContaining({ id: native.id }));
      expect(await ok(['offering', 'describe', silver.id])).toMatchObject({ id: silver.id, name: `silver-${format}` });
      expect(
        await ok(['offering', 'update', silver.id, '--description', 'second tier', '--allow-adhoc', '--no-sla']),
      ).toMatchObject({ description: 'second tier', allowAdhoc: true, allowUserSchedules: false, sla: null });
      const tenant = await api.expect(201, 'POST', '/v1/tenants', { name: `cli-jobs-${format}-${backend}` });
      expect(await ok(['offering', 'grant', silver.id, '--tenant', tenant.id])).toEqual({
        offeringId: silver.id,
        tenantId: tenant.id,
      });
      expect(await ok(['offering', 'revoke', silver.id, '--tenant', tenant.id])).toMatchObject({ revoked: true });
      expect(await ok(['offering', 'delete', silver.id])).toEqual({ id: silver.id, deleted: true });

      // An instance protected, scheduled, backed up and restored.
      const ins = await api.expect(201, 'POST', '/v1/instances', { name: `vm-${format}`, zone: 'zone-a', locator: {} });
      expect(await ok(['instance', 'protect', ins.id, '--offering', native.id])).toMatchObject({
        id: ins.id,
        offeringId: native.id,
      });
      const cron = ['--cron', '0 3 * * *', '--timezone', 'Europe/Berlin', '--keep-last', '3'];
      expect(await ok(['instance', 'schedule', 'set', ins.id, ...cron])).toMatchObject({
        instanceId: ins.id,
        keepLast: 3,
      });
      expect(await ok(['instance', 'schedule', 'get', ins.id])).toMatchObject({ timezone: 'Europe/Berlin' });
      expect(await ok(['instance', 'schedule', 'delete', ins.id])).toEqual({ id: ins.id, deleted: true });
      expect((await cairn(['instance', 'schedule', 'get', ins.id])).code).toBe(4);
      const backup = await ok(['backup', 'create', ins.id, '--wait']);
      expect(backup).toMatchObject({ kind: 'backup', state: 'succeeded', backupId: expect.any(String) });
      const restore = await ok(['backup', 'restore', backup.backupId, '--wait']);
      expect(restore).toMatchObject({ kind: 'restore', state: 'succeeded', backupId: backup.backupId });
      const other = await api.expect(201, 'POST', '/v1/instances', {
        name: `vm2-${format}`,
        zone: 'zone-a',
        locator: {},
      });
      expect(
        await ok([
          ...['backup', 'restore-volume', backup.backupId, '--volume', 'disk-1'],
          ...['--target-instance', other.id, '--wait'],
        ]),
      ).toMatchObject({ kind: 'restore-volume', state: 'succeeded' });

      // The provider's housekeeping.
      expect(await ok(['provider', 'sync', prv.id, ...zone, '--wait'])).toMatchObject({
        kind: 'sync',
        state: 'succeeded',
      });
      expect(await ok(['provider', 'drift', prv.id, ...zone])).toMatchObject({
        providerId: prv.id,
        counts: { known: 1, vanished: 0 },
      });
      expect(await ok(['provider', 'prune', prv.id, ...zone, '--wait'])).toMatchObject({
        kind: 'prune',
        state: 'succeeded',
      });

      // A backup job from a file: the server's field errors named; then run and waited for.
      const dir = tempDir('cli-job-file');
      const file = path.join(dir, format === 'json' ? 'job.json' : 'job.yaml');
      const job = { name: `nightly-${format}`, instanceIds: [ins.id], mode: 'FULL', execution: 'SEQUENTIAL' };
      const bad = path.join(dir, 'bad.yaml');
      fs.writeFileSync(bad, `name: bad\ninstanceIds: [ins_00000000000000000000000000]\nmode: FULL\nexecution: NOW\n`);
      const badErr = await refused(['job', 'create', '-f', bad]);
      expect(badErr).toMatch(/HTTP 400/);
      expect(badErr).toMatch(/^ {2}execution: /m);
      fs.writeFileSync(
        file,
        format === 'json'
          ? JSON.stringify(job)
          : `name: ${job.name}\ninstanceIds:\n  - ${ins.id}\nmode: FULL\nexecution: SEQUENTIAL\n`,
      );
      const created = await ok(['job', 'create', '-f', file, '--keep-last', '5']);
      expect(created).toMatchObject({ ...job, keepLast: 5, locked: false });
      expect((await ok(['job', 'list'])).items).toContainEqual(expect.objectContaining({ id: created.id }));
      const found = (await ok(['job', 'list', '--search', `NIGHTLY-${format}`])).items;
      expect(found.map((j: { id: string }) => j.id)).toEqual([created.id]);
      expect((await ok(['job', 'list', '--search', `no-such-${format}`])).items).toEqual([]);
      const instances = (await ok(['instance', 'list', '--search', ins.id])).items;
      expect(instances.map((i: { id: string }) => i.id)).toEqual([ins.id]);
      const ran = await ok(['job', 'run', created.id, '--wait']);
      expect(ran).toMatchObject({ state: 'succeeded', members: [{ instanceId: ins.id, set: 'UPDATED' }] });
      expect(await ok(['job', 'describe', created.id])).toMatchObject({ sets: { updated: [ins.id] } });
      const plain = await cairn(['job', 'describe', created.id]);
      expect(plain.stdout).toMatch(new RegExp(`^1\\s+${ins.id}\\s+UPDATED$`, 'm'));
      expect((await ok(['job', 'runs', created.id])).items).toEqual([expect.objectContaining({ id: ran.id })]);
      expect(await refused(['job', 'retry', created.id])).toContain('nothing_to_retry');
      expect(await refused(['job', 'cancel', created.id])).toContain('job_not_running');
      const sched = await ok(['job', 'schedule', 'add', created.id, '--cron', '0 4 * * *', '--end-after', '3']);
      expect(sched).toMatchObject({ cron: '0 4 * * *', end: { afterRuns: 3 }, runs: 0 });
      expect(
        await ok(['job', 'schedule', 'update', created.id, sched.id, '--cron', '0 5 * * *', '--no-end']),
      ).toMatchObject({
        cron: '0 5 * * *',
        end: null,
      });
      expect(await ok(['job', 'schedule', 'delete', created.id, sched.id])).toEqual({ id: sched.id, deleted: true });
      expect(await ok(['job', 'priority', created.id, '60'])).toMatchObject({ priority: 60 });
      expect(
        await ok(['job', 'update', created.id, '--name', `renamed-${format}`, '--fs-freeze', 'AGENT']),
      ).toMatchObject({
        name: `renamed-${format}`,
        fsFreeze: 'AGENT',
      });
      expect(await ok(['job', 'lock', created.id])).toMatchObject({ locked: true });
      expect(await refused(['job', 'run', created.id])).toContain('job_locked');
      expect(await ok(['job', 'unlock', created.id])).toMatchObject({ locked: false });

      // Maintenance refuses a backup and a job's run: exit 3 with the window's message.
      await ok(['maintenance', 'on', '--message', `disk swap ${format}`]);
      try {
        const jobErr = await refused(['job', 'run', created.id, '--wait']);
        expect(jobErr).toContain(`disk swap ${format}`);
        expect(jobErr).toContain('(maintenance, HTTP 503)');
        const backupErr = await refused(['backup', 'create', ins.id, '--wait']);
        expect(backupErr).toContain(`disk swap ${format}`);
      } finally {
        await ok(['maintenance', 'off']);
      }
      expect(await ok(['job', 'delete', created.id])).toEqual({ id: created.id, deleted: true });

      // Quotas.
      const quotas = await ok(['quota', 'get', tenant.id]);
      expect(quotas.instances).toMatchObject({ limit: quotas.instances.default, used: 0 });
      const set = await ok(['quota', 'set', tenant.id, 'instances=5', 'jobs=default']);
      expect(set).toMatchObject({ instances: { limit: 5 }, jobs: { limit: quotas.jobs.default } });
      expect(await refused(['quota', 'set', tenant.id, 'bogus=1'])).toMatch(/HTTP 400/);
      expect((await cairn(['quota', 'set', tenant.id, 'instances=many'])).code).toBe(2);

      // Unprotect keeps the restore points; a provider no offering uses is deleted.
      expect(await ok(['instance', 'unprotect', ins.id])).toEqual({ items: [], nextCursor: null });
      const spare = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
        name: `spare-${format}`,
        plugin: '@cairn/plugin-dummy',
      });
      expect(await ok(['provider', 'delete', spare.id, ...zone])).toEqual({ id: spare.id, deleted: true });
    },
  );

  /** Runs `cairn args -o json`, expects exit 0, answers the parsed stdout. */
  const okJson = async (args: string[]): Promise<any> => {
    const r = await cairn([...args, '-o', 'json']);
    expect(r, `cairn ${args.join(' ')}: ${r.stderr}`).toMatchObject({ code: 0 });
    return JSON.parse(r.stdout);
  };

  it('a JSON flag given null sends null where the API clears the field with it; elsewhere, and for a value not of its shape, exit 2 naming the flag, nothing sent', async () => {
    const zone = ['--zone', 'zone-a'];
    const prv = await okJson([
      ...['provider', 'create', `nulls-${backend}`, ...zone, '--plugin', '@cairn/plugin-dummy'],
      ...['--config', '{"steps":1}', '--credentials', '{"secret":"s3cret"}'],
    ]);
    expect(prv).toMatchObject({ hasCredentials: true });
    const cleared = await okJson(['provider', 'update', prv.id, ...zone, '--credentials', 'null']);
    expect(cleared).toMatchObject({ hasCredentials: false, config: { steps: 1 } });
    // An export target: set on create, cleared with --no-export-to.
    const exporter = await okJson([
      ...['provider', 'create', `exporter-${backend}`, ...zone, '--plugin', '@cairn/plugin-dummy'],
      ...['--export-to', prv.id],
    ]);
    expect(exporter.exportTo).toBe(prv.id);
    expect(await okJson(['provider', 'update', exporter.id, ...zone, '--no-export-to'])).toMatchObject({
      exportTo: null,
    });
    expect(await okJson(['provider', 'update', exporter.id, ...zone, '--export-to', prv.id])).toMatchObject({
      exportTo: prv.id,
    });
    await okJson(['provider', 'update', exporter.id, ...zone, '--no-export-to']);
    const sla = '{"cron":"0 2 * * *","keepLast":3}';
    const offering = await okJson(['offering', 'import', prv.id, ...zone, '--name', `nulls-${backend}`, '--sla', sla]);
    expect(offering.sla).toEqual(JSON.parse(sla));
    expect(await okJson(['offering', 'update', offering.id, '--sla', 'null'])).toMatchObject({ sla: null });
    // '{}' is an object: sent, and the server names the SLA's missing fields.
    const empty = await cairn(['offering', 'update', offering.id, '--sla', '{}']);
    expect(empty.code, empty.stderr).toBe(3);
    expect(empty.stderr).toMatch(/^ {2}sla\.cron: /m);

    const before = await okJson(['provider', 'describe', prv.id, ...zone]);
    const preflights = async () => (await api.expect(200, 'GET', '/v1/tasks?kind=preflight&limit=500')).items.length;
    const preflightsBefore = await preflights();
    for (const [args, flag] of [
      [['provider', 'update', prv.id, ...zone, '--config', 'null'], '--config <json>'],
      [['provider', 'update', prv.id, ...zone, '--config', '5'], '--config <json>'],
      [['provider', 'update', prv.id, ...zone, '--config', 'true'], '--config <json>'],
      [['provider', 'update', prv.id, ...zone, '--credentials', '{secret: 1}'], '--credentials <json>'],
      [['provider', 'update', prv.id, ...zone, '--credentials', '"s3cret"'], '--credentials <json>'],
      [['offering', 'update', offering.id, '--sla', '[]'], '--sla <json>'],
      [['instance', 'create', `vm-null-${backend}`, ...zone, '--locator', 'null'], '--locator <json>'],
      [['provider', 'preflight', prv.id, ...zone, '--locator', 'null'], '--locator <json>'],
    ] as const) {
      const r = await cairn([...args]);
      expect(r, `cairn ${args.join(' ')}: ${r.stderr}`).toMatchObject({ code: 2, stdout: '' });
      expect(r.stderr).toContain(`option '${flag}' argument`);
    }
    // Nothing reached the server: the connection as it was, no instance made, no preflight run.
    expect(await okJson(['provider', 'describe', prv.id, ...zone])).toEqual(before);
    const names = (await okJson(['instance', 'list', '--all'])).items.map((i: { name: string }) => i.name);
    expect(names).not.toContain(`vm-null-${backend}`);
    expect(await preflights()).toBe(preflightsBefore);
  });

  it('job run --wait ends 1 when a member ends in ERROR, naming it and its error; job retry --wait runs it again', async () => {
    const fast = { durationMs: 100, steps: 1 };
    const good = await protectInstance(api, 'zone-a', { config: fast });
    const bad = await protectInstance(api, 'zone-a', {
      config: { ...fast, failCode: 'DISK_FULL', failMessage: 'the store is full' },
    });
    const job = await api.expect(201, 'POST', '/v1/backup-jobs', {
      name: `failing-${backend}`,
      instanceIds: [good.instanceId, bad.instanceId],
      mode: 'FULL',
      execution: 'SEQUENTIAL',
    });
    const failed = await cairn(['job', 'run', job.id, '--wait', '-o', 'json']);
    expect(failed.code, failed.stderr).toBe(1);
    const run = JSON.parse(failed.stdout);
    expect(run).toMatchObject({
      state: 'failed',
      members: [
        { instanceId: good.instanceId, set: 'UPDATED', error: null },
        { instanceId: bad.instanceId, set: 'ERROR', error: { code: 'DISK_FULL', message: 'the store is full' } },
      ],
    });
    expect(failed.stderr).toContain(`run ${run.id} of job ${job.id} ended failed: 1 of 2 not UPDATED`);
    expect(failed.stderr).toContain(`  ${bad.instanceId}: ERROR DISK_FULL: the store is full`);
    expect(failed.stderr).not.toContain(good.instanceId);

    // A retry runs the member in ERROR alone: still failing, exit 1 again…
    const again = await cairn(['job', 'retry', job.id, '--wait', '-o', 'json']);
    expect(again.code, again.stderr).toBe(1);
    const retried = JSON.parse(again.stdout);
    expect(retried).toMatchObject({
      trigger: 'retry',
      state: 'failed',
      members: [{ instanceId: bad.instanceId, set: 'ERROR', error: { code: 'DISK_FULL' } }],
    });
    expect(retried.id).not.toBe(run.id);
    expect(again.stderr).toContain(`  ${bad.instanceId}: ERROR DISK_FULL: the store is full`);

    // …and once its provider is mended, exit 0 with every instance UPDATED.
    await okJson(['provider', 'update', bad.providerId, '--zone', 'zone-a', '--config', JSON.stringify(fast)]);
    const mended = await cairn(['job', 'retry', job.id, '--wait', '-o', 'json']);
    expect(mended.code, mended.stderr).toBe(0);
    expect(JSON.parse(mended.stdout)).toMatchObject({
      trigger: 'retry',
      state: 'succeeded',
      members: [{ instanceId: bad.instanceId, set: 'UPDATED', error: null }],
    });
    const { sets } = await okJson(['job', 'describe', job.id]);
    expect([...sets.updated].sort()).toEqual([good.instanceId, bad.instanceId].sort());
    expect(sets.error).toEqual([]);
  });

  it('backup create --wait on a terminal rewrites one progress line, through at least two percentages', async (ctx) => {
    if (!(await hasScript())) return ctx.skip();
    const slow = await protectInstance(api, 'zone-a', { config: { durationMs: 6000, steps: 6 } });
    const cmd = [process.execPath, CLI, 'backup', 'create', slow.instanceId, '--wait']
      .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
      .join(' ');
    // util-linux script: the command gets a pseudo-terminal; -e answers its exit code.
    const r = await run('script', ['-q', '-e', '-c', cmd, '/dev/null'], {
      env: cliEnv({ ...env, TERM: 'xterm', COLUMNS: '120' }),
      timeout: 120_000,
    });
    const percents = new Set([...r.stdout.matchAll(/ running (\d+)%/g)].map((m) => m[1]));
    expect(percents.size, r.stdout).toBeGreaterThanOrEqual(2);
    // The line is rewritten in place, and the outcome ends it.
    expect(r.stdout).toContain('\r\x1b[K');
    expect(r.stdout).toMatch(/tsk_\S+: \S*succeeded/);
  });
});
