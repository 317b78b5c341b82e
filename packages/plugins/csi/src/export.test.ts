// Export into restic: each volume restored from its snapshot into a temporary claim that a restic
// data mover pod backs up into the repository; the record names the restic snapshot ids.
import { startFakeKube, resourceType, until, type FakeKube } from '@cairn/kube-apiserver-fake';
import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IS_SNAPSHOT_CLASS } from './classes.js';
import plugin from './index.js';
import { backupIdFor, externalIdOf, readRecordTag, snapshotName } from './record.js';

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

/** Every node below `root` by relative path: a directory, a link's target, a file's mode and sha256. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel))) {
      const at = join(rel, name);
      const st = lstatSync(join(root, at));
      if (st.isDirectory()) {
        out[at] = 'dir';
        walk(at);
      } else if (st.isSymbolicLink()) out[at] = `link:${readlinkSync(join(root, at))}`;
      else
        out[at] = `${(st.mode & 0o7777).toString(8)}:${createHash('sha256')
          .update(readFileSync(join(root, at)))
          .digest('hex')}`;
    }
  };
  walk('');
  return out;
}

/** More than one text file in `data`: a subdirectory, an executable, a read-only file, binary bytes, links. */
function furnish(): Record<string, Record<string, string>> {
  const data = kube.controller.volumePath('shop', 'data');
  mkdirSync(join(data, 'sub/deeper'), { recursive: true });
  writeFileSync(
    join(data, 'sub/deeper/blob.bin'),
    Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256)),
  );
  writeFileSync(join(data, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(data, 'run.sh'), 0o755);
  writeFileSync(join(data, 'sub/secret.txt'), 'only for the owner\n');
  chmodSync(join(data, 'sub/secret.txt'), 0o600);
  symlinkSync('sub/deeper/blob.bin', join(data, 'link-to-blob'));
  symlinkSync('/nowhere/at/all', join(data, 'dangling'));
  return Object.fromEntries(['data', 'logs'].map((c) => [c, tree(kube.controller.volumePath('shop', c))]));
}

const NS = resourceType('namespaces');
const VSC = resourceType('volumesnapshotcontents');

/** Deletes the namespace (claims, snapshots and pods go with it) and waits until it is gone. */
async function deleteNamespace(name: string) {
  kube.store.delete(NS, undefined, name, new Date());
  await until(`namespace ${name} gone`, () => !kube.store.find(NS, undefined, name));
}

/** Deletes a content and, through deletionPolicy Delete, its storage snapshot (as an admin would). */
async function deleteContent(name: string) {
  const content = kube.store.get(VSC, undefined, name);
  kube.store.update(VSC, undefined, { ...content, spec: { ...content.spec, deletionPolicy: 'Delete' } });
  kube.store.delete(VSC, undefined, name, new Date());
  await until(`content ${name} gone`, () => !kube.store.find(VSC, undefined, name));
}

/** Pods, claims and Secrets carrying one of the plugin's labels. */
const labelled = () =>
  ['pods', 'persistentvolumeclaims', 'secrets'].flatMap((plural) =>
    kube.store
      .list(resourceType(plural))
      .filter((o) =>
        Object.keys(o.metadata.labels ?? {}).some((l) =>
          ['cairn.dev/export', 'cairn.dev/restore', 'cairn.dev/restored-from'].includes(l),
        ),
      )
      .map((o) => `${plural}/${o.metadata.namespace}/${o.metadata.name}`),
  );

afterEach(async () => {
  await kube.close();
  await rm(dir, { recursive: true, force: true });
});

/** The restic connection the CSI connection names as its exportTo, as a task carries it. */
const target = () => ({ plugin: '@cairn/plugin-restic', endpoint: repo, config: {}, credentials: { password: 'pw' } });
const env = (taskId: string, exportTo: ReturnType<typeof target> | undefined = target()) =>
  new MockTaskEnvironment(plugin, {
    credentials: { kubeconfig: kube.kubeconfigPath },
    config: { pollIntervalMs: 20, readyTimeoutS: 20 },
    ...(exportTo ? { exportTo } : {}),
    taskId,
  });
