/**
 * The `cairn` CLI, the built binary run as a child process against a real control plane and a
 * real dummy-plugin agent: contexts, every command in JSON and YAML, waiting, and exit codes.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { Api } from '@cairn/test-harness/api';
import { formattedCli, startCli } from '@cairn/test-harness/cli';
import { backends } from '@cairn/test-harness/databases';
import { tempDir, type ControlPlaneProc } from '@cairn/test-harness/processes';
import { protectInstance } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const start = startCli;

/** A port nothing listens on (taken from the kernel, then let go). */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe.each(backends)('the cairn CLI (%s)', (backend) => {
  const stack = withStack(backend, { agents: [{ name: 'host-1' }] });
  let cp: ControlPlaneProc;
  let api: Api;
  let agentId: string;
  let configDir: string;
  let configFile: string;
  /** An instance in zone-a, where the agent runs: its backups succeed. */
  let instanceId: string;
  /** An instance in a zone no agent serves: its backups stay queued. */
  let strandedId: string;

  const cairn = (args: string[], env: Record<string, string> = {}) =>
    start(args, { CAIRN_CONFIG: configFile, ...env }).done;
  const json = (args: string[]) => formattedCli('json', { CAIRN_CONFIG: configFile }).ok(args);

  beforeAll(async () => {
    cp = stack.cp;
    api = stack.admin;
    agentId = stack.agent.agentId;
    configDir = path.join(tempDir('cli'), 'nested', 'cairn');
    configFile = path.join(configDir, 'config.yaml');
    instanceId = (await protectInstance(api, 'zone-a', { config: { durationMs: 300, steps: 3 } })).instanceId;
    strandedId = (await protectInstance(api, 'zone-nobody')).instanceId;
  });

  it('login checks the token and writes a 0600 config file in a 0700 directory; contexts switch', async () => {
    const bad = await cairn(['login', '--url', cp.url, '--token', 'not-a-token', '--context', 'admin']);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/unauthorized/);
    expect(fs.existsSync(configFile)).toBe(false);

    const login = await cairn(['login', '--url', cp.url, '--token', cp.adminToken, '--context', 'admin']);
    expect(login, login.stderr).toMatchObject({ code: 0 });
    expect(fs.statSync(configFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(configDir).mode & 0o777).toBe(0o700);
    expect(parseYaml(fs.readFileSync(configFile, 'utf8'))).toEqual({
      currentContext: 'admin',
      contexts: { admin: { url: cp.url, token: cp.adminToken } },
    });

    // A tenant's admin token, saved as a second context through login.
    const tenant = await json(['tenant', 'create', `cli-acme-${backend}`]);
    const token = await json(['token', 'create', '--tenant', tenant.id, '--name', 'ops', '--role', 'tenant-admin']);
    expect(token.token).toEqual(expect.any(String));
    expect((await cairn(['login', '--url', cp.url, '--token', token.token, '--context', 'acme'])).code).toBe(0);
    expect(fs.statSync(configFile).mode & 0o777).toBe(0o600);

    const contexts = await json(['context', 'list']);
    expect(contexts.items).toEqual([
      { name: 'admin', url: cp.url, current: false },
      { name: 'acme', url: cp.url, current: true },
    ]);
    // The tenant's token may not list tenants; the admin context may, by flag or after `use`.
    const refused = await cairn(['tenant', 'list']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/forbidden/);
    expect((await json(['tenant', 'list', '--context', 'admin'])).items).toContainEqual(
      expect.objectContaining({ id: tenant.id }),
    );
    expect((await cairn(['context', 'use', 'admin'])).code).toBe(0);
    expect((await json(['tenant', 'list'])).items).toContainEqual(expect.objectContaining({ id: tenant.id }));
    // CAIRN_URL and CAIRN_TOKEN override the context.
    const overridden = await cairn(['tenant', 'list'], { CAIRN_TOKEN: token.token });
    expect(overridden.code).toBe(3);
    expect((await cairn(['context', 'use', 'nope'])).code).toBe(4);

    // A file others may read is read, with a warning naming it.
    fs.chmodSync(configFile, 0o644);
    const warned = await cairn(['context', 'list']);
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain(`config file ${configFile}`);
    expect(warned.stderr).toContain('chmod 600');
    fs.chmodSync(configFile, 0o600);
  });

  it('a bad config file is a usage error naming the file and the field', async () => {
    const file = path.join(tempDir('cli-bad'), 'config.yaml');
    fs.writeFileSync(file, 'currentContext: x\ncontexts:\n  x:\n    url: ftp://example\n    token: t\n', {
      mode: 0o600,
    });
    const r = await start(['tenant', 'list'], { CAIRN_CONFIG: file }).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`config file ${file}: contexts.x.url: must be an http:// or https:// URL`);
    expect(r.stdout).toBe('');
  });

  // Each command once per format; the machine may be loaded, so the freeze guard is generous.
  it.each(['json', 'yaml'] as const)(
    'answers every command with -o %s, parsed as such',
    { timeout: 300_000 },
    async (format) => {
      const done = await json(['backup', 'create', instanceId, '--wait']);
      const backupId: string = done.backupId;
      const tenantName = `fmt-${format}-${backend}`;
      let tenantId = '';
      let newTask = '';
      const isList = (v: any) => expect(v).toMatchObject({ items: expect.any(Array) });
      const commands: [string[], (v: any) => void][] = [
        [['context', 'list'], isList],
        [['tenant', 'create', tenantName], (v) => (tenantId = v.id) && expect(v.name).toBe(tenantName)],
        [['tenant', 'list', '--all'], (v) => expect(v.items).toContainEqual(expect.objectContaining({ id: tenantId }))],
        [['tenant', 'describe', '@tenant'], (v) => expect(v).toMatchObject({ id: tenantId, name: tenantName })],
        [['token', 'create', '--tenant', '@tenant', '--name', 'ci'], (v) => expect(v.role).toBe('tenant-user')],
        [['token', 'list', '--tenant', '@tenant'], (v) => expect(v.items).toHaveLength(1)],
        [['agent', 'list'], (v) => expect(v.items).toContainEqual(expect.objectContaining({ id: agentId }))],
        [['agent', 'describe', agentId], (v) => expect(v).toMatchObject({ id: agentId, state: 'connected' })],
        [
          ['instance', 'create', `vm-${format}`, '--zone', 'zone-a', '--locator', '{"vm":"x"}'],
          (v) => expect(v).toMatchObject({ name: `vm-${format}`, locator: { vm: 'x' } }),
        ],
        [['instance', 'list'], (v) => expect(v.items).toContainEqual(expect.objectContaining({ id: instanceId }))],
        [['instance', 'describe', instanceId], (v) => expect(v.id).toBe(instanceId)],
        [['backup', 'create', strandedId], (v) => (newTask = v.id) && expect(v.state).toBe('queued')],
        [['backup', 'list', '--instance', instanceId], (v) => expect(v.items[0]).toMatchObject({ instanceId })],
        [['backup', 'describe', backupId], (v) => expect(v).toMatchObject({ id: backupId, instanceId })],
        [['task', 'list', '--kind', 'backup', '--limit', '2'], (v) => expect(v.items).toHaveLength(2)],
        [['task', 'describe', done.id], (v) => expect(v).toMatchObject({ id: done.id, state: 'succeeded' })],
        [['task', 'watch', done.id], (v) => expect(v).toMatchObject({ id: done.id, state: 'succeeded' })],
        [['task', 'cancel', '@task'], (v) => expect(v).toMatchObject({ id: newTask, state: 'cancelled' })],
        [['event', 'list', '--after', '0'], (v) => expect(v.items.length).toBeGreaterThan(0)],
        [['maintenance', 'get'], (v) => expect(v).toMatchObject({ scope: 'global', enabled: false })],
        [
          ['maintenance', 'on', '--zone', 'zone-nobody', '--message', 'm'],
          (v) => expect(v).toMatchObject({ enabled: true }),
        ],
        [
          ['maintenance', 'off', '--zone', 'zone-nobody'],
          (v) => expect(v).toMatchObject({ scope: 'zone', enabled: false }),
        ],
        [['maintenance', 'get', '--agent', agentId], (v) => expect(v).toMatchObject({ scope: 'agent', agentId })],
        [['login', '--url', cp.url, '--token', cp.adminToken, '--context', format], (v) => expect(v.name).toBe(format)],
        [['context', 'use', 'admin'], (v) => expect(v).toMatchObject({ name: 'admin', current: true })],
        [['context', 'delete', format], (v) => expect(v).toMatchObject({ name: format, current: false })],
        // Last: it removes the restore point (through its delete-backup task).
        [['backup', 'delete', backupId], (v) => expect(v).toMatchObject({ kind: 'delete-backup', backupId })],
      ];
      const cli = formattedCli(format, { CAIRN_CONFIG: configFile });
      for (const [template, check] of commands) {
        check(await cli.ok(template.map((a) => (a === '@tenant' ? tenantId : a === '@task' ? newTask : a))));
      }
    },
  );

  it('event follow prints the stream as JSON lines or YAML documents until Ctrl-C (130)', async () => {
    for (const format of ['json', 'yaml'] as const) {
      const run = start(['event', 'follow', '--after', '0', '-o', format], { CAIRN_CONFIG: configFile });
      let out = '';
      run.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await waitFor(() => out.includes('task.succeeded'), 'the replayed log to reach a succeeded task');
      run.child.kill('SIGINT');
      const r = await run.done;
      expect(r.code).toBe(130);
      const events =
        format === 'json'
          ? r.stdout
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l))
          : parseAllDocuments(r.stdout).map((d) => d.toJS());
      expect(events.length).toBeGreaterThan(1);
      const ids = events.map((e: { id: string }) => Number(e.id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(new Set(ids).size).toBe(ids.length);
    }
  });

  it('backup create --wait follows the task to its end: exit 0 and the succeeded task', async () => {
    const r = await cairn(['backup', 'create', instanceId, '--wait', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const task = JSON.parse(r.stdout);
    expect(task).toMatchObject({ kind: 'backup', state: 'succeeded', instanceId });
    // Not a terminal: one plain line per state seen, ending with the outcome.
    const lines = r.stderr.trim().split('\n');
    expect(lines.at(-1)).toBe(`${task.id}: succeeded`);
    expect(lines.every((l) => /^tsk_\S+: (queued|dispatched|running|succeeded)$/.test(l))).toBe(true);
    // Piped, nothing but text: no escape sequence, no carriage return.
    // eslint-disable-next-line no-control-regex
    expect(r.stdout + r.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
  });

  it('a backup refused by a global maintenance window exits 3 with the API message, nothing on stdout', async () => {
    const on = await cairn(['maintenance', 'on', '--message', 'SAN firmware upgrade until 18:00']);
    expect(on.code, on.stderr).toBe(0);
    try {
      const r = await cairn(['backup', 'create', instanceId, '--wait']);
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('SAN firmware upgrade until 18:00');
      expect(r.stderr).toContain('(maintenance, HTTP 503)');
      expect(r.stderr).toMatch(/task: tsk_/);
    } finally {
      expect((await cairn(['maintenance', 'off'])).code).toBe(0);
    }
  });

  it('bad input prints one line naming the problem, no stack, and the documented exit code', async () => {
    const dir = tempDir('cli-input');
    const malformed = path.join(dir, 'job.yaml');
    fs.writeFileSync(malformed, 'name: [unclosed\n  - : :');
    const notJson = path.join(dir, 'job.json');
    fs.writeFileSync(notJson, '{"name": "x",');
    const cases: [string[], number, RegExp][] = [
      [['task', 'list', '--no-such-flag'], 2, /unknown option '--no-such-flag'/],
      [['frobnicate'], 2, /unknown command 'frobnicate'/],
      [['task', 'describe'], 2, /missing required argument 'id'/],
      [['task', 'list', '--limit', '0'], 2, /--limit/],
      [['-o', 'xml', 'task', 'list'], 2, /'xml' is invalid/],
      [['job', 'create', '-f', malformed], 2, new RegExp(`${malformed}: line 1: not valid YAML`)],
      [['job', 'create', '-f', notJson], 2, new RegExp(`${notJson}: `)],
      [['job', 'create', '-f', path.join(dir, 'missing.yaml')], 2, /missing\.yaml: cannot read/],
      [['task', 'list', '--token', 'cairn_wrong'], 3, /unauthorized/],
    ];
    for (const [args, code, problem] of cases) {
      const r = await cairn(args);
      const what = `cairn ${args.join(' ')}: ${r.stderr}`;
      expect(r.code, what).toBe(code);
      expect(r.stdout, what).toBe('');
      expect(r.stderr.trimEnd().split('\n'), what).toHaveLength(1);
      expect(r.stderr, what).toMatch(problem);
      expect(r.stderr, what).not.toMatch(/^\s+at /m);
    }
    // A command group alone shows its commands (exit 2: nothing was done); --help is a success.
    const group = await cairn(['task']);
    expect(group.code).toBe(2);
    expect(group.stderr).toMatch(/Usage: cairn task/);
    expect((await cairn(['--help'])).code).toBe(0);
  });

  it('a wrong id exits 4', async () => {
    for (const args of [
      ['task', 'describe', 'tsk_00000000000000000000000000'],
      ['instance', 'describe', 'nonsense'],
      ['backup', 'create', 'ins_00000000000000000000000000', '--wait'],
      ['task', 'watch', 'tsk_00000000000000000000000000'],
    ]) {
      const r = await cairn(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(4);
      expect(r.stderr).toMatch(/not_found, HTTP 404/);
      expect(r.stdout).toBe('');
    }
  });

  it('a server that cannot be reached exits 6', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = await cairn(['task', 'list', '--url', url]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain(`cannot reach ${url}`);
    expect((await cairn(['login', '--url', url, '--token', 't', '--context', 'down'])).code).toBe(6);
  });

  it('--timeout on a task that cannot finish exits 5 and says how to watch it', async () => {
    const r = await cairn(['backup', 'create', strandedId, '--wait', '--timeout', '1']);
    expect(r.code).toBe(5);
    const id = /task (tsk_\S+) is still queued/.exec(r.stderr)?.[1];
    expect(id, r.stderr).toBeDefined();
    expect(r.stderr).toContain(`cairn task watch ${id}`);
    const w = await cairn(['task', 'watch', id!, '--timeout', '1']);
    expect(w.code).toBe(5);
    expect((await cairn(['task', 'cancel', id!])).code).toBe(0);
  });

  it('Ctrl-C while waiting exits 130, and the task goes on', async () => {
    const run = start(['backup', 'create', strandedId, '--wait', '--context', 'admin'], { CAIRN_CONFIG: configFile });
    let err = '';
    run.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const id = await waitFor(() => /^(tsk_\S+): queued$/m.exec(err)?.[1], 'the wait to start');
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toContain(`interrupted: task ${id} is still queued on the server; the work goes on.`);
    expect(r.stderr).toContain(`Watch it with: cairn task watch ${id} --context admin`);
    expect(r.stdout).toBe('');
    expect((await api.expect(200, 'GET', `/v1/tasks/${id}`)).state).toBe('queued');
    await api.expect(202, 'POST', `/v1/tasks/${id}/cancel`);
  });

  it('a failed task exits 1 with its error', async () => {
    const failing = await protectInstance(api, 'zone-a', {
      config: { durationMs: 100, steps: 1, failCode: 'DISK_FULL', failMessage: 'datastore ds-1 is full' },
    });
    const r = await cairn(['backup', 'create', failing.instanceId, '--wait', '-o', 'json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ state: 'failed', error: { code: 'DISK_FULL' } });
    expect(r.stderr).toMatch(/task tsk_\S+ failed: DISK_FULL: datastore ds-1 is full/);
  });

  // Last: it restarts the control plane.
  it(
    'event follow resumes after the server restarts: every event once, in order, those made meanwhile too',
    { timeout: 240_000 },
    async () => {
      let out = '';
      let err = '';
      const run = start(['event', 'follow', '-o', 'json'], { CAIRN_CONFIG: configFile });
      run.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      run.child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const lines = () =>
        out
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as { id: string; type: string; data: { zone?: string } });
      const toggle = async (zone: string, through = api) => {
        await through.expect(200, 'PUT', `/v1/zones/${zone}/maintenance`, { enabled: true });
        await through.expect(200, 'PUT', `/v1/zones/${zone}/maintenance`, { enabled: false });
      };
      // Live only: once an event made now shows, the stream is open.
      await waitFor(async () => {
        await toggle('zone-r1');
        return lines().some((e) => e.data?.zone === 'zone-r1');
      }, 'the stream to carry a live event');
      const first = lines()[0]!.id;

      await cp.proc.stop();
      await waitFor(() => err.includes('reconnecting'), 'the client to see the stream end');
      // Events made while the client cannot connect: through a control plane on another port.
      const other = await stack.controlPlane();
      await toggle('zone-r2', stack.adminOf(other));
      await other.proc.stop();
      expect(lines().some((e) => e.data?.zone === 'zone-r2')).toBe(false);
      cp = await stack.controlPlane({ port: cp.port });
      api = stack.adminOf(cp);
      await waitFor(
        () => lines().some((e) => e.data?.zone === 'zone-r2' && e.type === 'maintenance.disabled'),
        'the events made meanwhile',
        90_000,
      );
      expect(err).toContain('reconnected to the event stream');
      await toggle('zone-r3');
      await waitFor(
        () => lines().some((e) => e.data?.zone === 'zone-r3' && e.type === 'maintenance.disabled'),
        'a live event after the reconnect',
      );
      run.child.kill('SIGINT');
      expect((await run.done).code).toBe(130);

      const got = lines().map((e) => e.id);
      const log = await api.expect(200, 'GET', `/v1/events?after=${Number(first) - 1}&limit=500`);
      const upTo = log.items.findIndex((e: { id: string }) => e.id === got.at(-1));
      expect(upTo).toBeGreaterThan(0);
      expect(got).toEqual(log.items.slice(0, upTo + 1).map((e: { id: string }) => e.id));
    },
  );
});
