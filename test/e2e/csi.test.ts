// The CSI provider end to end: a control plane and an agent (real processes) on SQLite and
// MariaDB, the agent's plugin reaching the fake Kubernetes API server through a kubeconfig; with
// an export, its data mover pods run the machine's restic against a repository on this host.
import { startFakeKube, resourceType, type FakeKube } from '@cairn/kube-apiserver-fake';
import plugin from '@cairn/plugin-csi';
import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import type { Proc } from '@cairn/test-harness/processes';
import { backends } from '@cairn/test-harness/databases';
import { formattedCli } from '@cairn/test-harness/cli';
import { hasChromium, launchChromium } from '@cairn/test-harness/browser';
import { treeDigest } from '@cairn/test-harness/files';
import { assignOffering, waitForTask, type TaskBody } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const CSI_PLUGIN = '@cairn/plugin-csi';
const DRIVER = 'hostpath.csi.k8s.io';
const NEVER_DURING_A_TEST = '0 2 1 1 *';
const ENDED = ['succeeded', 'failed', 'cancelled', 'lost'];
const PVC = resourceType('persistentvolumeclaims');
const VS = resourceType('volumesnapshots');
const VSC = resourceType('volumesnapshotcontents');
const NS = resourceType('namespaces');

interface BackupBody {
  id: string;
  externalId: string;
}

async function bound(kube: FakeKube, namespace: string, name: string) {
  await waitFor(
    async () => kube.store.find(PVC, namespace, name)?.status?.['phase'] === 'Bound' || undefined,
    `${namespace}/${name} bound`,
    20_000,
  );
}

async function runTask(api: Api, method: string, url: string, body?: unknown): Promise<TaskBody> {
  const started = await api.expect<TaskBody>(202, method, url, body);
  return waitForTask(api, started.id, ENDED, 60_000);
}

const recordsOf = async (api: Api, instanceId: string) =>
  (await api.expect(200, 'GET', `/v1/backups?instanceId=${instanceId}&limit=500`)).items as BackupBody[];

/** The hostpath StorageClass and its driver's annotated VolumeSnapshotClass, and `namespaces`. */
function cluster(kube: FakeKube, namespaces: string[]) {
  for (const ns of namespaces) kube.put('namespaces', { metadata: { name: ns } });
  kube.put('storageclasses', { metadata: { name: 'hostpath' }, provisioner: DRIVER, reclaimPolicy: 'Delete' });
  kube.put('volumesnapshotclasses', {
    metadata: { name: 'csi-hostpath-snapclass', annotations: { 'cairn.dev/is-snapshot-class': 'true' } },
    driver: DRIVER,
    deletionPolicy: 'Delete',
  });
}

