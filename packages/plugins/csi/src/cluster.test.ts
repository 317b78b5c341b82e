// The CSI plugin on a cluster it reaches only through a kubeconfig: the cluster named by
// CAIRN_TEST_KUBECONFIG when it is set (kind with the csi-hostpath driver is the documented
// recipe), else the fake Kubernetes API server with the same setup. Nothing here reads the fake's
// internals: data goes in and comes out through busybox pods, objects are counted through the
// API, so what passes here against the fake is what a real cluster is asked to prove. Everything
// the suite makes carries its run's tag and is removed at the end, backups included.
import { CSI_HOSTPATH, startFakeKube, type FakeKube } from '@cairn/kube-apiserver-fake';
import type { ProviderConnection } from '@cairn/plugin-sdk';
import { MockTaskEnvironment, type MockRun } from '@cairn/plugin-sdk/testing';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, StorageV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_SNAPSHOT_CLASS, VOLUME_SNAPSHOT_CLASS } from './classes.js';
import { Kube, type SnapshotPlural } from './client.js';
import plugin from './index.js';
import { oneShotPod } from './pods.js';
import { backupIdFor, LABEL_BACKUP } from './record.js';

const REAL = process.env['CAIRN_TEST_KUBECONFIG'];
/** On a real cluster: its StorageClass of a CSI driver with snapshots, and a busybox image its nodes can pull. */
const STORAGE_CLASS = process.env['CAIRN_TEST_KUBE_STORAGECLASS'] ?? CSI_HOSTPATH.storageClass;
const IMAGE = process.env['CAIRN_TEST_KUBE_IMAGE'] ?? 'busybox:1.36';
/** A restic repository the cluster's pods reach, with its password (on a real cluster; the fake's pods reach a local one). */
const EXPORT_REPOSITORY = process.env['CAIRN_TEST_KUBE_EXPORT_REPOSITORY'];
const EXPORT_PASSWORD = process.env['CAIRN_TEST_KUBE_EXPORT_PASSWORD'];
/** A real cluster pulls images and provisions volumes: waits are minutes there, seconds against the fake. */
const WAIT_S = REAL ? 300 : 30;
const POLL_MS = REAL ? 500 : 20;

const RUN = randomBytes(3).toString('hex');
const LABEL_RUN = 'cairn.dev/test-run';
const ns = (name: string) => `cairn-it-${RUN}-${name}`;
const INSTANCE = `it-${RUN}`;

let dir: string;
let fake: FakeKube | undefined;
let kubeconfigPath: string;
let core: CoreV1Api;
let storage: StorageV1Api;
let kube: Kube;
/** The driver of STORAGE_CLASS and the one class annotated for it. */
let driver: string;
let snapshotClass: string;
let exportTo: (ProviderConnection & { plugin: string }) | undefined;
const namespaces = new Set<string>();
/** Backups the suite made and has not deleted: externalId → its instance, and whether it was exported. */
const backups = new Map<string, { instanceId: string; exporting: boolean }>();
const clusterClasses: { plural: 'volumesnapshotclasses'; name: string }[] = [];
const storageClasses: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-csi-cluster-'));
  if (REAL) kubeconfigPath = REAL;
  else {
    fake = await startFakeKube({ dir, preset: 'csi-hostpath', snapshotDelayMs: 300 });
    kubeconfigPath = fake.kubeconfigPath;
  }
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  storage = kc.makeApiClient(StorageV1Api);
  kube = new Kube(kc);
  const sc = (await kube.storageClasses()).find((s) => s.metadata?.name === STORAGE_CLASS);
  if (!sc)
    throw new Error(
      `the cluster has no StorageClass ${STORAGE_CLASS} (set CAIRN_TEST_KUBE_STORAGECLASS to one of a CSI driver with snapshots)`,
    );
  driver = sc.provisioner;
  const annotated = (await kube.list('volumesnapshotclasses')).filter(
    (c) => c.driver === driver && c.metadata.annotations?.[IS_SNAPSHOT_CLASS] === 'true',
  );
  if (annotated.length !== 1)
    throw new Error(
      `the suite needs exactly one VolumeSnapshotClass of ${driver} annotated ${IS_SNAPSHOT_CLASS}="true", found ${annotated.length}: kubectl annotate volumesnapshotclass <name> ${IS_SNAPSHOT_CLASS}=true`,
    );
  snapshotClass = annotated[0]!.metadata.name;
  if (!REAL) {
    const repository = join(dir, 'export-repo');
    execFileSync('restic', ['init', '-q'], {
      env: { ...process.env, RESTIC_REPOSITORY: repository, RESTIC_PASSWORD: 'export-pw' },
    });
    exportTo = {
      plugin: '@cairn/plugin-restic',
      endpoint: repository,
      config: {},
      credentials: { password: 'export-pw' },
    };
  } else if (EXPORT_REPOSITORY && EXPORT_PASSWORD)
    exportTo = {
      plugin: '@cairn/plugin-restic',
      endpoint: EXPORT_REPOSITORY,
      config: {},
      credentials: { password: EXPORT_PASSWORD },
    };
  console.log(
    `[cairn] CSI cluster suite on ${REAL ? `the cluster of ${REAL}` : 'the fake Kubernetes API server (CAIRN_TEST_KUBECONFIG is not set)'}: StorageClass ${STORAGE_CLASS}, driver ${driver}, class ${snapshotClass}, run ${RUN}`,
  );
}, 120_000);

