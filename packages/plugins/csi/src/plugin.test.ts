// The CSI plugin against the fake Kubernetes API server, through the real @kubernetes/client-node
// and a real kubeconfig file. Volumes are directories of the fake CSI driver; snapshots are copies.
import { startFakeKube, resourceType, until, type FakeKube, type KubeObject } from '@cairn/kube-apiserver-fake';
import { MockTaskEnvironment, type MockRun } from '@cairn/plugin-sdk/testing';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IS_SNAPSHOT_CLASS, VOLUME_SNAPSHOT_CLASS } from './classes.js';
import plugin from './index.js';
import { backupIdFor, snapshotName } from './record.js';

const DRIVER = 'hostpath.csi.k8s.io';
const VS = resourceType('volumesnapshots');
const VSC = resourceType('volumesnapshotcontents');
const VSCLASS = resourceType('volumesnapshotclasses');
const PVC = resourceType('persistentvolumeclaims');

let dir: string;
let kube: FakeKube;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-csi-'));
  kube = await startFakeKube({ dir, snapshotDelayMs: 30 });
  for (const ns of ['shop', 'other']) kube.put('namespaces', { metadata: { name: ns } });
  kube.put('storageclasses', { metadata: { name: 'hostpath' }, provisioner: DRIVER, reclaimPolicy: 'Delete' });
  kube.put('volumesnapshotclasses', {
    metadata: { name: 'csi-hostpath-snapclass', annotations: { [IS_SNAPSHOT_CLASS]: 'true' } },
    driver: DRIVER,
    deletionPolicy: 'Delete',
  });
  await claim('shop', 'data', { 'a.txt': 'alpha', 'sub/b.bin': Buffer.alloc(3000, 7) });
  await claim('shop', 'logs', { 'log.txt': 'one line\n' }, { app: 'logs' });
});

afterEach(async () => {
  await kube.close();
  await rm(dir, { recursive: true, force: true });
});

async function claim(
  namespace: string,
  name: string,
  files: Record<string, string | Buffer>,
  labels?: Record<string, string>,
) {
  kube.put('persistentvolumeclaims', {
    metadata: { name, namespace, ...(labels ? { labels } : {}) },
    spec: { storageClassName: 'hostpath', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  });
  await until(`${name} bound`, () => kube.store.find(PVC, namespace, name)?.status?.['phase'] === 'Bound');
  const root = kube.controller.volumePath(namespace, name);
  for (const [path, body] of Object.entries(files)) {
    await import('node:fs/promises').then((fs) => fs.mkdir(join(root, path, '..'), { recursive: true }));
    await writeFile(join(root, path), body);
  }
}

async function filesOf(namespace: string, name: string): Promise<Record<string, string>> {
  const root = kube.controller.volumePath(namespace, name);
  const { readdir } = await import('node:fs/promises');
  const out: Record<string, string> = {};
  for (const e of await readdir(root, { withFileTypes: true, recursive: true }))
    if (e.isFile())
      out[join(e.parentPath, e.name).slice(root.length + 1)] = (await readFile(join(e.parentPath, e.name))).toString(
        'hex',
      );
  return out;
}

function env(
  opts: {
    taskId?: string;
    attempt?: number;
    config?: Record<string, unknown>;
    credentials?: Record<string, unknown>;
    onProgress?: (p: { message?: string }) => void;
  } = {},
) {
  return new MockTaskEnvironment(plugin, {
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    credentials: opts.credentials ?? { kubeconfig: kube.kubeconfigPath },
    config: opts.config ?? { pollIntervalMs: 20, readyTimeoutS: 10 },
    taskId: opts.taskId ?? `t-${Math.random().toString(36).slice(2)}`,
    ...(opts.attempt ? { attempt: opts.attempt } : {}),
  });
}

const instance = { instanceId: 'inst-1', instanceName: 'shop', locator: { namespace: 'shop' }, mode: 'FULL' as const };

function ok<T extends MockRun>(run: T): T & { ok: true } {
  if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
  return run as T & { ok: true };
}

const snapshots = (ns = 'shop') => kube.store.list(VS, ns);
const contents = () => kube.store.list(VSC);
const leftovers = () => ({
  snapshots: kube.store.list(VS).length,
  contents: contents().length,
  storage: kube.controller.storageSnapshots().length,
});

async function backup(e = env(), req: Record<string, unknown> = {}) {
  return ok(await e.run('backup', { ...instance, ...req }));
}

describe('the package', () => {
  it('lists the same capabilities in package.json ("cairn".capabilities) as in its manifest', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      cairn: { capabilities: string[] };
    };
    expect(pkg.cairn.capabilities).toEqual(plugin.manifest.capabilities);
    expect(new MockTaskEnvironment(plugin).apiVersion).toBe(1);
  });
});