describe.each(backends)('CSI provider end to end (%s)', (backend) => {
  const stack = withStack(backend);
  const work = stack.tempDir('csi-e2e');
  let kube: FakeKube;
  let api: Api;
  let providerId: string;
  let instanceId: string;
  let agentId: string;
  let agent: Proc;
  let stateDir: string;
  let offeringId: string;

  const run = (method: string, url: string, body?: unknown) => runTask(api, method, url, body);
  const records = () => recordsOf(api, instanceId);

  beforeAll(async () => {
    kube = await startFakeKube({ dir: work, snapshotDelayMs: 30 });
    cluster(kube, ['shop', 'elsewhere']);
    for (const name of ['data', 'logs']) {
      kube.put('persistentvolumeclaims', {
        metadata: { name, namespace: 'shop' },
        spec: {
          storageClassName: 'hostpath',
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '1Gi' } },
        },
      });
      await bound(kube, 'shop', name);
      fs.writeFileSync(path.join(kube.controller.volumePath('shop', name), `${name}.txt`), `${name} of the shop\n`);
    }
    api = stack.admin;
    ({ agentId, proc: agent, stateDir } = await stack.addAgent({ name: 'cluster-agent', plugins: CSI_PLUGIN }));
    const provider = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'cluster',
      plugin: CSI_PLUGIN,
      config: { pollIntervalMs: 50, readyTimeoutS: 30 },
      credentials: { kubeconfig: kube.kubeconfigPath },
    });
    providerId = provider.id as string;
    const offering = await api.expect(201, 'POST', '/v1/offerings', {
      name: 'csi-keep-2',
      zone: 'zone-a',
      providerId,
      allowAdhoc: true,
      allowUserSchedules: false,
      sla: { cron: NEVER_DURING_A_TEST, keepLast: 2 },
    });
    const instance = await api.expect(201, 'POST', '/v1/instances', {
      name: 'shop',
      zone: 'zone-a',
      locator: { namespace: 'shop' },
      agentId,
    });
    instanceId = instance.id as string;
    offeringId = offering.id as string;
    await assignOffering(api, instanceId, offeringId);
  });

  it('leaves no VolumeSnapshot unowned after an agent killed with -9 midway: the next backup removes them', async () => {
    const unowned = async () => {
      const owned = new Set((await records()).map((r) => r.externalId.split('/')[1]));
      return kube.store
        .list(resourceType('volumesnapshots'), 'shop')
        .filter((vs) => !owned.has(vs.metadata.labels?.['cairn.dev/backup']));
    };
    kube.controller.faults.neverReady.add('shop/data');
    const started = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${instanceId}/backups`, { mode: 'FULL' });
    await waitFor(async () => (await unowned()).length === 2 || undefined, 'the backup’s two snapshots', 30_000);
    await agent.kill9();
    agent = await stack.runAgent(stateDir, { plugins: CSI_PLUGIN });
    const ended = await waitForTask(api, started.id, ENDED, 60_000);
    expect(ended).toMatchObject({ state: 'failed', error: { code: 'AGENT_INTERRUPTED' } });
    expect(await unowned()).toHaveLength(2);

    kube.controller.faults.neverReady.clear();
    const next = await run('POST', `/v1/instances/${instanceId}/backups`, { mode: 'FULL' });
    expect(next.state, JSON.stringify(next.error)).toBe('succeeded');
    // keep-last 2 then deletes the oldest: every snapshot left belongs to a recorded backup.
    await waitFor(
      async () =>
        ((await unowned()).length === 0 &&
          kube.store.list(resourceType('volumesnapshots'), 'shop').length === 2 * (await records()).length) ||
        undefined,
      'only recorded backups’ snapshots',
      60_000,
    );
  });

  afterAll(async () => {
    await kube?.close();
  });

  it('backs up a namespace, applies keep-last through the plugin, and restores in place', async () => {
    for (let i = 0; i < 3; i++) {
      const done = await run('POST', `/v1/instances/${instanceId}/backups`, { mode: 'FULL' });
      expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
    }
    await waitFor(
      async () => ((await records()).length === 2 && kube.controller.storageSnapshots().length === 4) || undefined,
      'keep-last to delete the oldest backup and its storage snapshots',
      60_000,
    );
    const kept = (await records()).map((r) => r.externalId).sort();
    const onCluster = [
      ...new Set(
        kube.store.list(resourceType('volumesnapshotcontents')).map((c) => c.metadata.labels?.['cairn.dev/backup']),
      ),
    ];
    expect(kept.map((id) => id.split('/')[1]).sort()).toEqual(onCluster.sort());

    const before = treeDigest(kube.controller.volumePath('shop', 'data'));
    for (const name of ['data', 'logs']) kube.store.delete(PVC, 'shop', name, new Date());
    const newest = (await records()).at(-1)!;
    const restored = await run('POST', `/v1/backups/${newest.id}/restore`, {});
    expect(restored.state, JSON.stringify(restored.error)).toBe('succeeded');
    expect(treeDigest(kube.controller.volumePath('shop', 'data'))).toEqual(before);
  });

  it('restores into a third namespace named through the API (sp-admin), byte for byte', async () => {
    kube.put('namespaces', { metadata: { name: 'third' } });
    const newest = (await records()).at(-1)!;
    const restored = await run('POST', `/v1/backups/${newest.id}/restore`, { targetNamespace: 'third' });
    expect(restored.state, JSON.stringify(restored.error)).toBe('succeeded');
    for (const name of ['data', 'logs'])
      expect(treeDigest(kube.controller.volumePath('third', name))).toEqual(
        treeDigest(kube.controller.volumePath('shop', name)),
      );
    // Bad names are refused before anything is queued, naming the field.
    for (const [body, field] of [
      [{ targetNamespace: 'Not_A_Namespace' }, 'targetNamespace'],
      [{ targetNamespace: 'x'.repeat(64) }, 'targetNamespace'],
      [{ targetNamespace: 'third', targetPath: '/srv/x' }, 'targetNamespace'],
    ] as const) {
      const r = await api.call('POST', `/v1/backups/${newest.id}/restore`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatchObject({ code: 'invalid_input', errors: [{ path: field }] });
    }
  });

  it('restores into a namespace named through the CLI (cairn backup restore --target-namespace)', async () => {
    kube.put('namespaces', { metadata: { name: 'fourth' } });
    const newest = (await records()).at(-1)!;
    const cli = formattedCli('json', {
      CAIRN_CONFIG: path.join(work, 'cli-config.yaml'),
      CAIRN_URL: stack.cp.url,
      CAIRN_TOKEN: stack.cp.adminToken,
    });
    const restored = await cli.ok(['backup', 'restore', newest.id, '--target-namespace', 'fourth', '--wait']);
    expect(restored).toMatchObject({ kind: 'restore', state: 'succeeded', backupId: newest.id });
    for (const name of ['data', 'logs'])
      expect(treeDigest(kube.controller.volumePath('fourth', name))).toEqual(
        treeDigest(kube.controller.volumePath('shop', name)),
      );
    // A bad name is the API's 400, naming the field; nothing is queued.
    const tasks = async () =>
      (await api.expect(200, 'GET', `/v1/tasks?instanceId=${instanceId}&limit=500`)).items.length;
    const before = await tasks();
    expect(await cli.refused(['backup', 'restore', newest.id, '--target-namespace', 'Not_A_Namespace'])).toContain(
      'targetNamespace',
    );
    expect(await tasks()).toBe(before);
  });

  it.runIf(hasChromium || process.env['CI'] === 'true')(
    'restores into a namespace named in the console’s restore form (sp-admin)',
    async () => {
      kube.put('namespaces', { metadata: { name: 'fifth' } });
      const newest = (await records()).at(-1)!;
      const browser = await launchChromium();
      try {
        const page = await (await browser.newContext()).newPage();
        await page.goto(`${stack.cp.url}/ui`);
        await page.getByLabel('API token').fill(stack.cp.adminToken);
        await page.getByRole('button', { name: 'Log in' }).click();
        await page.getByRole('heading', { name: 'Home', level: 1 }).waitFor();
        await page.goto(`${stack.cp.url}/ui/instances/${instanceId}`);
        const form = page.locator(`[data-backup="${newest.id}"]`).getByRole('form', { name: / into a namespace$/ });
        await form.getByLabel('Target namespace').fill('fifth');
        await form.getByRole('button', { name: 'Restore into namespace' }).click();
        const started = await page.getByRole('status').filter({ hasText: 'Restore task' }).textContent();
        const taskId = /Restore task (\S+) started/.exec(started ?? '')![1]!;
        const done = await waitForTask(api, taskId, ENDED, 60_000);
        expect(done, JSON.stringify(done.error)).toMatchObject({ kind: 'restore', state: 'succeeded' });
        for (const name of ['data', 'logs'])
          expect(treeDigest(kube.controller.volumePath('fifth', name))).toEqual(
            treeDigest(kube.controller.volumePath('shop', name)),
          );
      } finally {
        await browser.close();
      }
    },
  );

  it('refuses a tenant that names a namespace to restore into (sp-only; granted-roots grants paths only)', async () => {
    const tenant = await stack.tenant('acme', { grants: [offeringId] });
    const own = await api.expect(201, 'POST', '/v1/instances', {
      name: 'acme-shop',
      zone: 'zone-a',
      locator: { namespace: 'shop' },
      agentId,
      tenantId: tenant.id,
    });
    await assignOffering(api, own.id as string, offeringId);
    const done = await run('POST', `/v1/instances/${own.id}/backups`, { mode: 'FULL' });
    expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
    const tasks = async () => (await api.expect(200, 'GET', `/v1/tasks?instanceId=${own.id}&limit=500`)).items.length;
    const before = await tasks();
    for (const policy of ['sp-only', 'granted-roots'] as const) {
      await api.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${providerId}`, { tenantLocators: policy });
      for (const targetNamespace of ['kube-system', 'shop', 'acme-new']) {
        const r = await tenant.api.call('POST', `/v1/backups/${done.backupId}/restore`, { targetNamespace });
        expect(r.status, `${policy} ${targetNamespace}`).toBe(403);
        expect(r.body).toMatchObject({ code: 'locator_not_granted', errors: [{ path: 'targetNamespace' }] });
      }
    }
    await api.expect(200, 'PATCH', `/v1/zones/zone-a/providers/${providerId}`, { tenantLocators: 'sp-only' });
    expect(await tasks()).toBe(before);
    expect(kube.store.list(PVC, 'kube-system')).toEqual([]);
  });

  it('refuses tenantLocators any on a CSI connection (the plugin declares sp-locators), creating or changing', async () => {
    const message =
      "must not be any: @cairn/plugin-csi declares sp-locators (its locators name the service provider's resources, so only sp-admins name them)";
    const listed = async () => (await api.expect(200, 'GET', '/v1/zones/zone-a/providers?limit=500')).items.length;
    const before = await listed();
    const created = await api.call('POST', '/v1/zones/zone-a/providers', {
      name: 'cluster-open',
      plugin: CSI_PLUGIN,
      credentials: { kubeconfig: kube.kubeconfigPath },
      tenantLocators: 'any',
    });
    expect(created.status).toBe(400);
    expect(created.body).toMatchObject({ code: 'invalid_input', errors: [{ path: 'tenantLocators', message }] });
    expect(await listed()).toBe(before);
    const patched = await api.call('PATCH', `/v1/zones/zone-a/providers/${providerId}`, { tenantLocators: 'any' });
    expect(patched.status).toBe(400);
    expect(patched.body).toMatchObject({ code: 'invalid_input', errors: [{ path: 'tenantLocators', message }] });
    expect(await api.expect(200, 'GET', `/v1/zones/zone-a/providers/${providerId}`)).toMatchObject({
      tenantLocators: 'sp-only',
    });
  });

  it('backs up two namespaces in one backup job', async () => {
    kube.put('persistentvolumeclaims', {
      metadata: { name: 'cache', namespace: 'elsewhere' },
      spec: {
        storageClassName: 'hostpath',
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
      },
    });
    await bound(kube, 'elsewhere', 'cache');
    const second = await api.expect(201, 'POST', '/v1/instances', {
      name: 'elsewhere',
      zone: 'zone-a',
      locator: { namespace: 'elsewhere' },
      agentId,
    });
    await assignOffering(api, second.id as string, offeringId);
    const job = await api.expect(201, 'POST', '/v1/backup-jobs', {
      name: 'two-namespaces',
      mode: 'FULL',
      execution: 'PARALLEL',
      instanceIds: [instanceId, second.id],
    });
    await api.expect(202, 'POST', `/v1/backup-jobs/${job.id}/run`);
    const done = await waitFor(
      async () => {
        const view = await api.expect(200, 'GET', `/v1/backup-jobs/${job.id}`);
        return view.lastRun && view.lastRun.state !== 'running' ? view : undefined;
      },
      'the job run to end',
      60_000,
    );
    // PARALLEL: the two may end in either order.
    expect({ ...done.sets, updated: [...done.sets.updated].sort() }).toEqual({
      outdated: [],
      ongoing: [],
      updated: [instanceId, second.id as string].sort(),
      error: [],
    });
    const namespaces = kube.store
      .list(resourceType('volumesnapshotcontents'))
      .map((c) => c.metadata.annotations?.['cairn.dev/namespace']);
    expect(new Set(namespaces)).toEqual(new Set(['shop', 'elsewhere']));
  });

  it('adopts through sync a backup made behind Cairn’s back', async () => {
    const behind = await new MockTaskEnvironment(plugin, {
      credentials: { kubeconfig: kube.kubeconfigPath },
      config: { pollIntervalMs: 20 },
      taskId: 'made-by-hand',
    }).run('backup', { instanceId, instanceName: 'shop', locator: { namespace: 'shop' }, mode: 'FULL' });
    if (!behind.ok) throw new Error(behind.failure.message);
    const sync = await run('POST', `/v1/zones/zone-a/providers/${providerId}/sync`);
    expect(sync.state, JSON.stringify(sync.error)).toBe('succeeded');
    expect((await records()).map((r) => r.externalId)).toContain(behind.value.externalId);
  });
});