const request = {
  instanceId: 'inst-1',
  instanceName: 'shop',
  locator: { namespace: 'shop' },
  mode: 'FULL' as const,
  offeringExternalId: 'snapshots+export',
};
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
    expect(tags.map((s) => s.tags.filter((t) => !t.startsWith('cairn.dev/record=')).sort())).toEqual(
      ['data', 'logs'].map((c) => [`cairn.dev/claim=${c}`, `cairn.dev/export=${backupIdFor('t-export')}`]),
    );
    // The record tag: what a restore needs when the cluster has lost the content.
    expect(tags.map((s) => readRecordTag(s.tags))).toEqual(
      ['data', 'logs'].map((claim) => ({
        record: expect.objectContaining({ claim, claims: ['data', 'logs'], capacity: '1Gi', storageClass: 'hostpath' }),
        restoreSize: `${claim} of the shop\n`.length,
      })),
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

  it('a retry of the task removes what a killed attempt left (Secret, pod, claim) and neither backs up nor keeps it', async () => {
    const backupId = backupIdFor('t-retry');
    const labels = { 'cairn.dev/export': backupId };
    kube.put('secrets', {
      metadata: { name: `${backupId}-export`, namespace: 'shop', labels },
      data: { password: 'eA==' },
    });
    const leftover = `${snapshotName(backupId, 'data')}-x`;
    kube.put('persistentvolumeclaims', {
      metadata: { name: leftover, namespace: 'shop', labels },
      spec: {
        storageClassName: 'hostpath',
        accessModes: ['ReadWriteOnce'],
        resources: { requests: { storage: '1Gi' } },
      },
    });
    await until(
      'leftover bound',
      () => kube.store.find(resourceType('persistentvolumeclaims'), 'shop', leftover)?.spec?.['volumeName'],
    );
    kube.put('pods', {
      metadata: { name: leftover, namespace: 'shop', labels },
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'restic', image: 'restic/restic:0.14.0', command: ['false'] }],
      },
    });
    const run = await env('t-retry').run('backup', request);
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    expect((run.value.extra!['volumes'] as { claim: string }[]).map((v) => v.claim)).toEqual(['data', 'logs']);
    expect(temporaries()).toEqual({ pods: 0, claims: 2, secrets: 0 });
  });

  it('exports nothing for the offering snapshots, nor without an offering id, though the connection has exportTo', async () => {
    for (const [taskId, offeringExternalId] of [
      ['t-plain', 'snapshots'],
      ['t-none', undefined],
    ] as const) {
      const { offeringExternalId: _, ...bare } = request;
      const run = await env(taskId).run('backup', offeringExternalId ? { ...bare, offeringExternalId } : bare);
      if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
      const volumes = run.value.extra!['volumes'] as { exportId?: string }[];
      expect(volumes.map((v) => v.exportId)).toEqual([undefined, undefined]);
    }
    expect(kube.store.list(resourceType('volumesnapshots')).length).toBe(4);
    expect(JSON.parse(restic('snapshots', '--json'))).toEqual([]);
  });

  it('lists its two offerings', async () => {
    const run = await env('t-offerings').run('list-offerings');
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    expect(run.value.map((o) => o.externalId)).toEqual(['snapshots', 'snapshots+export']);
  });

  const refusals: [string, Record<string, unknown>, Record<string, unknown>, unknown, string | undefined, string][] = [
    [
      'the offering asks for it and there is no exportTo',
      {},
      {},
      null,
      'snapshots+export',
      'exportTo: the offering snapshots+export exports each backup, and this connection has no exportTo',
    ],
    [
      'the offering is unknown',
      {},
      {},
      undefined,
      'snapshot+export',
      'offeringExternalId: "snapshot+export" is not an offering of this plugin (snapshots, snapshots+export)',
    ],
    [
      'exportTo is not a restic connection',
      {},
      {},
      { plugin: '@cairn/plugin-dummy' },
      'snapshots+export',
      'exportTo.plugin: must be @cairn/plugin-restic',
    ],
    [
      'exportTo has no password',
      {},
      {},
      { credentials: {} },
      'snapshots+export',
      'exportTo.credentials.password: required',
    ],
    [
      'exportTo has no endpoint',
      {},
      {},
      { endpoint: null },
      'snapshots+export',
      'exportTo.endpoint: must be a restic repository',
    ],
    [
      'the old inline repository is given',
      { export: { repository: '/r' } },
      {},
      undefined,
      'snapshots',
      'config.export.repository: is not read any more: name a @cairn/plugin-restic connection',
    ],
    [
      'the old export password is given',
      {},
      { exportPassword: 'pw' },
      undefined,
      'snapshots',
      'credentials.exportPassword: is not read any more',
    ],
    [
      'config.export has an unknown field',
      { export: { bucket: 'b' } },
      {},
      undefined,
      'snapshots+export',
      'config.export.bucket: unknown field',
    ],
    [
      'the image is not an image',
      { export: { image: 'a b' } },
      {},
      undefined,
      'snapshots+export',
      'config.export.image: must be an image reference',
    ],
  ];
  for (const [title, config, credentials, exportTo, offeringExternalId, want] of refusals)
    it(`refuses a backup when ${title}, naming the field, and makes nothing`, async () => {
      const run = await new MockTaskEnvironment(plugin, {
        credentials: { kubeconfig: kube.kubeconfigPath, ...credentials },
        config,
        ...(exportTo === null ? {} : { exportTo: { ...target(), ...(exportTo as object | undefined) } }),
      }).run('backup', { ...request, ...(offeringExternalId ? { offeringExternalId } : {}) });
      expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toContain(`INVALID_CONFIG: ${want}`);
      expect(kube.store.list(resourceType('volumesnapshots')).length).toBe(0);
      expect(temporaries()).toEqual({ pods: 0, claims: 2, secrets: 0 });
      expect(JSON.parse(restic('snapshots', '--json'))).toEqual([]);
    });

  it("refuses an exportTo repository at the agent's own state before the plugin runs, as a restic connection's", async () => {
    const state = join(dir, 'agent-state');
    mkdirSync(state);
    symlinkSync(state, join(dir, 'innocent'));
    for (const endpoint of [
      state,
      join(state, 'repo'),
      dir,
      join(dir, 'innocent', 'repo'),
      join(dir, 'x', '..', 'agent-state'),
    ]) {
      const run = await new MockTaskEnvironment(plugin, {
        credentials: { kubeconfig: kube.kubeconfigPath },
        exportTo: { ...target(), endpoint },
        host: { roots: [tmpdir()], denied: [state] },
      }).run('backup', request);
      expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toMatch(
        /^PATH_NOT_ALLOWED: exportTo\.endpoint .* is or holds the agent's own state/,
      );
    }
    expect(kube.store.list(resourceType('volumesnapshots')).length).toBe(0);
  });
});

