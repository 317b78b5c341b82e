/**
 * The object store behind the fake API server: resources by kind, one resourceVersion counter for
 * all of them (as etcd's revision), optimistic concurrency, finalizers with deletionTimestamp, and
 * an event log that watches replay from (older than the log's start: 410 Gone).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    generateName?: string;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface ResourceType {
  group: string; // '' for the core group
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  hasStatus: boolean;
  shortNames?: string[];
}

export const RESOURCES: ResourceType[] = [
  {
    group: '',
    version: 'v1',
    plural: 'namespaces',
    kind: 'Namespace',
    namespaced: false,
    hasStatus: true,
    shortNames: ['ns'],
  },
  {
    group: '',
    version: 'v1',
    plural: 'persistentvolumeclaims',
    kind: 'PersistentVolumeClaim',
    namespaced: true,
    hasStatus: true,
    shortNames: ['pvc'],
  },
  {
    group: '',
    version: 'v1',
    plural: 'persistentvolumes',
    kind: 'PersistentVolume',
    namespaced: false,
    hasStatus: true,
    shortNames: ['pv'],
  },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, hasStatus: true, shortNames: ['po'] },
  { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true, hasStatus: false },
  {
    group: 'storage.k8s.io',
    version: 'v1',
    plural: 'storageclasses',
    kind: 'StorageClass',
    namespaced: false,
    hasStatus: false,
    shortNames: ['sc'],
  },
  {
    group: 'snapshot.storage.k8s.io',
    version: 'v1',
    plural: 'volumesnapshotclasses',
    kind: 'VolumeSnapshotClass',
    namespaced: false,
    hasStatus: false,
    shortNames: ['vsclass', 'vsclasses'],
  },
  {
    group: 'snapshot.storage.k8s.io',
    version: 'v1',
    plural: 'volumesnapshots',
    kind: 'VolumeSnapshot',
    namespaced: true,
    hasStatus: true,
    shortNames: ['vs'],
  },
  {
    group: 'snapshot.storage.k8s.io',
    version: 'v1',
    plural: 'volumesnapshotcontents',
    kind: 'VolumeSnapshotContent',
    namespaced: false,
    hasStatus: true,
    shortNames: ['vsc', 'vscs'],
  },
];

/** A failure the server answers as a Status body. */
export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  rv: number;
  object: KubeObject;
}

const clone = <T>(v: T): T => structuredClone(v);

export class Store extends EventEmitter<{ change: [WatchEvent] }> {
  private rv = 100;
  private readonly objects = new Map<string, KubeObject>();
  private log: WatchEvent[] = [];
  /** Events older than this were compacted away: a watch from before it gets 410 Gone. */
  private compactedTo = 100;

  private key(type: ResourceType, namespace: string | undefined, name: string): string {
    return `${type.plural}/${type.namespaced ? (namespace ?? '') : ''}/${name}`;
  }

  get resourceVersion(): number {
    return this.rv;
  }

  list(type: ResourceType, namespace?: string): KubeObject[] {
    const prefix = `${type.plural}/${type.namespaced && namespace ? namespace : ''}`;
    return [...this.objects.entries()]
      .filter(([k]) => k.startsWith(type.namespaced && namespace ? `${prefix}/` : `${type.plural}/`))
      .map(([, o]) => clone(o));
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.objects.get(this.key(type, namespace, name));
    if (!obj) throw notFound(type, name);
    return clone(obj);
  }

  find(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.objects.get(this.key(type, namespace, name));
    return obj && clone(obj);
  }