describe.each(backends)('CSI export end to end (%s)', (backend) => {
  const stack = withStack(backend);
  const work = stack.tempDir('csi-export-e2e');
  let kube: FakeKube;
  let api: Api;
  let instanceId: string;
  let agent: Proc;
  let stateDir: string;
  let repo: string;
  let resticId: string;
  let plainInstanceId: string;
  /** The restic snapshots in the export repository (each one volume of one backup). */
  const exported = () =>
    (
      JSON.parse(
        execFileSync('restic', ['snapshots', '--json'], {
          env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'pw' },
        }).toString(),
      ) as unknown[]
    ).length;

  const run = (method: string, url: string, body?: unknown) => runTask(api, method, url, body);
  const records = () => recordsOf(api, instanceId);

  /** Pods, claims and Secrets an export or a restore from one made (label cairn.dev/export). */
  const temporaries = () =>
    ['pods', 'persistentvolumeclaims', 'secrets'].flatMap((plural) =>
      kube.store
        .list(resourceType(plural))
        .filter((o) => o.metadata.labels?.['cairn.dev/export'] !== undefined)
        .map((o) => `${plural}/${o.metadata.namespace}/${o.metadata.name}`),
    );

  beforeAll(async () => {
    repo = path.join(work, 'repo');
    execFileSync('restic', ['init', '-q'], { env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'pw' } });
    kube = await startFakeKube({ dir: work, snapshotDelayMs: 30 });
    cluster(kube, ['store', 'plain']);
    kube.putClaim('plain', 'only', 'hostpath');
    await bound(kube, 'plain', 'only');
    for (const name of ['db', 'files']) {
      kube.putClaim('store', name, 'hostpath');
      await bound(kube, 'store', name);
      const dir = kube.controller.volumePath('store', name);
      fs.mkdirSync(path.join(dir, 'nested'));
      fs.writeFileSync(path.join(dir, `${name}.txt`), `${name} of the store\n`);
      fs.writeFileSync(
        path.join(dir, 'nested', 'bytes.bin'),
        Buffer.from(Array.from({ length: 50_000 }, (_, i) => i % 251)),
      );
    }
    api = stack.admin;
    let agentId: string;
    ({ agentId, proc: agent, stateDir } = await stack.addAgent({ name: 'cluster-agent', plugins: CSI_PLUGIN }));
    // The export target: a restic connection of the zone (no agent runs restic: none needs to).
    const restic = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'export-repository',
      plugin: '@cairn/plugin-restic',
      endpoint: repo,
      credentials: { password: 'pw' },
    });
    resticId = restic.id as string;
    const provider = await api.expect(201, 'POST', '/v1/zones/zone-a/providers', {
      name: 'cluster-export',
      plugin: CSI_PLUGIN,
      config: { pollIntervalMs: 50, readyTimeoutS: 30 },
      credentials: { kubeconfig: kube.kubeconfigPath },
      exportTo: resticId,
    });
    expect(provider.exportTo).toBe(resticId);
    const offer = (name: string, externalId: string) =>
      api.expect(201, 'POST', '/v1/offerings', {
        name,
        zone: 'zone-a',
        providerId: provider.id,
        externalId,
        allowAdhoc: true,
        allowUserSchedules: false,
        sla: { cron: NEVER_DURING_A_TEST, keepLast: 5 },
      });
    const offering = await offer('csi-export', 'snapshots+export');
    const plainOffering = await offer('csi-snapshots', 'snapshots');
    const instance = await api.expect(201, 'POST', '/v1/instances', {
      name: 'store',
      zone: 'zone-a',
      locator: { namespace: 'store' },
      agentId,
    });
    instanceId = instance.id as string;
    await assignOffering(api, instanceId, offering.id as string);
    const plain = await api.expect(201, 'POST', '/v1/instances', {
      name: 'plain',
      zone: 'zone-a',
      locator: { namespace: 'plain' },
      agentId,
    });
    plainInstanceId = plain.id as string;
    await assignOffering(api, plainInstanceId, plainOffering.id as string);
  });

  it('lists the offerings snapshots and snapshots+export through the API', async () => {
    const listed = await api.expect(200, 'GET', `/v1/zones/zone-a/providers/${(await csiProvider()).id}/offerings`);
    expect((listed.items as { externalId: string }[]).map((o) => o.externalId)).toEqual([
      'snapshots',
      'snapshots+export',
    ]);
  });

  it('exports nothing for a backup of the offering snapshots, and one restic snapshot per volume for snapshots+export', async () => {
    const before = exported();
    const plain = await run('POST', `/v1/instances/${plainInstanceId}/backups`, { mode: 'FULL' });
    expect(plain.state, JSON.stringify(plain.error)).toBe('succeeded');
    expect(exported()).toBe(before);
    const exporting = await run('POST', `/v1/instances/${instanceId}/backups`, { mode: 'FULL' });
    expect(exporting.state, JSON.stringify(exporting.error)).toBe('succeeded');
    expect(exported()).toBe(before + 2);
  });

  it('refuses to delete the restic connection while the CSI connection exports into it', async () => {
    const refused = await api.expect(409, 'DELETE', `/v1/zones/zone-a/providers/${resticId}`);
    expect(refused.detail).toContain(`export target (exportTo) of provider connection ${(await csiProvider()).id}`);
    expect((await api.expect(200, 'GET', `/v1/zones/zone-a/providers/${resticId}`)).id).toBe(resticId);
  });

  const csiProvider = async () =>
    ((await api.expect(200, 'GET', '/v1/zones/zone-a/providers')).items as { id: string; name: string }[]).find(
      (p) => p.name === 'cluster-export',
    )!;

  afterAll(async () => {
    await kube?.close();
  });

  it('leaves no export pod, claim or Secret after an agent killed with -9 mid-export: the next backup removes them', async () => {
    // The export's temporary claim never binds, so its data mover pod waits: the agent is killed there.
    kube.controller.faults.neverBind.add('store/*');
    const started = await api.expect<TaskBody>(202, 'POST', `/v1/instances/${instanceId}/backups`, { mode: 'FULL' });
    await waitFor(
      async () => temporaries().some((t) => t.startsWith('pods/')) || undefined,
      'the export’s data mover pod',
      30_000,
    );
    await agent.kill9();
    agent = await stack.runAgent(stateDir, { plugins: CSI_PLUGIN });
    const ended = await waitForTask(api, started.id, ENDED, 60_000);
    expect(ended).toMatchObject({ state: 'failed', error: { code: 'AGENT_INTERRUPTED' } });
    const left = temporaries();
    console.log(`left by the killed export: ${left.join(', ')}`);
    expect(left.map((t) => t.split('/')[0]).sort()).toEqual(['persistentvolumeclaims', 'pods', 'secrets']);

    kube.controller.faults.neverBind.clear();
    const next = await run('POST', `/v1/instances/${instanceId}/backups`, { mode: 'FULL' });
    expect(next.state, JSON.stringify(next.error)).toBe('succeeded');
    expect(temporaries()).toEqual([]);
    const owned = new Set((await records()).map((r) => r.externalId.split('/')[1]));
    expect(kube.store.list(VS, 'store').filter((vs) => !owned.has(vs.metadata.labels?.['cairn.dev/backup']))).toEqual(
      [],
    );
  });

  it('restores through the API from the export after the namespace and its snapshot contents are deleted, a sync in between', async () => {
    const done = await run('POST', `/v1/instances/${instanceId}/backups`, { mode: 'FULL' });
    expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
    const point = (await records()).find((r) => r.id === done.backupId)!;
    const backupId = point.externalId.split('/')[1]!;
    const before = Object.fromEntries(
      ['db', 'files'].map((c) => [c, treeDigest(kube.controller.volumePath('store', c))]),
    );
    kube.store.delete(NS, undefined, 'store', new Date());
    await waitFor(async () => !kube.store.find(NS, undefined, 'store') || undefined, 'store gone', 20_000);
    for (const content of kube.store.list(VSC).filter((c) => c.metadata.labels?.['cairn.dev/backup'] === backupId)) {
      kube.store.update(VSC, undefined, { ...content, spec: { ...content.spec, deletionPolicy: 'Delete' } });
      kube.store.delete(VSC, undefined, content.metadata.name, new Date());
    }
    await waitFor(
      async () => !kube.store.list(VSC).some((c) => c.metadata.labels?.['cairn.dev/backup'] === backupId) || undefined,
      'the backup’s contents gone',
      20_000,
    );
    // A sync now lists the backup from the export (its pod runs in config.export.namespace, by
    // default `default`, which every cluster has): the record stays restorable, not vanished.
    kube.put('namespaces', { metadata: { name: 'default' } });
    const sync = await run('POST', `/v1/zones/zone-a/providers/${(await csiProvider()).id}/sync`);
    expect(sync.state, JSON.stringify(sync.error)).toBe('succeeded');
    const after = await api.expect(200, 'GET', `/v1/backups/${point.id}`);
    expect(after.vanishedAt ?? null).toBeNull();
    kube.put('namespaces', { metadata: { name: 'rebuilt' } });
    const restored = await run('POST', `/v1/backups/${point.id}/restore`, { targetNamespace: 'rebuilt' });
    expect(restored.state, JSON.stringify(restored.error)).toBe('succeeded');
    for (const c of ['db', 'files']) expect(treeDigest(kube.controller.volumePath('rebuilt', c))).toEqual(before[c]);
    expect(temporaries()).toEqual([]);
  });
});