afterAll(async () => {
  // Backups first (their contents are Retain: deleting a namespace does not remove them), then
  // the namespaces, the classes the suite made, and the Retain clones only it used.
  for (const [externalId, { instanceId, exporting }] of backups)
    await env({ exporting }).run('delete-backup', {
      backupExternalId: externalId,
      locator: { namespace: externalId.split('/')[0] },
      instanceId,
    });
  for (const name of namespaces) await core.deleteNamespace({ name }).catch(() => undefined);
  for (const c of clusterClasses) await kube.remove(c.plural, c.name);
  for (const name of storageClasses) await storage.deleteStorageClass({ name }).catch(() => undefined);
  await fake?.close();
  await rm(dir, { recursive: true, force: true });
}, WAIT_S * 1000);

function env(opts: { taskId?: string; config?: Record<string, unknown>; exporting?: boolean } = {}) {
  return new MockTaskEnvironment(plugin, {
    credentials: { kubeconfig: kubeconfigPath },
    config: {
      pollIntervalMs: POLL_MS,
      readyTimeoutS: WAIT_S,
      ...(opts.exporting ? { export: { namespace: ns('movers') } } : {}),
      ...opts.config,
    },
    ...(opts.exporting && exportTo ? { exportTo } : {}),
    taskId: opts.taskId ?? `t-${RUN}-${randomBytes(4).toString('hex')}`,
  });
}

