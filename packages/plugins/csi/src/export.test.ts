// Export into restic: each volume restored from its snapshot into a temporary claim that a restic
// data mover pod backs up into the repository; the record names the restic snapshot ids.
import { startFakeKube, resourceType, until, type FakeKube } from '@cairn/kube-apiserver-fake';
import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IS_SNAPSHOT_CLASS } from './classes.js';
import plugin from './index.js';
import { backupIdFor, snapshotName } from './record.js';

const DRIVER = 'hostpath.csi.k8s.io';
let dir: string;
let kube: FakeKube;
let repo: string;
const restic = (...args: string[]) =>
  execFileSync('restic', args, { env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'pw' } }).toString();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-csi-export-'));
  repo = join(dir, 'repo');
  restic('init', '-q');
  kube = await startFakeKube({ dir, snapshotDelayMs: 20 });
  kube.put('namespaces', { metadata: { name: 'shop' } });
  kube.put('storageclasses', { metadata: { name: 'hostpath' }, provisioner: DRIVER, reclaimPolicy: 'Delete' });
  kube.put('volumesnapshotclasses', {
    metadata: { name: 'snapclass', annotations: { [IS_SNAPSHOT_CLASS]: 'true' } },
    driver: DRIVER,
    deletionPolicy: 'Delete',
  });
  for (const claim of ['data', 'logs']) {
    kube.putClaim('shop', claim, 'hostpath');
    await until(
      `${claim} bound`,
      () => kube.store.find(resourceType('persistentvolumeclaims'), 'shop', claim)?.spec?.['volumeName'],
    );
    await writeFile(join(kube.controller.volumePath('shop', claim), `${claim}.txt`), `${claim} of the shop\n`);
  }
});

afterEach(async () => {
  await kube.close();
  await rm(dir, { recursive: true, force: true });
});

const env = (taskId: string) =>
  new MockTaskEnvironment(plugin, {
    credentials: { kubeconfig: kube.kubeconfigPath, exportPassword: 'pw' },
    config: { pollIntervalMs: 20, readyTimeoutS: 20, export: { repository: repo } },
    taskId,
  });
const request = { instanceId: 'inst-1', instanceName: 'shop', locator: { namespace: 'shop' }, mode: 'FULL' as const };
const temporaries = () => ({
  pods: kube.store.list(resourceType('pods')).length,
  claims: kube.store.list(resourceType('persistentvolumeclaims')).length,
  secrets: kube.store.list(resourceType('secrets')).length,
});

describe('export into restic', () => {
  it('exports every volume through a data mover pod, records the restic snapshot ids, and removes its pods, claims and Secret', async () => {
    const started = Date.now();
    const run = await env('t-export').run('backup', request);
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    const volumes = run.value.extra!['volumes'] as { claim: string; content: string; exportId?: string }[];
    console.log(`export: ${volumes.length} volumes, ${Date.now() - started} ms, left ${JSON.stringify(temporaries())}`);
    expect(volumes.map((v) => v.claim)).toEqual(['data', 'logs']);
    for (const v of volumes) {
      expect(v.exportId).toMatch(/^[0-9a-f]{8,}$/);
      expect(restic('dump', v.exportId!, `/${v.claim}.txt`)).toBe(`${v.claim} of the shop\n`);
      const content = kube.store.get(resourceType('volumesnapshotcontents'), undefined, v.content);
      expect(content.metadata.annotations?.['cairn.dev/export-id']).toBe(v.exportId);
    }
    const tags = JSON.parse(restic('snapshots', '--json')) as { tags: string[] }[];
    expect(tags.map((s) => s.tags.sort())).toEqual(
      ['data', 'logs'].map((c) => [`cairn.dev/claim=${c}`, `cairn.dev/export=${backupIdFor('t-export')}`]),
    );
    expect(temporaries()).toEqual({ pods: 0, claims: 2, secrets: 0 });
  });

  it('fails EXPORT_FAILED when the data mover pod fails, and leaves no snapshot, pod, claim or Secret', async () => {
    kube.controller.faults.podFailure.add(`shop/${snapshotName(backupIdFor('t-fail'), 'data')}-x`);
    const run = await env('t-fail').run('backup', request);
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toMatch(
      /^EXPORT_FAILED: export of data .*injected pod failure/,
    );
    expect(temporaries()).toEqual({ pods: 0, claims: 2, secrets: 0 });
    expect(kube.store.list(resourceType('volumesnapshots')).length).toBe(0);
    expect(JSON.parse(restic('snapshots', '--json'))).toEqual([]);
  });

  for (const [title, config, credentials, want] of [
    ['without a password', { repository: '/r' }, {}, 'credentials.exportPassword: required with config.export'],
    [
      'with an unknown field',
      { repository: '/r', bucket: 'b' },
      { exportPassword: 'pw' },
      'config.export.bucket: unknown field',
    ],
    ['without a repository', {}, { exportPassword: 'pw' }, 'config.export.repository: must be a restic repository'],
    [
      'a password without export',
      undefined,
      { exportPassword: 'pw' },
      'credentials.exportPassword: only with config.export',
    ],
  ] as const)
    it(`refuses an export ${title}, naming the field, and makes nothing`, async () => {
      const run = await new MockTaskEnvironment(plugin, {
        credentials: { kubeconfig: kube.kubeconfigPath, ...credentials },
        config: config ? { export: config } : {},
      }).run('backup', request);
      expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toContain(`INVALID_CONFIG: ${want}`);
      expect(kube.store.list(resourceType('volumesnapshots')).length).toBe(0);
      expect(temporaries()).toEqual({ pods: 0, claims: 2, secrets: 0 });
    });
});