  create(type: ResourceType, namespace: string | undefined, body: KubeObject, now: Date): KubeObject {
    const meta = body.metadata;
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomUUID().slice(0, 5)}`;
    const k = this.key(type, namespace, meta.name);
    if (this.objects.has(k))
      throw new StatusError(409, 'AlreadyExists', `${resourceName(type)} "${meta.name}" already exists`);
    const obj: KubeObject = {
      ...clone(body),
      apiVersion: apiVersion(type),
      kind: type.kind,
      metadata: {
        ...clone(meta),
        ...(type.namespaced ? { namespace } : {}),
        uid: randomUUID(),
        generation: 1,
        creationTimestamp: now.toISOString().replace(/\.\d+Z$/, 'Z'),
      },
    };
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.generateName;
    return this.commit(type, k, obj, 'ADDED');
  }

  /**
   * Replaces an object. With a resourceVersion in the body it must be the current one (409
   * Conflict otherwise). `subresource` 'status' takes only the status; otherwise the status is kept.
   */
  update(type: ResourceType, namespace: string | undefined, body: KubeObject, subresource?: 'status'): KubeObject {
    const k = this.key(type, namespace, body.metadata.name);
    const current = this.objects.get(k);
    if (!current) throw notFound(type, body.metadata.name);
    const sent = body.metadata.resourceVersion;
    if (sent !== undefined && sent !== '' && sent !== current.metadata.resourceVersion)
      throw new StatusError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${resourceName(type)} "${body.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    let next: KubeObject;
    if (subresource === 'status') next = { ...clone(current), status: clone(body.status ?? {}) };
    else {
      next = { ...clone(body), metadata: { ...clone(body.metadata) } };
      if (type.hasStatus) next.status = clone(current.status ?? {});
      if (JSON.stringify(next.spec) !== JSON.stringify(current.spec))
        next.metadata.generation = (current.metadata.generation ?? 1) + 1;
      else next.metadata.generation = current.metadata.generation ?? 1;
    }
    // What the server owns stays the server's.
    next.apiVersion = apiVersion(type);
    next.kind = type.kind;
    for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'namespace'] as const) {
      if (current.metadata[f] === undefined) delete next.metadata[f];
      else next.metadata[f] = current.metadata[f];
    }
    if (current.metadata.deletionTimestamp && !(next.metadata.finalizers ?? []).length) {
      this.objects.delete(k);
      return this.emitChange(type, next, 'DELETED');
    }
    return this.commit(type, k, next, 'MODIFIED');
  }

  /** Deletes an object, or marks it with a deletionTimestamp while finalizers hold it. */
  delete(type: ResourceType, namespace: string | undefined, name: string, now: Date): KubeObject {
    const k = this.key(type, namespace, name);
    const current = this.objects.get(k);
    if (!current) throw notFound(type, name);
    if ((current.metadata.finalizers ?? []).length) {
      if (current.metadata.deletionTimestamp) return clone(current);
      const marked = clone(current);
      marked.metadata.deletionTimestamp = now.toISOString().replace(/\.\d+Z$/, 'Z');
      return this.commit(type, k, marked, 'MODIFIED');
    }
    this.objects.delete(k);
    return this.emitChange(type, clone(current), 'DELETED');
  }

  /** Events after `rv` for one resource type; throws 410 Gone when they were compacted away. */
  since(type: ResourceType, rv: number): WatchEvent[] {
    if (rv < this.compactedTo)
      throw new StatusError(410, 'Expired', `too old resource version: ${rv} (${this.compactedTo})`);
    return this.log.filter((e) => e.rv > rv && e.object.kind === type.kind);
  }

  /** Forgets the event log, as etcd's compaction does: older watches now get 410 Gone. */
  compact(): void {
    this.log = [];
    this.compactedTo = this.rv;
  }

  private commit(type: ResourceType, k: string, obj: KubeObject, kind: 'ADDED' | 'MODIFIED'): KubeObject {
    this.objects.set(k, obj);
    return this.emitChange(type, obj, kind);
  }

  private emitChange(_type: ResourceType, obj: KubeObject, kind: WatchEvent['type']): KubeObject {
    this.rv += 1;
    obj.metadata.resourceVersion = String(this.rv);
    const event: WatchEvent = { type: kind, rv: this.rv, object: clone(obj) };
    this.log.push(event);
    this.emit('change', event);
    return clone(obj);
  }
}

export function apiVersion(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

function resourceName(type: ResourceType): string {
  return type.group ? `${type.plural}.${type.group}` : type.plural;
}

export function notFound(type: ResourceType, name: string): StatusError {
  return new StatusError(404, 'NotFound', `${resourceName(type)} "${name}" not found`);
}

export function resourceType(plural: string): ResourceType {
  const type = RESOURCES.find((r) => r.plural === plural);
  if (!type) throw new Error(`no resource ${plural}`);
  return type;
}