function ok<T extends MockRun>(run: T): T & { ok: true } {
  if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
  return run as T & { ok: true };
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>): Promise<T> {
  const end = Date.now() + WAIT_S * 1000;
  for (;;) {
    const got = await probe();
    if (got) return got;
    if (Date.now() > end) throw new Error(`timed out after ${WAIT_S} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function namespace(name: string): Promise<string> {
  const full = ns(name);
  await core.createNamespace({ body: { metadata: { name: full, labels: { [LABEL_RUN]: RUN } } } });
  namespaces.add(full);
  return full;
}

async function deleteNamespace(name: string): Promise<void> {
  await core.deleteNamespace({ name });
  await until(`namespace ${name} gone`, async () => !(await kube.namespace(name)));
  namespaces.delete(name);
}

/** A pod of the busybox image with `claim` at /data, run to its end; answers its log. */
async function runPod(namespace: string, claim: string, script: string, vars: Record<string, string> = {}) {
  const name = `io-${randomBytes(4).toString('hex')}`;
  const pod: V1Pod = oneShotPod({ name, namespace, labels: { [LABEL_RUN]: RUN } }, claim, '/data', {
    name: 'io',
    image: IMAGE,
    command: ['sh', '-c', script],
    env: Object.entries(vars).map(([n, value]) => ({ name: n, value })),
  });
  await kube.createPod(namespace, pod);
  try {
    const phase = await until(`pod ${namespace}/${name} ended`, async () => {
      const p = (await kube.pod(namespace, name))?.status?.phase;
      return p === 'Succeeded' || p === 'Failed' ? p : undefined;
    });
    const log = await kube.podLog(namespace, name);
    if (phase !== 'Succeeded') throw new Error(`pod ${namespace}/${name} ${phase}: ${log}`);
    return log;
  } finally {
    await kube.deletePod(namespace, name);
  }
}

/** A claim of `storageClass` in `namespace`, `files` written into it by a pod (which binds it on any binding mode). */
async function claimWith(
  namespace: string,
  claim: string,
  files: Record<string, string>,
  storageClass = STORAGE_CLASS,
) {
  await kube.createClaim(namespace, {
    metadata: { name: claim, namespace, labels: { [LABEL_RUN]: RUN } },
    spec: {
      storageClassName: storageClass,
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '64Mi' } },
    },
  });
  const names = Object.keys(files);
  await runPod(
    namespace,
    claim,
    names.map((f, i) => `printf %s "$F${i}" > /data/${f}`).join(' && '),
    Object.fromEntries(names.map((f, i) => [`F${i}`, files[f]!])),
  );
  await until(
    `claim ${namespace}/${claim} bound`,
    async () => (await kube.claim(namespace, claim))?.status?.phase === 'Bound',
  );
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const hashes = (files: Record<string, string>) =>
  Object.fromEntries(Object.entries(files).map(([f, t]) => [f, sha256(t)]));

/** The sha256 of each file of `names` in the claim, read by a pod (`sha256sum`). */
async function hashesIn(namespace: string, claim: string, names: string[]): Promise<Record<string, string>> {
  const log = await runPod(namespace, claim, `sha256sum ${names.map((f) => `/data/${f}`).join(' ')}`);
  return Object.fromEntries(
    log
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/))
      .map(([hex, path]) => [path!.slice('/data/'.length), hex!]),
  );
}

/** VolumeSnapshots and contents of one backup, counted through the API. */
async function heldBy(backupId: string) {
  const count = async (plural: SnapshotPlural) =>
    (await kube.list(plural, { labelSelector: `${LABEL_BACKUP}=${backupId}` })).length;
  return { snapshots: await count('volumesnapshots'), contents: await count('volumesnapshotcontents') };
}

async function backUp(instanceId: string, namespace: string, req: Record<string, unknown> = {}, exporting = false) {
  const run = ok(
    await env({ exporting }).run('backup', {
      instanceId,
      instanceName: namespace,
      locator: { namespace },
      mode: 'FULL' as const,
      ...req,
    }),
  );
  backups.set(run.value.externalId, { instanceId, exporting });
  return run.value;
}

const DATA = { 'a.txt': `alpha ${RUN}\n`, 'b.txt': 'b'.repeat(3000) };
const LOGS = { 'log.txt': `one line ${RUN}\n` };

describe(
  `the CSI plugin on ${REAL ? 'the cluster of CAIRN_TEST_KUBECONFIG' : 'the fake cluster, through its kubeconfig only'}`,
  { timeout: WAIT_S * 4 * 1000 },
  () => {
    let source: string;
    let first: { externalId: string; extra?: Record<string, unknown> };

    it('backs up a namespace of two claims through a Retain clone of the annotated class', async () => {
      source = await namespace('src');
      await claimWith(source, 'data', DATA);
      await claimWith(source, 'logs', LOGS);
      first = await backUp(INSTANCE, source);
      const volumes = first.extra!['volumes'] as {
        claim: string;
        snapshotClass: string;
        cloneClass: string;
        snapshotHandle: string;
      }[];
      expect(volumes.map((v) => [v.claim, v.snapshotClass, v.cloneClass])).toEqual([
        ['data', snapshotClass, `${snapshotClass}-cairn-retain`],
        ['logs', snapshotClass, `${snapshotClass}-cairn-retain`],
      ]);
      expect(volumes.every((v) => v.snapshotHandle.length > 0)).toBe(true);
      const backupId = first.externalId.split('/')[1]!;
      const contents = await kube.list('volumesnapshotcontents', { labelSelector: `${LABEL_BACKUP}=${backupId}` });
      expect(contents.map((c) => c.spec?.['deletionPolicy'])).toEqual(['Retain', 'Retain']);
      expect(contents.every((c) => c.status?.readyToUse === true)).toBe(true);
    });

    /** Restores the first backup into a new namespace `name`; answers that namespace. */
    async function restoreFirstInto(name: string): Promise<string> {
      const target = await namespace(name);
      ok(
        await env().run('restore', {
          instanceId: INSTANCE,
          locator: { namespace: source },
          backupExternalId: first.externalId,
          target: { namespace: target },
        }),
      );
      return target;
    }

    it('restores into a new namespace, byte for byte', async () => {
      const target = await restoreFirstInto('dst1');
      expect(await hashesIn(target, 'data', Object.keys(DATA))).toEqual(hashes(DATA));
      expect(await hashesIn(target, 'logs', Object.keys(LOGS))).toEqual(hashes(LOGS));
    });

    it('keeps the backup when the source namespace is deleted, and restores it into another', async () => {
      await deleteNamespace(source);
      expect(await heldBy(first.externalId.split('/')[1]!)).toEqual({ snapshots: 0, contents: 2 });
      const target = await restoreFirstInto('dst2');
      expect(await hashesIn(target, 'data', Object.keys(DATA))).toEqual(hashes(DATA));
    });

    it('lists the backup in a sync, deletes it with everything it made, and lists it no more', async () => {
      const mine = async () =>
        ok(await env().run('sync', {}))
          .value.filter((b) => (b.locator as { instanceId?: string } | undefined)?.instanceId === INSTANCE)
          .map((b) => b.externalId);
      expect(await mine()).toEqual([first.externalId]);
      ok(
        await env().run('delete-backup', {
          backupExternalId: first.externalId,
          locator: { namespace: source },
          instanceId: INSTANCE,
        }),
      );
      backups.delete(first.externalId);
      const backupId = first.externalId.split('/')[1]!;
      await until(
        'the backup gone',
        async () => JSON.stringify(await heldBy(backupId)) === '{"snapshots":0,"contents":0}',
      );
      expect(await mine()).toEqual([]);
    });

    it('removes what it made when cancelled midway', async () => {
      const target = await namespace('cancel');
      await claimWith(target, 'data', DATA);
      const taskId = `t-${RUN}-cancel`;
      const backupId = backupIdFor(taskId);
      const e = env({ taskId });
      const running = e.run('backup', {
        instanceId: `${INSTANCE}-c`,
        instanceName: target,
        locator: { namespace: target },
        mode: 'FULL' as const,
      });
      await until('its VolumeSnapshot made', async () => (await heldBy(backupId)).snapshots === 1);
      e.cancel('stop');
      const run = await running;
      if (run.ok) backups.set(run.value.externalId, { instanceId: `${INSTANCE}-c`, exporting: false });
      expect(run.ok ? 'finished before the cancel' : run.failure.code).toBe('CANCELLED');
      await until(
        'nothing of it left',
        async () => JSON.stringify(await heldBy(backupId)) === '{"snapshots":0,"contents":0}',
      );
    });

    it('chooses the class a StorageClass names over the annotated one, and refuses two annotated classes naming both', async () => {
      const named = `cairn-it-${RUN}-named`;
      await kube.create('volumesnapshotclasses', {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshotClass',
        metadata: { name: named, labels: { [LABEL_RUN]: RUN } },
        driver,
        deletionPolicy: 'Delete',
      });
      clusterClasses.push(
        { plural: 'volumesnapshotclasses', name: named },
        { plural: 'volumesnapshotclasses', name: `${named}-cairn-retain` },
      );
      const base = (await kube.storageClasses()).find((s) => s.metadata?.name === STORAGE_CLASS)!;
      const overriding = `cairn-it-${RUN}-sc`;
      await storage.createStorageClass({
        body: {
          metadata: { name: overriding, labels: { [LABEL_RUN]: RUN }, annotations: { [VOLUME_SNAPSHOT_CLASS]: named } },
          provisioner: driver,
          ...(base.parameters ? { parameters: base.parameters } : {}),
          ...(base.volumeBindingMode ? { volumeBindingMode: base.volumeBindingMode } : {}),
          reclaimPolicy: 'Delete',
        },
      });
      storageClasses.push(overriding);
      const target = await namespace('classes');
      await claimWith(target, 'data', DATA, overriding);
      const made = await backUp(`${INSTANCE}-k`, target);
      expect(
        (made.extra!['volumes'] as { snapshotClass: string; cloneClass: string }[]).map((v) => [
          v.snapshotClass,
          v.cloneClass,
        ]),
      ).toEqual([[named, `${named}-cairn-retain`]]);

      const second = `cairn-it-${RUN}-second`;
      await kube.create('volumesnapshotclasses', {
        apiVersion: 'snapshot.storage.k8s.io/v1',
        kind: 'VolumeSnapshotClass',
        metadata: { name: second, labels: { [LABEL_RUN]: RUN }, annotations: { [IS_SNAPSHOT_CLASS]: 'true' } },
        driver,
        deletionPolicy: 'Delete',
      });
      try {
        const plain = await namespace('two');
        await claimWith(plain, 'data', LOGS);
        const taskId = `t-${RUN}-two`;
        const run = await env({ taskId }).run('backup', {
          instanceId: `${INSTANCE}-t`,
          instanceName: plain,
          locator: { namespace: plain },
          mode: 'FULL' as const,
        });
        if (run.ok) backups.set(run.value.externalId, { instanceId: `${INSTANCE}-t`, exporting: false });
        expect(run.ok ? 'made' : run.failure.code).toBe('SNAPSHOT_CLASS');
        expect(run.ok ? '' : run.failure.message).toContain(driver);
        expect(run.ok ? '' : run.failure.message).toContain(snapshotClass);
        expect(run.ok ? '' : run.failure.message).toContain(second);
        expect(await heldBy(backupIdFor(taskId))).toEqual({ snapshots: 0, contents: 0 });
      } finally {
        await kube.remove('volumesnapshotclasses', second);
      }
    });

    it('runs the preflight primer on the StorageClass: every check passes and nothing is left', async () => {
      const target = await namespace('primer');
      const run = ok(
        await env({ config: { primer: { storageClass: STORAGE_CLASS, namespace: target, image: IMAGE } } }).run(
          'preflight',
          {},
        ),
      );
      const primer = run.value.checks!.filter((c) => c.name.startsWith('primer:'));
      expect(primer.map((c) => [c.name, c.ok])).toEqual(
        ['primer:claim', 'primer:write', 'primer:snapshot', 'primer:restore', 'primer:compare', 'primer:cleanup'].map(
          (n) => [n, true],
        ),
      );
      const left = async () => ({
        pods: (await core.listNamespacedPod({ namespace: target, labelSelector: 'cairn.dev/primer' })).items.length,
        claims: (await kube.claims(target, 'cairn.dev/primer')).length,
        snapshots: (await kube.list('volumesnapshots', { namespace: target, labelSelector: 'cairn.dev/primer' }))
          .length,
      });
      await until(
        'the primer gone',
        async () => JSON.stringify(await left()) === '{"pods":0,"claims":0,"snapshots":0}',
      );
    });

    const exportNote =
      'no export target: set CAIRN_TEST_KUBE_EXPORT_REPOSITORY and CAIRN_TEST_KUBE_EXPORT_PASSWORD (a restic repository the pods reach)';
    it.skipIf(REAL && !(EXPORT_REPOSITORY && EXPORT_PASSWORD))(
      'exports a backup that outlives its namespace and its snapshot contents, and restores it from the export',
      async () => {
        const movers = await namespace('movers');
        const from = await namespace('exp');
        await claimWith(from, 'data', DATA);
        const made = await backUp(`${INSTANCE}-x`, from, { offeringExternalId: 'snapshots+export' }, true);
        const volumes = made.extra!['volumes'] as { content: string; exportId?: string }[];
        expect(volumes.map((v) => typeof v.exportId)).toEqual(['string']);
        // The namespace gone, and the contents too, storage snapshots with them (as an admin might).
        await deleteNamespace(from);
        for (const v of volumes) {
          const content = (await kube.get('volumesnapshotcontents', v.content))!;
          await kube.replace('volumesnapshotcontents', {
            ...content,
            spec: { ...content.spec, deletionPolicy: 'Delete' },
          });
          await kube.remove('volumesnapshotcontents', v.content);
        }
        const backupId = made.externalId.split('/')[1]!;
        await until('the contents gone', async () => (await heldBy(backupId)).contents === 0);
        const listed = ok(await env({ exporting: true }).run('sync', {})).value.map((b) => b.externalId);
        expect(listed).toContain(made.externalId);
        const target = await namespace('from-export');
        ok(
          await env({ exporting: true }).run('restore', {
            instanceId: `${INSTANCE}-x`,
            locator: { namespace: from },
            backupExternalId: made.externalId,
            target: { namespace: target },
          }),
        );
        expect(await hashesIn(target, 'data', Object.keys(DATA))).toEqual(hashes(DATA));
        const movers_left = await core.listPodForAllNamespaces({ labelSelector: 'cairn.dev/export' });
        expect(movers_left.items.filter((p) => p.metadata?.namespace?.startsWith(`cairn-it-${RUN}`))).toEqual([]);
        void movers;
      },
    );
    it('deletes every backup it made, each with all its snapshots and contents', async () => {
      expect(backups.size).toBeGreaterThan(0);
      for (const [externalId, { instanceId, exporting }] of [...backups]) {
        ok(
          await env({ exporting }).run('delete-backup', {
            backupExternalId: externalId,
            locator: { namespace: externalId.split('/')[0] },
            instanceId,
          }),
        );
        backups.delete(externalId);
        const backupId = externalId.split('/')[1]!;
        await until(
          `${externalId} gone`,
          async () => JSON.stringify(await heldBy(backupId)) === '{"snapshots":0,"contents":0}',
        );
      }
    });

    if (REAL && !(EXPORT_REPOSITORY && EXPORT_PASSWORD))
      console.log(`[cairn] CSI cluster suite: the export case is skipped: ${exportNote}`);
  },
);