describe('restore when the source namespace is gone', () => {
  const backUp = async (taskId: string) => {
    const run = await env(taskId).run('backup', request);
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    const volumes = run.value.extra!['volumes'] as { claim: string; content: string; exportId: string }[];
    return { externalId: run.value.externalId, volumes };
  };
  const restoreInto = (taskId: string, externalId: string, namespace: string, environment = env(taskId)) =>
    environment.run('restore', { ...request, backupExternalId: externalId, target: { namespace } });

  it('restores from the Retain snapshot after the namespace is deleted, byte for byte, modes and links kept', async () => {
    const want = furnish();
    const done = await backUp('t-gone-ns');
    await deleteNamespace('shop');
    expect(kube.store.list(VSC).length).toBe(2);
    kube.put('namespaces', { metadata: { name: 'shop' } });
    const run = await restoreInto('t-gone-ns-r', done.externalId, 'shop');
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    expect(run.value.extra).toEqual({ namespace: 'shop', claims: ['data', 'logs'] });
    for (const c of ['data', 'logs']) expect(tree(kube.controller.volumePath('shop', c))).toEqual(want[c]);
    expect(labelled().filter((o) => !o.startsWith('persistentvolumeclaims/shop/'))).toEqual([]);
  });

  it('restores from the export when the snapshot contents and storage snapshots are gone too, byte for byte', async () => {
    const want = furnish();
    const done = await backUp('t-gone-all');
    await deleteNamespace('shop');
    for (const v of done.volumes) await deleteContent(v.content);
    expect(kube.controller.storageSnapshots()).toEqual([]);
    kube.put('namespaces', { metadata: { name: 'again' } });
    const started = Date.now();
    const run = await restoreInto('t-gone-all-r', done.externalId, 'again');
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    console.log(`restore from the export: 2 volumes, ${Date.now() - started} ms`);
    expect(run.value.extra).toEqual({ namespace: 'again', claims: ['data', 'logs'], fromExport: ['data', 'logs'] });
    for (const c of ['data', 'logs']) expect(tree(kube.controller.volumePath('again', c))).toEqual(want[c]);
    const claim = kube.store.get(resourceType('persistentvolumeclaims'), 'again', 'data');
    expect(claim.spec).toMatchObject({ storageClassName: 'hostpath', resources: { requests: { storage: '1Gi' } } });
    expect(claim.spec?.['dataSource']).toBeUndefined();
    expect(labelled().filter((o) => !o.startsWith('persistentvolumeclaims/again/'))).toEqual([]);
  });

  it('restores one volume from its snapshot and the other from the export when only its content is gone', async () => {
    const done = await backUp('t-half');
    await deleteContent(done.volumes.find((v) => v.claim === 'logs')!.content);
    kube.put('namespaces', { metadata: { name: 'half' } });
    const run = await restoreInto('t-half-r', done.externalId, 'half');
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    expect(run.value.extra).toMatchObject({ fromExport: ['logs'] });
    for (const c of ['data', 'logs'])
      expect(tree(kube.controller.volumePath('half', c))).toEqual(tree(kube.controller.volumePath('shop', c)));
  });

  it('fails clearly when the data mover pod fails during the restore from the export, and leaves nothing', async () => {
    const done = await backUp('t-pod-fails');
    await deleteNamespace('shop');
    for (const v of done.volumes) await deleteContent(v.content);
    kube.put('namespaces', { metadata: { name: 'again' } });
    kube.controller.faults.podFailure.add('again/logs');
    const run = await restoreInto('t-pod-fails-r', done.externalId, 'again');
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toMatch(
      /^EXPORT_RESTORE_FAILED: restore of logs from export [0-9a-f]+ in .* failed \(pod again\/\S+ Failed\): fake kubelet: injected pod failure/,
    );
    expect(labelled()).toEqual([]);
    expect(kube.store.list(resourceType('volumesnapshots'))).toEqual([]);
  });

  it('names the volume that has neither a snapshot nor an export, and makes nothing', async () => {
    const done = await backUp('t-neither');
    await deleteContent(done.volumes.find((v) => v.claim === 'logs')!.content);
    kube.put('namespaces', { metadata: { name: 'half' } });
    const bare = new MockTaskEnvironment(plugin, {
      credentials: { kubeconfig: kube.kubeconfigPath },
      config: { pollIntervalMs: 20, readyTimeoutS: 20 },
      taskId: 't-neither-r',
    });
    const run = await restoreInto('t-neither-r', done.externalId, 'half', bare);
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toBe(
      `BACKUP_INCOMPLETE: backup ${externalIdOf('shop', backupIdFor('t-neither'))} cannot be restored: volume logs has neither a ready snapshot nor an export (the connection has no exportTo to restore from)`,
    );
    expect(kube.store.list(resourceType('persistentvolumeclaims'), 'half')).toEqual([]);
    expect(labelled()).toEqual([]);
  });
});
