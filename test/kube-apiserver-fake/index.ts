/**
 * A Kubernetes API server of our own, on loopback, for tests that cannot have a cluster: the
 * resources the CSI plugin uses, their Status bodies, watches, finalizers, CRD-schema validation of
 * snapshot.storage.k8s.io/v1 bodies, and a simulated provisioner, snapshot controller and CSI
 * driver. Reach it through a real kubeconfig (`kubeconfigPath`) with any client (kubectl too).
 *
 * @example
 * const kube = await startFakeKube({ dir: await mkdtemp(join(tmpdir(), 'kube-')) });
 * const kc = new KubeConfig(); kc.loadFromFile(kube.kubeconfigPath);
 * // ... kube.controller.faults.snapshotError.add('ns/claim') ...
 * await kube.close();
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { makeCertificate } from '@cairn/test-harness/tls';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { FakeController } from './controller.js';
import { listen } from './server.js';
import { resourceType, Store, type KubeObject } from './store.js';

export { FakeController, type Faults } from './controller.js';
export { runContainer, mountResolver, type ContainerRun } from './kubelet.js';
export { RESOURCES, resourceType, Store, StatusError, type KubeObject, type ResourceType } from './store.js';

export interface FakeKubeOptions {
  /** A directory the fake owns: kubeconfig, volumes and snapshots. */
  dir: string;
  /** CSI drivers the simulated driver answers for. Default `['hostpath.csi.k8s.io']`. */
  drivers?: readonly string[];
  /** How long a snapshot takes to become ready. Default 50 ms. */
  snapshotDelayMs?: number;
  /** Run the simulated controller and driver from the start (default true; `controller.start()` later). */
  simulate?: boolean;
  /**
   * What the cluster holds from the start. `csi-hostpath`: what the documented kind recipe's
   * cluster holds for Cairn: the StorageClass `csi-hostpath-sc` of `hostpath.csi.k8s.io` and its
   * VolumeSnapshotClass `csi-hostpath-snapclass`, annotated `cairn.dev/is-snapshot-class: "true"`.
   */
  preset?: 'csi-hostpath';
}

/** The driver, StorageClass and VolumeSnapshotClass of the `csi-hostpath` preset (and of the kind recipe). */
export const CSI_HOSTPATH = {
  driver: 'hostpath.csi.k8s.io',
  storageClass: 'csi-hostpath-sc',
  snapshotClass: 'csi-hostpath-snapclass',
} as const;

export interface FakeKube {
  url: string;
  token: string;
  kubeconfigPath: string;
  store: Store;
  controller: FakeController;
  /** Creates an object straight in the store (as an admin's kubectl would), namespace from its metadata. */
  put(plural: string, obj: KubeObject): KubeObject;
  /** Creates a 1Gi ReadWriteOnce claim of `storageClass` straight in the store. */
  putClaim(namespace: string, name: string, storageClass: string): KubeObject;
  close(): Promise<void>;
}

export async function startFakeKube(opts: FakeKubeOptions): Promise<FakeKube> {
  const store = new Store();
  const now = () => new Date();
  const token = randomBytes(16).toString('hex');
  const cert = makeCertificate(opts.dir, 'apiserver');
  const controller = new FakeController({
    store,
    root: opts.dir,
    drivers: opts.drivers ?? ['hostpath.csi.k8s.io'],
    snapshotDelayMs: opts.snapshotDelayMs ?? 50,
    now,
  });
  const { server, url } = await listen({
    store,
    token,
    now,
    cert: cert.pem,
    key: readFileSync(cert.keyFile, 'utf8'),
    podLog: (namespace, name) => controller.podLog(namespace, name),
  });
  if (opts.preset === 'csi-hostpath') {
    const at = now();
    store.create(
      resourceType('storageclasses'),
      undefined,
      {
        metadata: { name: CSI_HOSTPATH.storageClass },
        provisioner: CSI_HOSTPATH.driver,
        reclaimPolicy: 'Delete',
        volumeBindingMode: 'Immediate',
      },
      at,
    );
    store.create(
      resourceType('volumesnapshotclasses'),
      undefined,
      {
        metadata: { name: CSI_HOSTPATH.snapshotClass, annotations: { 'cairn.dev/is-snapshot-class': 'true' } },
        driver: CSI_HOSTPATH.driver,
        deletionPolicy: 'Delete',
      },
      at,
    );
  }
  if (opts.simulate !== false) controller.start();
  const kubeconfigPath = join(opts.dir, 'kubeconfig.yaml');
  await writeFile(
    kubeconfigPath,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'fake',
          cluster: { server: url, 'certificate-authority-data': Buffer.from(cert.pem).toString('base64') },
        },
      ],
      users: [{ name: 'cairn', user: { token } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'cairn' } }],
      'current-context': 'fake',
    }),
    { mode: 0o600 },
  );
  return {
    url,
    token,
    kubeconfigPath,
    store,
    controller,
    put: (plural, obj) => store.create(resourceType(plural), obj.metadata.namespace, obj, now()),
    putClaim: (namespace, name, storageClass) =>
      store.create(
        resourceType('persistentvolumeclaims'),
        namespace,
        {
          metadata: { name, namespace },
          spec: {
            storageClassName: storageClass,
            accessModes: ['ReadWriteOnce'],
            resources: { requests: { storage: '1Gi' } },
          },
        },
        now(),
      ),
    async close() {
      controller.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Waits until `probe` answers something truthy (the fake's controller works on its own ticks),
 * polling every 10 ms; throws `timed out waiting for <what>` after `ms`.
 *
 * @example await until('data bound', () => kube.store.find(PVC, 'shop', 'data')?.status?.['phase'] === 'Bound');
 */
export async function until<T>(what: string, probe: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const got = probe();
    if (got) return got;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
