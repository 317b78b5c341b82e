/**
 * The plugin's one door to the cluster: typed calls through @kubernetes/client-node, each API
 * failure turned into a PluginError once (unreachable: retryable; 401/403: the credentials).
 */
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  StorageV1Api,
  type V1Namespace,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Pod,
  type V1Secret,
  type V1StorageClass,
} from '@kubernetes/client-node';
import { PluginError } from '@cairn/plugin-sdk';

export const SNAPSHOT_GROUP = 'snapshot.storage.k8s.io';
const VERSION = 'v1';

export type SnapshotPlural = 'volumesnapshots' | 'volumesnapshotcontents' | 'volumesnapshotclasses';

/** A snapshot.storage.k8s.io object as the API answers it (the fields the plugin reads). */
export interface SnapshotObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
  };
  spec?: Record<string, unknown>;
  status?: {
    readyToUse?: boolean;
    boundVolumeSnapshotContentName?: string;
    snapshotHandle?: string;
    restoreSize?: number | string;
    error?: { message?: string };
  };
  driver?: string;
  deletionPolicy?: string;
  parameters?: Record<string, string>;
}

export class Kube {
  private readonly core: CoreV1Api;
  private readonly storage: StorageV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(config: KubeConfig) {
    this.core = config.makeApiClient(CoreV1Api);
    this.storage = config.makeApiClient(StorageV1Api);
    this.custom = config.makeApiClient(CustomObjectsApi);
  }

  async namespace(name: string): Promise<V1Namespace | undefined> {
    return orAbsent(call(`read namespace ${name}`, () => this.core.readNamespace({ name })));
  }

  async claims(namespace: string, labelSelector?: string): Promise<V1PersistentVolumeClaim[]> {
    const list = await call(`list PersistentVolumeClaims in ${namespace}`, () =>
      this.core.listNamespacedPersistentVolumeClaim({ namespace, ...(labelSelector ? { labelSelector } : {}) }),
    );
    return list.items;
  }

