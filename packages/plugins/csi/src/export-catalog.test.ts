// What the export holds counts: a sync lists a backup whose snapshot contents are gone but whose
// export is whole, a delete forgets the export's restic snapshots, and the data mover pods and
// Secrets a killed task left are removed by a later task.
import { resourceType, startFakeKube, until, type FakeKube } from '@cairn/kube-apiserver-fake';
import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IS_SNAPSHOT_CLASS } from './classes.js';
import plugin from './index.js';
import { LABEL_MOVER } from './pods.js';

const DRIVER = 'hostpath.csi.k8s.io';
const VSC = resourceType('volumesnapshotcontents');
const NS = resourceType('namespaces');
let dir: string;
let kube: FakeKube;
let repo: string;
const restic = (...args: string[]) =>
  execFileSync('restic', args, { env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'pw' } }).toString();
const exportIds = () => (JSON.parse(restic('snapshots', '--json')) as { short_id: string }[]).map((s) => s.short_id);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-csi-export-catalog-'));
  repo = join(dir, 'repo');
  restic('init', '-q');
  kube = await startFakeKube({ dir, snapshotDelayMs: 20 });
  for (const name of ['shop', 'cairn-movers']) kube.put('namespaces', { metadata: { name } });
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

/** The restic connection the CSI connection names as its exportTo, as a task carries it. */
const target = (identity?: string) => ({
  plugin: '@cairn/plugin-restic',
  endpoint: repo,
  config: {},
  credentials: { password: 'pw' },
  ...(identity ? { identity } : {}),
});
const env = (
  taskId: string,
  exportConfig: Record<string, unknown> | null = { namespace: 'cairn-movers' },
  identity?: string,
) =>
  new MockTaskEnvironment(plugin, {
    credentials: { kubeconfig: kube.kubeconfigPath },
    config: { pollIntervalMs: 20, readyTimeoutS: 20, ...(exportConfig ? { export: exportConfig } : {}) },
    ...(exportConfig ? { exportTo: target(identity) } : {}),
    taskId,
  });
const request = {
  instanceId: 'inst-1',
  instanceName: 'shop',
  locator: { namespace: 'shop' },
  mode: 'FULL' as const,
  offeringExternalId: 'snapshots+export',
};

async function backUp(taskId: string, identity?: string) {
  const run = await env(taskId, undefined, identity).run('backup', request);
  if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
  return {
    externalId: run.value.externalId,
    volumes: run.value.extra!['volumes'] as { claim: string; content: string; exportId: string }[],
  };
}

/** The namespace and every content of the backup gone, storage snapshots too (as an admin might). */
async function loseCluster(volumes: { content: string }[]) {
  kube.store.delete(NS, undefined, 'shop', new Date());
  await until('namespace shop gone', () => !kube.store.find(NS, undefined, 'shop'));
  for (const v of volumes) {
    const content = kube.store.get(VSC, undefined, v.content);
    kube.store.update(VSC, undefined, { ...content, spec: { ...content.spec, deletionPolicy: 'Delete' } });
    kube.store.delete(VSC, undefined, v.content, new Date());
    await until(`content ${v.content} gone`, () => !kube.store.find(VSC, undefined, v.content));
  }
}

const movers = () =>
  ['pods', 'secrets'].flatMap((plural) =>
    kube.store
      .list(resourceType(plural))
      .filter((o) => o.metadata.labels?.[LABEL_MOVER] !== undefined)
      .map((o) => `${plural}/${o.metadata.namespace}/${o.metadata.name}`),
  );

const sync = async (taskId: string, environment = env(taskId)) => {
  const run = await environment.run('sync', {});
  if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
  return run.value as { externalId: string; createdAt: string; sizeBytes: number; locator: unknown }[];
};