describe('backup', () => {
  it('snapshots every claim through a Retain clone of the annotated class and records it on the contents', async () => {
    kube.controller.faults.neverReady.add('shop/data');
    const said: string[] = [];
    const running = env({ onProgress: (p) => said.push(p.message ?? '') }).run('backup', instance);
    await until('progress naming the volume waited for', () =>
      said.includes('1 of 2 volume snapshot(s) ready; waiting for data'),
    );
    kube.controller.faults.neverReady.clear();
    const run = ok(await running);
    expect(run.value.externalId).toMatch(/^shop\/cairn-[0-9a-f]{12}$/);
    expect(run.value.sizeBytes).toBe(5 + 3000 + 9);
    expect(run.value.mode).toBe('FULL');
    const volumes = (run.value.extra as { volumes: { claim: string; snapshotClass: string; cloneClass: string }[] })
      .volumes;
    expect(volumes.map((v) => [v.claim, v.snapshotClass, v.cloneClass])).toEqual([
      ['data', 'csi-hostpath-snapclass', 'csi-hostpath-snapclass-cairn-retain'],
      ['logs', 'csi-hostpath-snapclass', 'csi-hostpath-snapclass-cairn-retain'],
    ]);
    const clone = kube.store.get(VSCLASS, undefined, 'csi-hostpath-snapclass-cairn-retain');
    expect(clone).toMatchObject({ driver: DRIVER, deletionPolicy: 'Retain' });
    expect(snapshots().map((s) => s.spec?.['volumeSnapshotClassName'])).toEqual([
      'csi-hostpath-snapclass-cairn-retain',
      'csi-hostpath-snapclass-cairn-retain',
    ]);
    const backupId = run.value.externalId.split('/')[1]!;
    expect(
      contents()
        .map((c) => [
          c.spec?.['deletionPolicy'],
          c.metadata.labels?.['cairn.dev/backup'],
          c.metadata.annotations?.['cairn.dev/claim'],
        ])
        .sort(),
    ).toEqual([
      ['Retain', backupId, 'data'],
      ['Retain', backupId, 'logs'],
    ]);
    expect(kube.controller.storageSnapshots()).toHaveLength(2);
    expect(run.progress.at(-1)).toMatchObject({ percent: 100 });
    expect(said.at(-1)).toBe('2 volume snapshot(s) ready');
  });

  it('backs up only the claims the selector picks', async () => {
    const run = await backup(env(), { locator: { namespace: 'shop', selector: 'app=logs' } });
    expect(run.value.sizeBytes).toBe(9);
    expect(
      snapshots().map((s) => (s.spec?.['source'] as { persistentVolumeClaimName: string }).persistentVolumeClaimName),
    ).toEqual(['logs']);
  });

  it('fails naming the driver and the classes when no class is annotated, and makes nothing', async () => {
    kube.store.delete(VSCLASS, undefined, 'csi-hostpath-snapclass', new Date());
    kube.put('volumesnapshotclasses', { metadata: { name: 'plain' }, driver: DRIVER, deletionPolicy: 'Delete' });
    const run = await env().run('backup', instance);
    expect(run.ok).toBe(false);
    if (run.ok) return;
    expect(run.failure.code).toBe('SNAPSHOT_CLASS');
    expect(run.failure.message).toMatch(
      /driver hostpath\.csi\.k8s\.io: no VolumeSnapshotClass annotated cairn\.dev\/is-snapshot-class="true" \(classes of the driver: plain\)/,
    );
    expect(leftovers()).toEqual({ snapshots: 0, contents: 0, storage: 0 });
    expect(kube.store.list(VSCLASS).map((c) => c.metadata.name)).toEqual(['plain']);
  });

  it('fails naming both classes when two are annotated for the driver', async () => {
    kube.put('volumesnapshotclasses', {
      metadata: { name: 'second', annotations: { [IS_SNAPSHOT_CLASS]: 'true' } },
      driver: DRIVER,
      deletionPolicy: 'Delete',
    });
    const run = await env().run('backup', instance);
    expect(run.ok ? '' : run.failure.message).toMatch(
      /2 VolumeSnapshotClasses annotated .*annotated: csi-hostpath-snapclass, second/,
    );
    expect(leftovers()).toEqual({ snapshots: 0, contents: 0, storage: 0 });
  });

  it('uses the class a StorageClass names, over the annotated one', async () => {
    kube.put('volumesnapshotclasses', {
      metadata: { name: 'gold' },
      driver: DRIVER,
      deletionPolicy: 'Delete',
      parameters: { tier: 'gold' },
    });
    const sc = kube.store.get(resourceType('storageclasses'), undefined, 'hostpath');
    kube.store.update(resourceType('storageclasses'), undefined, {
      ...sc,
      metadata: { ...sc.metadata, annotations: { [VOLUME_SNAPSHOT_CLASS]: 'gold' } },
    });
    await backup();
    expect(kube.store.get(VSCLASS, undefined, 'gold-cairn-retain')).toMatchObject({
      deletionPolicy: 'Retain',
      parameters: { tier: 'gold' },
    });
    expect(new Set(snapshots().map((s) => s.spec?.['volumeSnapshotClassName']))).toEqual(
      new Set(['gold-cairn-retain']),
    );
  });

  it('removes what it made when a snapshot fails', async () => {
    kube.controller.faults.snapshotError.add('shop/logs');
    const run = await env().run('backup', instance);
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toBe(
      'SNAPSHOT_FAILED: snapshot of logs failed: fake CSI driver: injected snapshot failure',
    );
    await until(
      'nothing left',
      () => JSON.stringify(leftovers()) === JSON.stringify({ snapshots: 0, contents: 0, storage: 0 }),
    );
  });

  it('removes the storage snapshots even when a finalizer holds a deleted VolumeSnapshot', async () => {
    kube.controller.faults.snapshotError.add('shop/logs');
    kube.controller.faults.stuckFinalizer.add('shop/data');
    const run = await env().run('backup', instance);
    expect(run.ok ? '' : run.failure.code).toBe('SNAPSHOT_FAILED');
    await until(
      'storage and contents gone',
      () => contents().length === 0 && kube.controller.storageSnapshots().length === 0,
    );
    const held = snapshots();
    expect(
      held.map((s) => [
        (s.spec?.['source'] as { persistentVolumeClaimName: string }).persistentVolumeClaimName,
        typeof s.metadata.deletionTimestamp,
      ]),
    ).toEqual([['data', 'string']]);
  });

  it('times out when a snapshot never becomes ready, and removes what it made', async () => {
    kube.controller.faults.neverReady.add('shop/data');
    const run = await env({ config: { pollIntervalMs: 20, readyTimeoutS: 1 } }).run('backup', instance);
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toMatch(
      /^TIMEOUT_WAITING: volume snapshots not ready after 1 s \(config.readyTimeoutS\): data$/,
    );
    expect(leftovers()).toEqual({ snapshots: 0, contents: 0, storage: 0 });
  });

  it('removes what it made when cancelled midway', async () => {
    kube.controller.faults.neverReady.add('shop/data');
    const e = env();
    const running = e.run('backup', instance);
    await until(
      'both snapshots bound',
      () => snapshots().filter((s) => s.status?.['boundVolumeSnapshotContentName']).length === 2,
    );
    e.cancel('stop');
    const run = await running;
    expect(run.ok ? '' : run.failure.code).toBe('CANCELLED');
    await until(
      'nothing left',
      () => JSON.stringify(leftovers()) === JSON.stringify({ snapshots: 0, contents: 0, storage: 0 }),
    );
  });

  it('stops when cancelled on the report that the last snapshot is ready, and removes what it made', async () => {
    // The report is made inside the wait that then ends: the cancel must still win.
    const e: MockTaskEnvironment = env({
      onProgress: (p) => {
        if (p.message?.startsWith('2 of 2')) e.cancel('stop');
      },
    });
    const run = await e.run('backup', instance);
    expect(run.ok ? 'finished' : run.failure.code).toBe('CANCELLED');
    await until(
      'nothing left',
      () => JSON.stringify(leftovers()) === JSON.stringify({ snapshots: 0, contents: 0, storage: 0 }),
    );
  });

  it('fails on a snapshot of its name that is not its own, and leaves that snapshot alone', async () => {
    const taskId = 'task-taken';
    const name = snapshotName(backupIdFor(taskId), 'logs');
    kube.put('volumesnapshots', {
      metadata: { name, namespace: 'shop' },
      spec: { source: { persistentVolumeClaimName: 'data' }, volumeSnapshotClassName: 'csi-hostpath-snapclass' },
    });
    const run = await env({ taskId }).run('backup', instance);
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toBe(
      `SNAPSHOT_NAME_TAKEN: VolumeSnapshot shop/${name} exists and is not this backup's snapshot of logs`,
    );
    await until('only the foreign snapshot left', () => snapshots().length === 1);
    expect(snapshots()[0]!.metadata.name).toBe(name);
    expect(kube.controller.storageSnapshots()).toHaveLength(1);
  });

  it('fails naming a claim whose volume is not a CSI volume, and makes nothing', async () => {
    const pv = kube.store.get(
      resourceType('persistentvolumes'),
      undefined,
      String(kube.store.get(PVC, 'shop', 'logs').spec?.['volumeName']),
    );
    kube.store.update(resourceType('persistentvolumes'), undefined, {
      ...pv,
      spec: { ...pv.spec, csi: undefined, hostPath: { path: '/srv' } },
    });
    const run = await env().run('backup', instance);
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toBe(
      `SNAPSHOT_CLASS: claim logs: its volume ${String(pv.metadata.name)} is not a CSI volume`,
    );
    expect(leftovers()).toEqual({ snapshots: 0, contents: 0, storage: 0 });
  });

  /** Runs a backup in a process of its own and kills it (-9) once its two snapshots exist. */
  async function killedMidway(taskId: string): Promise<void> {
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
         import plugin from './dist/index.js';
         await new MockTaskEnvironment(plugin, { credentials: { kubeconfig: ${JSON.stringify(kube.kubeconfigPath)} },
           config: { pollIntervalMs: 20, readyTimeoutS: 60 }, taskId: '${taskId}' }).run('backup', ${JSON.stringify(instance)});`,
      ],
      { cwd: new URL('..', import.meta.url).pathname, stdio: 'ignore' },
    );
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const id = backupIdFor(taskId);
    await until(
      'the killed task’s snapshots',
      () => snapshots().filter((s) => s.metadata.labels?.['cairn.dev/backup'] === id).length === 2,
      30_000,
    );
    child.kill('SIGKILL');
    await exited;
  }

  it('adopts on a retry what an attempt killed with -9 made, leaving no snapshot unowned', async () => {
    kube.controller.faults.neverReady.add('shop/data');
    const taskId = 'task-killed';
    await killedMidway(taskId);
    const before = snapshots()
      .map((s) => s.metadata.uid)
      .sort();
    kube.controller.faults.neverReady.clear();
    const run = await backup(env({ taskId, attempt: 2 }));
    expect(run.events.filter((e) => e.message.startsWith('adopted VolumeSnapshot')).map((e) => e.message)).toHaveLength(
      2,
    );
    expect(
      snapshots()
        .map((s) => s.metadata.uid)
        .sort(),
    ).toEqual(before);
    expect(contents()).toHaveLength(2);
    expect(
      contents().every((c) => c.metadata.labels?.['cairn.dev/backup'] === run.value.externalId.split('/')[1]),
    ).toBe(true);
  });

  it('removes, in the next backup task of the instance, what a task killed with -9 left unfinished', async () => {
    const done = await backup(env({ taskId: 'finished-earlier' }));
    kube.controller.faults.neverReady.add('shop/data');
    await killedMidway('killed-task');
    expect(snapshots()).toHaveLength(4);
    kube.controller.faults.neverReady.clear();
    const run = await backup(env({ taskId: 'next-task' }));
    const killed = backupIdFor('killed-task');
    expect(run.events.map((e) => e.message)).toContain(
      `removed 2 VolumeSnapshot(s) of ${killed}, a backup of this instance an earlier task left unfinished`,
    );
    await until('the unfinished backup gone', () => kube.controller.storageSnapshots().length === 4);
    const held = new Set(snapshots().map((s) => s.metadata.labels?.['cairn.dev/backup']));
    expect(held).toEqual(new Set([done.value.externalId.split('/')[1], run.value.externalId.split('/')[1]]));
    expect(contents()).toHaveLength(4);
  });
});

describe('restore', () => {
  it('restores into the same namespace, byte for byte, and leaves the backup whole', async () => {
    const before = { data: await filesOf('shop', 'data'), logs: await filesOf('shop', 'logs') };
    const { value } = await backup();
    for (const name of ['data', 'logs']) kube.store.delete(PVC, 'shop', name, new Date());
    await until('claims gone', () => kube.store.list(PVC, 'shop').length === 0);
    const run = ok(
      await env().run('restore', {
        instanceId: 'inst-1',
        locator: { namespace: 'shop' },
        backupExternalId: value.externalId,
      }),
    );
    expect(run.value.bytesRestored).toBe(3014);
    expect({ data: await filesOf('shop', 'data'), logs: await filesOf('shop', 'logs') }).toEqual(before);
    await until('stand-ins gone', () => snapshots().length === 2 && contents().length === 2);
    expect(kube.controller.storageSnapshots()).toHaveLength(2);
    expect(kube.store.get(PVC, 'shop', 'data').metadata.labels).toMatchObject({
      'cairn.dev/restored-from': value.externalId.split('/')[1],
    });
  });

  it('restores into another namespace after the source namespace is deleted', async () => {
    const before = await filesOf('shop', 'data');
    const { value } = await backup();
    kube.store.delete(resourceType('namespaces'), undefined, 'shop', new Date());
    await until('namespace gone', () => !kube.store.find(resourceType('namespaces'), undefined, 'shop'));
    expect(contents()).toHaveLength(2);
    ok(
      await env().run('restore', {
        instanceId: 'inst-1',
        locator: { namespace: 'shop' },
        backupExternalId: value.externalId,
        target: { namespace: 'other' },
      }),
    );
    expect(await filesOf('other', 'data')).toEqual(before);
    expect(
      kube.store
        .list(PVC, 'other')
        .map((c) => c.metadata.name)
        .sort(),
    ).toEqual(['data', 'logs']);
  });

  it('refuses, naming it, a snapshot class that does not exist on the target, and makes nothing', async () => {
    const { value } = await backup();
    kube.store.delete(VSCLASS, undefined, 'csi-hostpath-snapclass', new Date());
    const run = await env().run('restore', {
      instanceId: 'inst-1',
      locator: { namespace: 'shop' },
      backupExternalId: value.externalId,
      target: { namespace: 'other' },
    });
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toMatch(
      /^SNAPSHOT_CLASS_MISSING: VolumeSnapshotClass csi-hostpath-snapclass, with which data was snapshotted, does not exist on the target cluster/,
    );
    expect(kube.store.list(PVC, 'other')).toEqual([]);
    expect(kube.store.list(VS, 'other')).toEqual([]);
    expect(contents()).toHaveLength(2);
  });

  it('removes the claims and stand-ins it made when the claims never bind, and keeps the backup', async () => {
    const { value } = await backup();
    const SC = resourceType('storageclasses');
    const sc = kube.store.get(SC, undefined, 'hostpath');
    kube.store.update(SC, undefined, { ...sc, provisioner: 'nobody.example.com' });
    const run = await env({ config: { pollIntervalMs: 20, readyTimeoutS: 1 } }).run('restore', {
      instanceId: 'inst-1',
      locator: { namespace: 'shop' },
      backupExternalId: value.externalId,
      target: { namespace: 'other' },
    });
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toBe(
      'TIMEOUT_WAITING: claims not bound after 1 s (config.readyTimeoutS): data, logs',
    );
    expect(kube.store.list(PVC, 'other')).toEqual([]);
    expect(kube.store.list(VS, 'other')).toEqual([]);
    expect(contents().map((c) => c.metadata.labels?.['cairn.dev/backup'])).toEqual([
      value.externalId.split('/')[1],
      value.externalId.split('/')[1],
    ]);
    expect(kube.controller.storageSnapshots()).toHaveLength(2);
  });

  it('refuses to restore over a claim that exists', async () => {
    const { value } = await backup();
    const run = await env().run('restore', {
      instanceId: 'inst-1',
      locator: { namespace: 'shop' },
      backupExternalId: value.externalId,
    });
    expect(run.ok ? '' : run.failure.code).toBe('CLAIM_EXISTS');
    expect(snapshots()).toHaveLength(2);
  });

  it('answers another instance’s backup as not found', async () => {
    const { value } = await backup();
    const run = await env().run('restore', {
      instanceId: 'inst-2',
      locator: { namespace: 'other' },
      backupExternalId: value.externalId,
      target: { namespace: 'other' },
    });
    expect(run.ok ? '' : run.failure.code).toBe('BACKUP_NOT_FOUND');
    expect(kube.store.list(PVC, 'other')).toEqual([]);
  });
});

describe('delete and sync', () => {
  it('lists complete backups with their instance, and deletes one with its storage snapshots', async () => {
    const first = (await backup()).value.externalId;
    const second = (await backup()).value.externalId;
    const listed = ok(await env().run('sync', {})).value;
    expect(listed.map((b) => [b.externalId, b.sizeBytes, b.locator]).sort()).toEqual(
      [first, second].sort().map((id) => [id, 3014, { namespace: 'shop', instanceId: 'inst-1' }]),
    );
    expect(ok(await env().run('sync', { locator: { namespace: 'other' } })).value).toEqual([]);

    const foreign = await env().run('delete-backup', {
      backupExternalId: first,
      locator: { namespace: 'shop' },
      instanceId: 'inst-2',
    });
    expect(foreign.ok ? '' : foreign.failure.code).toBe('BACKUP_NOT_FOUND');
    expect(kube.controller.storageSnapshots()).toHaveLength(4);

    ok(
      await env().run('delete-backup', {
        backupExternalId: first,
        locator: { namespace: 'shop' },
        instanceId: 'inst-1',
      }),
    );
    await until(
      'first gone',
      () => kube.controller.storageSnapshots().length === 2 && snapshots().length === 2 && contents().length === 2,
    );
    expect(ok(await env().run('sync', {})).value.map((b) => b.externalId)).toEqual([second]);
    const again = await env().run('delete-backup', {
      backupExternalId: first,
      locator: { namespace: 'shop' },
      instanceId: 'inst-1',
    });
    expect(again.ok ? '' : again.failure.code).toBe('BACKUP_NOT_FOUND');
  });

  it('does not list a backup one of whose volumes is gone', async () => {
    const { value } = await backup();
    const [one] = contents();
    kube.store.delete(VSC, undefined, one!.metadata.name, new Date());
    expect(ok(await env().run('sync', {})).value).toEqual([]);
    const run = await env().run('restore', {
      instanceId: 'inst-1',
      locator: { namespace: 'shop' },
      backupExternalId: value.externalId,
      target: { namespace: 'other' },
    });
    expect(run.ok ? '' : run.failure.code).toBe('BACKUP_INCOMPLETE');
  });
});

describe('preflight', () => {
  it('reports the class each StorageClass snapshots through, and a namespace that is missing', async () => {
    kube.put('storageclasses', { metadata: { name: 'other-driver' }, provisioner: 'rbd.csi.ceph.com' });
    const run = ok(await env().run('preflight', { locator: { namespace: 'nowhere' } }));
    expect(run.value.ok).toBe(false);
    expect(run.value.checks?.map((c) => [c.name, c.ok])).toEqual([
      ['cluster-reachable', true],
      ['snapshot-class:hostpath', true],
      ['namespace', false],
    ]);
  });
});

describe('bad input', () => {
  const cases: { title: string; opts?: Parameters<typeof env>[0]; locator?: unknown; want: string }[] = [
    {
      title: 'a locator without a namespace',
      locator: {},
      want: 'INVALID_LOCATOR: locator.namespace: must be a namespace name',
    },
    {
      title: 'a namespace that is not a DNS label',
      locator: { namespace: 'Shop_1' },
      want: 'INVALID_LOCATOR: locator.namespace: must be a namespace name',
    },
    {
      title: 'an unknown locator field',
      locator: { namespace: 'shop', paths: ['/'] },
      want: 'INVALID_LOCATOR: locator.paths: unknown field',
    },
    {
      title: 'a selector that does not parse',
      locator: { namespace: 'shop', selector: 'app in (a)' },
      want: 'INVALID_LOCATOR: locator.selector: "app in (a)" is not a requirement',
    },
    { title: 'a locator that is not an object', locator: 'shop', want: 'INVALID_LOCATOR: locator: must be an object' },
    { title: 'no kubeconfig', opts: { credentials: {} }, want: 'INVALID_CONFIG: credentials.kubeconfig: required' },
    {
      title: 'a relative kubeconfig path',
      opts: { credentials: { kubeconfig: 'kubeconfig.yaml' } },
      want: 'INVALID_CONFIG: credentials.kubeconfig: required: the absolute path',
    },
    {
      title: 'a kubeconfig that is not there',
      opts: { credentials: { kubeconfig: '/nonexistent/kubeconfig' } },
      want: 'INVALID_CONFIG: credentials.kubeconfig: no file at /nonexistent/kubeconfig',
    },
    {
      title: 'an unknown config field',
      opts: { config: { pollInterval: 5 } },
      want: 'INVALID_CONFIG: config.pollInterval: unknown field',
    },
    {
      title: 'a poll interval out of range',
      opts: { config: { pollIntervalMs: 1 } },
      want: 'INVALID_CONFIG: config.pollIntervalMs: must be an integer from 10 to 60000, not 1',
    },
  ];
  for (const c of cases)
    it(`refuses ${c.title}, naming the field, and changes nothing`, async () => {
      const run = await env(c.opts).run('backup', { ...instance, locator: c.locator ?? instance.locator });
      expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toContain(c.want);
      expect(leftovers()).toEqual({ snapshots: 0, contents: 0, storage: 0 });
    });

  it('answers a preflight whose credentials the cluster refuses with a failed check and advice', async () => {
    const wrong = join(dir, 'wrong-token');
    await writeFile(wrong, (await readFile(kube.kubeconfigPath, 'utf8')).replace(kube.token, 'not-the-token'));
    const run = ok(await env({ credentials: { kubeconfig: wrong } }).run('preflight', {}));
    expect(run.value).toMatchObject({
      ok: false,
      checks: [{ name: 'cluster-reachable', ok: false, advice: expect.stringMatching(/kubeconfig/) as unknown }],
    });
  });

  it('refuses a file that is not a kubeconfig, and a token the cluster does not take', async () => {
    const notKube = join(dir, 'not-a-kubeconfig');
    await writeFile(notKube, 'just: [text');
    const run = await env({ credentials: { kubeconfig: notKube } }).run('backup', instance);
    expect(run.ok ? '' : run.failure.message).toMatch(/^credentials\.kubeconfig: .* is not a kubeconfig/);
    const wrong = join(dir, 'wrong-token');
    await writeFile(wrong, (await readFile(kube.kubeconfigPath, 'utf8')).replace(kube.token, 'not-the-token'));
    const refused = await env({ credentials: { kubeconfig: wrong } }).run('backup', instance);
    expect(refused.ok ? '' : `${refused.failure.code}: ${refused.failure.message}`).toMatch(
      /^KUBE_UNAUTHORIZED: read namespace shop: the cluster refused/,
    );
    expect(leftovers()).toEqual({ snapshots: 0, contents: 0, storage: 0 });
  });

  describe('in a pod (credentials.inCluster: the service account token and CA at the standard paths)', () => {
    const saved = { host: process.env['KUBERNETES_SERVICE_HOST'], port: process.env['KUBERNETES_SERVICE_PORT'] };
    let accountDir: string;
    beforeEach(async () => {
      // What the kubelet mounts, pointed at files of the test; the API server's address from the environment.
      const url = new URL(kube.url);
      process.env['KUBERNETES_SERVICE_HOST'] = url.hostname;
      process.env['KUBERNETES_SERVICE_PORT'] = url.port;
      accountDir = join(dir, 'serviceaccount');
      await mkdir(accountDir);
      const kc = new KubeConfig();
      kc.loadFromFile(kube.kubeconfigPath);
      await writeFile(join(accountDir, 'ca.crt'), Buffer.from(kc.getCurrentCluster()!.caData!, 'base64'));
      await writeFile(join(accountDir, 'token'), kube.token);
    });
    afterEach(() => {
      for (const [key, value] of [
        ['KUBERNETES_SERVICE_HOST', saved.host],
        ['KUBERNETES_SERVICE_PORT', saved.port],
      ] as const)
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
    });
    const inCluster = () => ({ inCluster: true, serviceAccountDir: accountDir });

    it('backs up and restores through the service account', async () => {
      const done = await backup(env({ credentials: inCluster() }));
      kube.put('namespaces', { metadata: { name: 'copy' } });
      const restored = await env({ credentials: inCluster() }).run('restore', {
        instanceId: instance.instanceId,
        locator: instance.locator,
        backupExternalId: done.value.externalId,
        target: { namespace: 'copy' },
      });
      expect(restored.ok ? 'ok' : restored.failure.message).toBe('ok');
      expect(await filesOf('copy', 'data')).toEqual(await filesOf('shop', 'data'));
    });

    it('refuses what is wrong, naming the field, and a token the cluster does not take', async () => {
      const failure = async (credentials: Record<string, unknown>) => {
        const run = await env({ credentials }).run('backup', instance);
        return run.ok ? 'ok' : `${run.failure.code}: ${run.failure.message}`;
      };
      expect(await failure({ ...inCluster(), kubeconfig: kube.kubeconfigPath })).toBe(
        'INVALID_CONFIG: credentials.kubeconfig: give kubeconfig or inCluster, not both',
      );
      expect(await failure({ inCluster: 'yes' })).toMatch(/^INVALID_CONFIG: credentials.inCluster: must be true/);
      expect(await failure({ inCluster: true, serviceAccountDir: 'relative' })).toMatch(
        /^INVALID_CONFIG: credentials.serviceAccountDir: must be the absolute path/,
      );
      expect(await failure({ kubeconfig: kube.kubeconfigPath, serviceAccountDir: accountDir })).toBe(
        'INVALID_CONFIG: credentials.serviceAccountDir: only with credentials.inCluster: true',
      );
      await rm(join(accountDir, 'ca.crt'));
      expect(await failure(inCluster())).toBe(
        `INVALID_CONFIG: credentials.serviceAccountDir: no file at ${join(accountDir, 'ca.crt')}`,
      );
      await writeFile(join(accountDir, 'ca.crt'), '');
      delete process.env['KUBERNETES_SERVICE_PORT'];
      expect(await failure(inCluster())).toMatch(
        /^INVALID_CONFIG: credentials.inCluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set/,
      );
      process.env['KUBERNETES_SERVICE_PORT'] = new URL(kube.url).port;
      const kc = new KubeConfig();
      kc.loadFromFile(kube.kubeconfigPath);
      await writeFile(join(accountDir, 'ca.crt'), Buffer.from(kc.getCurrentCluster()!.caData!, 'base64'));
      await writeFile(join(accountDir, 'token'), 'not-the-token');
      expect(await failure(inCluster())).toMatch(/^KUBE_UNAUTHORIZED: read namespace shop: the cluster refused/);
      expect(leftovers()).toEqual({ snapshots: 0, contents: 0, storage: 0 });
    });
  });

  it('refuses a restore target that is not a namespace', async () => {
    const { value } = await backup();
    const run = await env().run('restore', {
      instanceId: 'inst-1',
      locator: { namespace: 'shop' },
      backupExternalId: value.externalId,
      target: { path: '/tmp' },
    });
    expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toMatch(
      /^INVALID_LOCATOR: target\.path: unknown field/,
    );
    const bad = await env().run('restore', {
      instanceId: 'inst-1',
      locator: { namespace: 'shop' },
      backupExternalId: 'shop/../../etc',
    });
    expect(bad.ok ? '' : bad.failure.code).toBe('BACKUP_NOT_FOUND');
  });
});

// Keep the helper type in use for readers of the fixtures.
export type { KubeObject };