  async claim(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined> {
    return orAbsent(
      call(`read PersistentVolumeClaim ${namespace}/${name}`, () =>
        this.core.readNamespacedPersistentVolumeClaim({ namespace, name }),
      ),
    );
  }

  async createClaim(namespace: string, body: V1PersistentVolumeClaim): Promise<V1PersistentVolumeClaim> {
    return call(`create PersistentVolumeClaim ${namespace}/${body.metadata?.name ?? ''}`, () =>
      this.core.createNamespacedPersistentVolumeClaim({ namespace, body }),
    );
  }

  async deleteClaim(namespace: string, name: string): Promise<void> {
    await orAbsent(
      call(`delete PersistentVolumeClaim ${namespace}/${name}`, () =>
        this.core.deleteNamespacedPersistentVolumeClaim({ namespace, name }),
      ),
    );
  }

  async createPod(namespace: string, body: V1Pod): Promise<V1Pod> {
    return call(`create Pod ${namespace}/${body.metadata?.name ?? ''}`, () =>
      this.core.createNamespacedPod({ namespace, body }),
    );
  }

  async pod(namespace: string, name: string): Promise<V1Pod | undefined> {
    return orAbsent(call(`read Pod ${namespace}/${name}`, () => this.core.readNamespacedPod({ namespace, name })));
  }

  async pods(namespace: string, labelSelector: string): Promise<V1Pod[]> {
    return (await call(`list Pods in ${namespace}`, () => this.core.listNamespacedPod({ namespace, labelSelector })))
      .items;
  }

  /** Pods of every namespace that match `labelSelector`. */
  async podsEverywhere(labelSelector: string): Promise<V1Pod[]> {
    return (await call('list Pods in all namespaces', () => this.core.listPodForAllNamespaces({ labelSelector })))
      .items;
  }

  /** What the pod's (only) container wrote to its standard output. */
  async podLog(namespace: string, name: string): Promise<string> {
    return call(`read the log of Pod ${namespace}/${name}`, () => this.core.readNamespacedPodLog({ namespace, name }));
  }

  async deletePod(namespace: string, name: string): Promise<void> {
    await orAbsent(
      call(`delete Pod ${namespace}/${name}`, () =>
        this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 }),
      ),
    );
  }

  async createSecret(namespace: string, body: V1Secret): Promise<void> {
    await call(`create Secret ${namespace}/${body.metadata?.name ?? ''}`, () =>
      this.core.createNamespacedSecret({ namespace, body }),
    );
  }

  async secrets(namespace: string, labelSelector: string): Promise<V1Secret[]> {
    return (
      await call(`list Secrets in ${namespace}`, () => this.core.listNamespacedSecret({ namespace, labelSelector }))
    ).items;
  }

  /** Secrets of every namespace that match `labelSelector`. */
  async secretsEverywhere(labelSelector: string): Promise<V1Secret[]> {
    return (await call('list Secrets in all namespaces', () => this.core.listSecretForAllNamespaces({ labelSelector })))
      .items;
  }

  async deleteSecret(namespace: string, name: string): Promise<void> {
    await orAbsent(
      call(`delete Secret ${namespace}/${name}`, () => this.core.deleteNamespacedSecret({ namespace, name })),
    );
  }

  async deleteVolume(name: string): Promise<void> {
    await orAbsent(call(`delete PersistentVolume ${name}`, () => this.core.deletePersistentVolume({ name })));
  }

  async volume(name: string): Promise<V1PersistentVolume | undefined> {
    return orAbsent(call(`read PersistentVolume ${name}`, () => this.core.readPersistentVolume({ name })));
  }

  async storageClasses(): Promise<V1StorageClass[]> {
    return (await call('list StorageClasses', () => this.storage.listStorageClass())).items;
  }

  async list(
    plural: SnapshotPlural,
    opts: { namespace?: string; labelSelector?: string } = {},
  ): Promise<SnapshotObject[]> {
    const base = {
      group: SNAPSHOT_GROUP,
      version: VERSION,
      plural,
      ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
    };
    const list = (await call(`list ${plural}`, () =>
      opts.namespace
        ? this.custom.listNamespacedCustomObject({ ...base, namespace: opts.namespace })
        : this.custom.listClusterCustomObject(base),
    )) as { items: SnapshotObject[] };
    return list.items;
  }

  async get(plural: SnapshotPlural, name: string, namespace?: string): Promise<SnapshotObject | undefined> {
    const base = { group: SNAPSHOT_GROUP, version: VERSION, plural, name };
    return orAbsent(
      call(`read ${plural} ${namespace ? `${namespace}/` : ''}${name}`, () =>
        namespace
          ? this.custom.getNamespacedCustomObject({ ...base, namespace })
          : this.custom.getClusterCustomObject(base),
      ) as Promise<SnapshotObject>,
    );
  }

  /** Creates `body`; one that already exists is answered `undefined` (the caller decides whether to adopt it). */
  async create(plural: SnapshotPlural, body: SnapshotObject, namespace?: string): Promise<SnapshotObject | undefined> {
    const base = { group: SNAPSHOT_GROUP, version: VERSION, plural, body };
    try {
      return (await call(`create ${plural} ${body.metadata.name}`, () =>
        namespace
          ? this.custom.createNamespacedCustomObject({ ...base, namespace })
          : this.custom.createClusterCustomObject(base),
      )) as SnapshotObject;
    } catch (err) {
      if ((err as KubeError).status === 409) return undefined;
      throw err;
    }
  }

  /** Replaces a cluster-scoped object (its resourceVersion guards against a lost update). */
  async replace(plural: SnapshotPlural, body: SnapshotObject): Promise<SnapshotObject> {
    return (await call(`replace ${plural} ${body.metadata.name}`, () =>
      this.custom.replaceClusterCustomObject({
        group: SNAPSHOT_GROUP,
        version: VERSION,
        plural,
        name: body.metadata.name,
        body,
      }),
    )) as SnapshotObject;
  }

  /** Deletes an object; one already gone is not an error. */
  async remove(plural: SnapshotPlural, name: string, namespace?: string): Promise<void> {
    const base = { group: SNAPSHOT_GROUP, version: VERSION, plural, name };
    await orAbsent(
      call(`delete ${plural} ${name}`, () =>
        namespace
          ? this.custom.deleteNamespacedCustomObject({ ...base, namespace })
          : this.custom.deleteClusterCustomObject(base),
      ),
    );
  }
}

/** A PluginError that keeps the API's HTTP status, for the callers that branch on it (404, 409). */
export class KubeError extends PluginError {
  constructor(
    code: string,
    message: string,
    readonly status: number | undefined,
    retryable: boolean,
  ) {
    super(code, message, { retryable });
  }
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiException) {
      const status = err.code;
      const detail = statusMessage(err.body) ?? err.message;
      if (status === 401 || status === 403)
        throw new KubeError(
          'KUBE_UNAUTHORIZED',
          `${what}: the cluster refused the kubeconfig's credentials (${status}): ${detail}`,
          status,
          false,
        );
      throw new KubeError('KUBE_API_ERROR', `${what}: ${status} ${detail}`, status, status >= 500 || status === 429);
    }
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code;
    throw new KubeError(
      'KUBE_UNREACHABLE',
      `${what}: the cluster did not answer (${cause ?? String(err)})`,
      undefined,
      true,
    );
  }
}

async function orAbsent<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if ((err as KubeError).status === 404) return undefined;
    throw err;
  }
}

function statusMessage(body: unknown): string | undefined {
  try {
    const parsed = (typeof body === 'string' ? JSON.parse(body) : body) as { message?: unknown };
    return typeof parsed?.message === 'string' ? parsed.message : undefined;
  } catch {
    return typeof body === 'string' && body ? body.slice(0, 300) : undefined;
  }
}