describe('sync and delete with an export', () => {
  it('lists a backup whose contents are gone but whose export is whole, exactly as before they went', async () => {
    const done = await backUp('t-b1');
    const before = await sync('t-s1');
    expect(before).toEqual([
      {
        externalId: done.externalId,
        createdAt: expect.any(String),
        sizeBytes: 'data of the shop\n'.length + 'logs of the shop\n'.length,
        locator: { namespace: 'shop', instanceId: 'inst-1' },
        mode: 'FULL',
      },
    ]);
    await loseCluster(done.volumes);
    expect(kube.store.list(VSC)).toEqual([]);
    expect(await sync('t-s2')).toEqual(before);
    // Without an export target the same cluster holds nothing: the listing above is the export's.
    expect(await sync('t-s3', env('t-s3', null))).toEqual([]);
    expect(movers()).toEqual([]);
  });

  it('does not list a backup whose export lacks a volume (and whose contents are gone)', async () => {
    const done = await backUp('t-b2');
    restic('forget', done.volumes.find((v) => v.claim === 'logs')!.exportId);
    await loseCluster(done.volumes);
    expect(await sync('t-s4')).toEqual([]);
  });

  it('fails the sync EXPORT_UNREADABLE when the export cannot be listed: never a shorter listing', async () => {
    await backUp('t-b3');
    await rm(join(repo, 'config'));
    const run = await env('t-s5').run('sync', {});
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toMatch(
      /^EXPORT_UNREADABLE: could not list the exports in .*repo \(pod cairn-movers\/cairn-[0-9a-f]{12}-ls Failed\)/,
    );
    expect(movers()).toEqual([]);
  });

  it('fails naming config.export.namespace when it is not a namespace name, and makes nothing', async () => {
    const run = await env('t-bad', { namespace: 'Not_A_Namespace' }).run('sync', {});
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toBe(
      'INVALID_CONFIG: config.export.namespace: must be a namespace name (a DNS label), not "Not_A_Namespace"',
    );
    expect(movers()).toEqual([]);
  });

  it('a delete forgets the export with the snapshots; one of a backup whose contents are gone forgets the export alone', async () => {
    const kept = await backUp('t-b4');
    const gone = await backUp('t-b5');
    const others = await backUp('t-b6');
    expect(exportIds().length).toBe(6);
    const del = async (externalId: string, taskId: string) => {
      const run = await env(taskId).run('delete-backup', { ...request, backupExternalId: externalId });
      if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    };
    await del(kept.externalId, 't-d1');
    expect(exportIds().sort()).toEqual([...gone.volumes, ...others.volumes].map((v) => v.exportId).sort());
    expect(kube.store.list(VSC).map((c) => c.metadata.labels?.['cairn.dev/backup'])).not.toContain(
      kept.externalId.split('/')[1],
    );
    await loseCluster(gone.volumes);
    await del(gone.externalId, 't-d2');
    expect(exportIds().sort()).toEqual(others.volumes.map((v) => v.exportId).sort());
    expect((await sync('t-s6')).map((b) => b.externalId)).toEqual([others.externalId]);
    const again = await env('t-d3').run('delete-backup', { ...request, backupExternalId: gone.externalId });
    expect(again.ok ? '' : again.failure.code).toBe('BACKUP_NOT_FOUND');
    const foreign = await env('t-d4').run('delete-backup', {
      ...request,
      instanceId: 'inst-2',
      backupExternalId: others.externalId,
    });
    expect(foreign.ok ? '' : foreign.failure.code).toBe('BACKUP_NOT_FOUND');
    expect(exportIds().length).toBe(2);
    expect(movers()).toEqual([]);
  });

  it('a delete through a connection whose exportTo was removed since deletes the snapshots and warns that the export stays', async () => {
    const made = await backUp('t-b7');
    const run = await env('t-d5', null).run('delete-backup', { ...request, backupExternalId: made.externalId });
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    expect(kube.store.list(VSC).map((c) => c.metadata.labels?.['cairn.dev/backup'])).not.toContain(
      made.externalId.split('/')[1],
    );
    expect(exportIds().length).toBe(2);
    const ids = made.volumes.map((v) => v.exportId);
    expect(run.events).toMatchObject([
      {
        type: 'warning',
        message: expect.stringContaining(`snapshot(s) ${ids.join(', ')}`) as unknown,
        data: { exportIds: ids },
      },
    ]);
    expect(run.events[0]!.message).toMatch(/it has none now, so those snapshots stay in that repository/);
  });

  it('removes the data mover pods and Secrets a killed task left once older than any wait, and keeps young ones', async () => {
    const old = new Date(Date.now() - (2 * 20 + 61) * 1000);
    const labels = { [LABEL_MOVER]: 'restore', 'cairn.dev/restore': 'abc', 'cairn.dev/export': 'cairn-x' };
    kube.put('namespaces', { metadata: { name: 'elsewhere' } });
    for (const [name, at] of [
      ['killed', old],
      ['running', new Date()],
    ] as const) {
      kube.store.create(resourceType('secrets'), 'elsewhere', { metadata: { name, labels }, data: {} }, at);
      kube.store.create(
        resourceType('pods'),
        'elsewhere',
        {
          metadata: { name, labels },
          spec: { restartPolicy: 'Never', containers: [{ name: 'restic', image: 'restic/restic', command: ['true'] }] },
        },
        at,
      );
    }
    const run = await env('t-s7').run('sync', {});
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    expect(movers().sort()).toEqual(['pods/elsewhere/running', 'secrets/elsewhere/running']);
    expect(run.events.map((e) => e.message)).toContain(
      'removed 2 data mover pod(s) and Secret(s) that killed tasks left',
    );
  });
});

