/**
 * The first hour of a new SP admin, through the built `cairn` binary only, against a real control
 * plane and a real agent running the restic plugin: log in, make a tenant and its token, enroll
 * an agent, set up a restic connection (no repository yet, then the preflight that creates it),
 * offer it, grant the tenant a root; then the tenant protects a directory of its own, backs it up,
 * restores it to a new path (compared byte for byte), runs a backup job from a file, and meets a
 * maintenance window. The whole journey runs once with `-o json` and once with `-o yaml`, each
 * output read back in its format, in a zone of its own on one control plane per backend.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { formattedCli } from '@cairn/test-harness/cli';
import { backends } from '@cairn/test-harness/databases';
import { treeDigest } from '@cairn/test-harness/files';
import { runAgentCommand, type ControlPlaneProc } from '@cairn/test-harness/processes';
import { hasRestic } from '@cairn/test-harness/restic';
import { withStack } from '@cairn/test-harness/stack';

const PASSWORD = 'e2e-journey-password-8e0f';

describe.runIf(hasRestic).each(backends)('the first hour through the cairn CLI, with restic (%s)', (backend) => {
  const stack = withStack(backend);
  let cp: ControlPlaneProc;
  const work = stack.tempDir('cli-journey');
  /** Each tenant's files live below its own directory; the agent allows a task only its tenant's. */
  const tenants = path.join(work, 'tenants');
  const config = path.join(work, 'cli', 'config.yaml');

  beforeAll(() => {
    fs.mkdirSync(tenants);
    cp = stack.cp;
  });

  it.each(['json', 'yaml'] as const)(
    'from login to a restore and a job run, -o %s',
    { timeout: 600_000 },
    async (format) => {
      const cli = formattedCli(format, { CAIRN_CONFIG: config });
      const { ok, refused } = cli;
      const zone = `journey-${format}`;
      const sp = ['--context', `sp-${format}`];
      const inZone = ['--zone', zone];

      // The SP admin logs in; a tenant, its admin token, and a context of the tenant's own.
      expect(await ok(['login', '--url', cp.url, '--token', cp.adminToken, '--context', `sp-${format}`])).toMatchObject(
        {
          name: `sp-${format}`,
          current: true,
        },
      );
      const tenant = await ok(['tenant', 'create', `acme-${format}-${backend}`]);
      const token = await ok(['token', 'create', '--tenant', tenant.id, '--name', 'ops', '--role', 'tenant-admin']);
      expect(token).toMatchObject({ tenantId: tenant.id, role: 'tenant-admin', token: expect.any(String) });
      expect(await ok(['login', '--url', cp.url, '--token', token.token, '--context', `acme-${format}`])).toMatchObject(
        { name: `acme-${format}`, current: true },
      );

      // An agent for the zone, enrolled with a one-time token; a task reaches only its tenant's directory.
      const enrollment = await ok(['enrollment', 'create', ...inZone, ...sp]);
      const stateDir = stack.tempDir('journey-agent');
      const enrolled = await runAgentCommand([
        ...['enroll', '--server', cp.url, '--token', enrollment.token],
        ...['--state-dir', stateDir, '--name', `host-${format}`],
      ]);
      expect(enrolled.exitCode, enrolled.stderr.join('\n')).toBe(0);
      await stack.runAgent(stateDir, {
        plugins: '@cairn/plugin-restic',
        args: ['--roots', path.join(tenants, '{tenant}')],
      });
      const agent = (await ok(['agent', 'list', ...sp])).items.find(
        (a: { name: string }) => a.name === `host-${format}`,
      );
      expect(await ok(['agent', 'describe', agent.id, ...sp])).toMatchObject({ zone, state: 'connected' });

      // A restic connection on a path where there is no repository yet: one story until it is made.
      const repository = path.join(work, 'repositories', format);
      const provider = await ok([
        ...['provider', 'create', `restic-${format}`, ...inZone, '--plugin', '@cairn/plugin-restic'],
        ...['--endpoint', repository, '--credentials', JSON.stringify({ password: PASSWORD })],
        ...['--tenant-locators', 'granted-roots', ...sp],
      ]);
      expect(provider).toMatchObject({
        hasCredentials: true,
        repositoryIdentity: null,
        tenantLocators: 'granted-roots',
      });
      const before = await cli.run(['provider', 'preflight', provider.id, ...inZone, ...sp]);
      expect(before.code, before.stderr).toBe(1);
      expect(before.stderr).toMatch(/preflight: 1 of \d+ checks failed/);
      expect(cli.parse(before.stdout).checks).toContainEqual(
        expect.objectContaining({ name: 'repository', ok: false, advice: expect.stringContaining('initialise') }),
      );
      expect(await ok(['provider', 'sync', provider.id, ...inZone, '--wait', ...sp])).toMatchObject({
        kind: 'sync',
        state: 'succeeded',
        progress: { message: expect.stringMatching(/^no repository yet/) },
      });
      const drift = await ok(['provider', 'drift', provider.id, ...inZone, ...sp]);
      expect(drift.noRepository.message).toMatch(/^no repository yet: .*Create it with POST .*preflight/);
      expect(fs.existsSync(repository)).toBe(false);
      const made = await ok(['provider', 'preflight', provider.id, ...inZone, '--initialise', ...sp]);
      expect(made).toMatchObject({ ok: true, task: { kind: 'preflight', state: 'succeeded' } });
      expect(made.checks).toContainEqual(
        expect.objectContaining({ name: 'repository', ok: true, message: expect.stringContaining('initialised it') }),
      );
      expect((await ok(['provider', 'describe', provider.id, ...inZone, ...sp])).repositoryIdentity).toEqual(
        expect.any(String),
      );

      // Offered to the tenant, with its own directory as the root it may name.
      const offered = await ok(['offering', 'list-provider', provider.id, ...inZone, ...sp]);
      expect(offered.items.map((o: { externalId: string }) => o.externalId)).toContain('restic-daily-7');
      const offering = await ok([
        ...['offering', 'import', provider.id, 'restic-daily-7', ...inZone],
        ...['--name', `daily-${format}`, '--allow-adhoc', ...sp],
      ]);
      expect(offering).toMatchObject({ externalId: 'restic-daily-7', allowAdhoc: true });
      expect(await ok(['offering', 'grant', offering.id, '--tenant', tenant.id, ...sp])).toEqual({
        offeringId: offering.id,
        tenantId: tenant.id,
      });
      const home = path.join(tenants, tenant.id);
      const roots = ['provider', 'roots', 'set', provider.id, ...inZone, '--tenant', tenant.id, ...sp];
      const granted = { providerId: provider.id, tenantId: tenant.id, roots: [home] };
      expect(await ok([...roots, home])).toEqual(granted);
      // A root that is not absolute is refused, naming it; none at all is a usage error; neither changes a thing.
      expect(await refused([...roots, 'tenants/acme'])).toMatch(/^ {2}roots\.0: .*absolute/m);
      const none = await cli.run(roots);
      expect(none).toMatchObject({ code: 2, stdout: '' });
      expect(none.stderr).toContain('name at least one root, or --none to withdraw them all');
      expect(await ok(['provider', 'roots', 'get', provider.id, ...inZone, '--tenant', tenant.id, ...sp])).toEqual(
        granted,
      );

      // The tenant, in its own context, protects its web root.
      const www = path.join(home, 'www');
      fs.mkdirSync(path.join(www, 'assets'), { recursive: true });
      fs.writeFileSync(path.join(www, 'index.html'), `<h1>${format}</h1>\n`);
      fs.writeFileSync(path.join(www, 'assets', 'logo.bin'), randomBytes(200 * 1024));
      fs.writeFileSync(path.join(www, 'assets', 'empty.txt'), '');
      const locator = JSON.stringify({ paths: [www] });
      const instance = await ok([
        'instance',
        'create',
        `www-${format}`,
        ...inZone,
        '--locator',
        locator,
        '--agent',
        agent.id,
      ]);
      expect(instance).toMatchObject({ tenantId: tenant.id, locatorSetBy: 'tenant', agentId: agent.id });
      expect(await ok(['instance', 'protect', instance.id, '--offering', offering.id])).toMatchObject({
        offeringId: offering.id,
      });

      // Backed up, and restored to a new path: the same bytes.
      const backup = await ok(['backup', 'create', instance.id, '--wait']);
      expect(backup).toMatchObject({ kind: 'backup', state: 'succeeded', backupId: expect.any(String) });
      const target = path.join(home, `restored-${format}`);
      const restore = await ok(['backup', 'restore', backup.backupId, '--target-path', target, '--wait']);
      expect(restore).toMatchObject({ kind: 'restore', state: 'succeeded', backupId: backup.backupId });
      expect(treeDigest(path.join(target, www))).toEqual(treeDigest(www));

      // A backup job from a file, run and waited for.
      const jobFile = path.join(work, `job-${format}.yaml`);
      fs.writeFileSync(
        jobFile,
        `name: nightly-${format}\ninstanceIds:\n  - ${instance.id}\nmode: FULL\nexecution: SEQUENTIAL\n`,
      );
      const job = await ok(['job', 'create', '-f', jobFile]);
      expect(job).toMatchObject({ name: `nightly-${format}`, instanceIds: [instance.id] });
      const ran = await ok(['job', 'run', job.id, '--wait']);
      expect(ran).toMatchObject({ state: 'succeeded', members: [{ instanceId: instance.id, set: 'UPDATED' }] });

      // A maintenance window of the zone refuses the tenant's backup; once it ends, backups work again.
      const message = `repository disk swap (${format})`;
      expect(await ok(['maintenance', 'on', ...inZone, '--message', message, ...sp])).toMatchObject({
        scope: 'zone',
        enabled: true,
      });
      const held = await refused(['backup', 'create', instance.id, '--wait']);
      expect(held).toContain(message);
      expect(held).toContain('(maintenance, HTTP 503)');
      expect(await ok(['maintenance', 'off', ...inZone, ...sp])).toMatchObject({ scope: 'zone', enabled: false });
      expect(await ok(['backup', 'create', instance.id, '--wait'])).toMatchObject({ state: 'succeeded' });
      expect((await ok(['backup', 'list', '--instance', instance.id])).items).toHaveLength(3);
    },
  );
});