// The export target's connection records the identity of its repository (restic's repository id)
// once one of its tasks has opened it; the data mover checks that the repository it reaches is
// that one before it writes, lists or forgets: a sync must never read another repository's listing
// as "everything gone", and a backup must not fork the catalogue into a new repository.
describe("the export repository's recorded identity", () => {
  const repositoryId = () => (JSON.parse(restic('cat', 'config')) as { id: string }).id;
  const failure = (run: { ok: boolean; failure?: { code: string; message: string } }) =>
    run.ok ? '' : `${run.failure!.code}: ${run.failure!.message}`;
  const exportTemporaries = () =>
    ['pods', 'persistentvolumeclaims', 'secrets'].flatMap((plural) =>
      kube.store
        .list(resourceType(plural))
        .filter((o) => o.metadata.labels?.['cairn.dev/export'] !== undefined)
        .map((o) => `${plural}/${o.metadata.namespace}/${o.metadata.name}`),
    );

  it('exports, syncs and deletes through the recorded repository; after another one is put in its place, each fails REPOSITORY_CHANGED naming both, and changes nothing', async () => {
    const recorded = repositoryId();
    const first = await backUp('t-i1', recorded);
    expect(first.volumes.every((v) => v.exportId)).toBe(true);
    expect((await sync('t-i2', env('t-i2', undefined, recorded))).map((b) => b.externalId)).toEqual([first.externalId]);
    // The repository's disk is not mounted any more: an empty repository was made at the same path.
    await rename(repo, `${repo}-unmounted`);
    restic('init', '-q');
    const other = repositoryId();
    expect(other).not.toBe(recorded);
    const changed = new RegExp(
      `^REPOSITORY_CHANGED: the export target .*repo is repository ${other}, not ${recorded}, the one its connection \\(exportTo\\) recorded: .*Nothing was changed`,
    );
    const contents = kube.store.list(VSC).length;
    expect(failure(await env('t-i3', undefined, recorded).run('backup', request))).toMatch(changed);
    expect(failure(await env('t-i4', undefined, recorded).run('sync', {}))).toMatch(changed);
    expect(
      failure(
        await env('t-i5', undefined, recorded).run('delete-backup', { ...request, backupExternalId: first.externalId }),
      ),
    ).toMatch(changed);
    // Nothing was written into the other repository, nothing on the cluster was deleted, nothing left.
    expect(exportIds()).toEqual([]);
    expect(kube.store.list(VSC).length).toBe(contents);
    expect(kube.store.list(resourceType('volumesnapshots')).length).toBe(2);
    expect(movers()).toEqual([]);
    expect(exportTemporaries()).toEqual([]);
    // Mounted again: the same tasks pass.
    await rm(repo, { recursive: true });
    await rename(`${repo}-unmounted`, repo);
    expect((await sync('t-i6', env('t-i6', undefined, recorded))).map((b) => b.externalId)).toEqual([first.externalId]);
  });

  it('fails EXPORT_UNREADABLE when the identity cannot be read, before anything is exported, and leaves nothing', async () => {
    const recorded = repositoryId();
    await rm(join(repo, 'config'));
    expect(failure(await env('t-i7', undefined, recorded).run('backup', request))).toMatch(
      /^EXPORT_UNREADABLE: could not read the identity of the export repository .*repo \(pod shop\/cairn-[0-9a-f]{12}-id Failed\)/,
    );
    expect(kube.store.list(resourceType('volumesnapshots')).length).toBe(0);
    expect(movers()).toEqual([]);
    expect(exportTemporaries()).toEqual([]);
  });

  it('refuses an identity that is not a repository id, naming exportTo.identity, and makes nothing', async () => {
    const run = await env('t-i8', undefined, 'x'.repeat(300)).run('backup', request);
    expect(failure(run)).toMatch(/^INVALID_CONFIG: exportTo\.identity: must be a repository id/);
    expect(kube.store.list(resourceType('volumesnapshots')).length).toBe(0);
  });
});
