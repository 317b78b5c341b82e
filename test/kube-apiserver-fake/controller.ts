/**
 * A simulated external-provisioner, snapshot controller and CSI driver in one loop. Volumes are
 * directories under `<root>/volumes`, snapshots copies under `<root>/snapshots`. It reconciles
 * on every change and on a short tick (for delays), and models what the CSI plugin relies on:
 * provisioning (from a VolumeSnapshot dataSource too), dynamic and pre-provisioned snapshots,
 * readyToUse after a delay, finalizers, deletionPolicy (Delete cascades to the storage snapshot,
 * Retain keeps it), namespace deletion cascading to what the namespace holds, and a kubelet that
 * runs pods (`kubelet.ts`) against the directories of the claims they mount. Faults are keyed by
 * `<namespace>/<claim>` (of the snapshotted claim for snapshot faults), or `<namespace>/*` for every
 * claim of the namespace.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountResolver, runContainer } from './kubelet.js';
import { resourceType, type KubeObject, type Store, type WatchEvent } from './store.js';

export interface Faults {
  /** Snapshots of these claims get `status.error` and never become ready. */
  snapshotError: Set<string>;
  /** Snapshots of these claims never become ready, without an error. */
  neverReady: Set<string>;
  /** VolumeSnapshots of these claims keep their finalizer when deleted. */
  stuckFinalizer: Set<string>;
  /** These claims are never provisioned: they stay Pending. */
  neverBind: Set<string>;
  /** These claims, when made from a VolumeSnapshot, are never provisioned (a failed restore). */
  restoreError: Set<string>;
  /** These claims, when made from a VolumeSnapshot, get a copy with one byte of every file changed. */
  corruptRestore: Set<string>;
  /** Pods mounting these claims fail (exit code 1) without running their command. */
  podFailure: Set<string>;
}

export interface ControllerOptions {
  store: Store;
  root: string;
  drivers: readonly string[];
  snapshotDelayMs: number;
  now: () => Date;
}

const NS = resourceType('namespaces');
const PVC = resourceType('persistentvolumeclaims');
const PV = resourceType('persistentvolumes');
const SC = resourceType('storageclasses');
const VS = resourceType('volumesnapshots');
const VSC = resourceType('volumesnapshotcontents');
const VSCLASS = resourceType('volumesnapshotclasses');
const POD = resourceType('pods');
const SECRET = resourceType('secrets');
const BOUND = 'snapshot.storage.kubernetes.io/volumesnapshot-bound-protection';
const NS_FINALIZER = 'kubernetes';

type Obj = KubeObject & { spec: Record<string, any>; status: Record<string, any> };

export class FakeController {
  readonly faults: Faults = {
    snapshotError: new Set(),
    neverReady: new Set(),
    stuckFinalizer: new Set(),
    neverBind: new Set(),
    restoreError: new Set(),
    corruptRestore: new Set(),
    podFailure: new Set(),
  };
  /** What each pod's container printed, by `<namespace>/<pod>`, while the pod exists. */
  private readonly logs = new Map<string, string>();
  private tick: NodeJS.Timeout | undefined;
  private pending = false;
  /** When the driver first saw each content it is cutting a snapshot for (uid → ms). */
  private readonly firstSeen = new Map<string, number>();
  private readonly onChange = (e: WatchEvent) => {
    if (e.type === 'DELETED') this.deleted(e.object as Obj);
    this.schedule();
  };

  constructor(private readonly opts: ControllerOptions) {
    mkdirSync(this.volumesDir, { recursive: true });
    mkdirSync(this.snapshotsDir, { recursive: true });
  }

  /** Starts reconciling: on every change, and on a short tick for delays. */
  start(): void {
    if (this.tick) return;
    this.opts.store.on('change', this.onChange);
    this.tick = setInterval(() => this.schedule(), 20);
    this.schedule();
  }

  get volumesDir(): string {
    return join(this.opts.root, 'volumes');
  }

  get snapshotsDir(): string {
    return join(this.opts.root, 'snapshots');
  }

  /** The directory of a bound claim's volume. */
  volumePath(namespace: string, claim: string): string {
    const pvc = this.opts.store.get(PVC, namespace, claim) as Obj;
    const pv = this.opts.store.get(PV, undefined, String(pvc.spec['volumeName'])) as Obj;
    return join(this.volumesDir, String(pv.spec['csi'].volumeHandle));
  }

  /** Storage snapshots that exist, whatever objects point at them. */
  storageSnapshots(): string[] {
    return readdirSync(this.snapshotsDir).sort();
  }

  /** The log of a pod that has run (the `pods/log` subresource), undefined before. */
  podLog(namespace: string, name: string): string | undefined {
    return this.logs.get(`${namespace}/${name}`);
  }

  stop(): void {
    clearInterval(this.tick);
    this.tick = undefined;
    this.opts.store.off('change', this.onChange);
  }

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    setImmediate(() => {
      this.pending = false;
      this.reconcile();
    });
  }

  private list(type: typeof PVC, namespace?: string): Obj[] {
    return this.opts.store.list(type, namespace).map(norm);
  }

  private find(type: typeof PVC, namespace: string | undefined, name: string): Obj | undefined {
    const found = this.opts.store.find(type, namespace, name);
    return found && norm(found);
  }

  private reconcile(): void {
    for (const ns of this.list(NS)) this.namespace(ns);
    for (const pvc of this.list(PVC)) if (!pvc.spec['volumeName']) this.provision(pvc);
    for (const vs of this.list(VS)) this.snapshot(vs);
    for (const content of this.list(VSC)) this.content(content);
    for (const pod of this.list(POD)) if (!pod.status['phase'] || pod.status['phase'] === 'Pending') this.runPod(pod);
  }

  /**
   * A container's environment: `value`s, and `valueFrom.secretKeyRef`s read from the Secret's
   * `data` (base64) or `stringData`; undefined while a Secret or key it names is missing (a real
   * kubelet holds the pod in CreateContainerConfigError, Pending).
   */
  private containerEnv(namespace: string, container: Record<string, any>): Record<string, string> | undefined {
    const env: Record<string, string> = {};
    for (const e of (container['env'] ?? []) as {
      name: string;
      value?: string;
      valueFrom?: { secretKeyRef?: { name: string; key: string } };
    }[]) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) {
        env[e.name] = e.value ?? '';
        continue;
      }
      const secret = this.opts.store.find(SECRET, namespace, ref.name) as
        (KubeObject & { data?: Record<string, string>; stringData?: Record<string, string> }) | undefined;
      const data = secret?.data?.[ref.key];
      const text = data !== undefined ? Buffer.from(data, 'base64').toString('utf8') : secret?.stringData?.[ref.key];
      if (text === undefined) return undefined;
      env[e.name] = text;
    }
    return env;
  }

  private faulty(set: Set<string>, namespace: string, claim: string): boolean {
    return set.has(`${namespace}/${claim}`) || set.has(`${namespace}/*`);
  }

  /**
   * Runs a pod once every claim it mounts is bound: its one container's command, against those
   * claims' directories; Pending until then. Ends Succeeded or Failed with the exit code.
   */
  private runPod(pod: Obj): void {
    const { store } = this.opts;
    const ns = pod.metadata.namespace!;
    const container = (pod.spec['containers'] as Obj['spec'][] | undefined)?.[0];
    const volumes = (pod.spec['volumes'] ?? []) as { name: string; persistentVolumeClaim?: { claimName: string } }[];
    const claims = volumes.flatMap((v) => (v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : []));
    const bound = claims.every((c) => this.find(PVC, ns, c)?.spec['volumeName']);
    if (!bound || !container) {
      if (pod.status['phase'] !== 'Pending') store.update(POD, ns, { ...pod, status: { phase: 'Pending' } }, 'status');
      return;
    }
    const mounts = ((container['volumeMounts'] ?? []) as { name: string; mountPath: string }[]).flatMap((m) => {
      const claim = volumes.find((v) => v.name === m.name)?.persistentVolumeClaim?.claimName;
      return claim ? [{ mountPath: m.mountPath, dir: this.volumePath(ns, claim) }] : [];
    });
    const env = this.containerEnv(ns, container);
    if (!env) {
      if (pod.status['phase'] !== 'Pending') store.update(POD, ns, { ...pod, status: { phase: 'Pending' } }, 'status');
      return;
    }
    const resolve = mountResolver(mounts);
    const workingDir = typeof container['workingDir'] === 'string' ? resolve(container['workingDir']) : undefined;
    const run = claims.some((c) => this.faulty(this.faults.podFailure, ns, c))
      ? { exitCode: 1, log: 'fake kubelet: injected pod failure\n' }
      : runContainer((container['command'] ?? []) as string[], env, resolve, {
          ...(workingDir ? { workingDir } : {}),
          cacheDir: join(this.opts.root, 'cache'),
        });
    this.logs.set(`${ns}/${pod.metadata.name}`, run.log);
    const terminated = {
      exitCode: run.exitCode,
      reason: run.exitCode === 0 ? 'Completed' : 'Error',
      startedAt: stamp(this.opts.now()),
      finishedAt: stamp(this.opts.now()),
    };
    store.update(
      POD,
      ns,
      {
        ...pod,
        status: {
          phase: run.exitCode === 0 ? 'Succeeded' : 'Failed',
          containerStatuses: [
            {
              name: container['name'],
              image: container['image'],
              imageID: '',
              ready: false,
              restartCount: 0,
              state: { terminated },
            },
          ],
        },
      },
      'status',
    );
  }

  private namespace(ns: Obj): void {
    const { store, now } = this.opts;
    const finalizers = ns.metadata.finalizers ?? [];
    if (!ns.metadata.deletionTimestamp) {
      if (!finalizers.includes(NS_FINALIZER))
        store.update(NS, undefined, { ...ns, metadata: { ...ns.metadata, finalizers: [...finalizers, NS_FINALIZER] } });
      return;
    }
    const name = ns.metadata.name;
    const held = [PVC, VS, POD, SECRET].flatMap((t) => this.list(t, name).map((o) => [t, o] as const));
    for (const [t, o] of held) if (!o.metadata.deletionTimestamp) store.delete(t, name, o.metadata.name, now());
    if (!held.length)
      store.update(NS, undefined, {
        ...ns,
        metadata: { ...ns.metadata, finalizers: finalizers.filter((f) => f !== NS_FINALIZER) },
      });
  }

  private provision(pvc: Obj): void {
    const { store } = this.opts;
    const ns = pvc.metadata.namespace!;
    if (this.faulty(this.faults.neverBind, ns, pvc.metadata.name)) return;
    const sc = this.find(SC, undefined, String(pvc.spec['storageClassName'] ?? ''));
    const driver = sc?.['provisioner'];
    if (!sc || typeof driver !== 'string' || !this.opts.drivers.includes(driver)) return;
    let from: string | undefined;
    const source = pvc.spec['dataSource'] as { kind?: string; name?: string } | undefined;
    if (source) {
      if (source.kind !== 'VolumeSnapshot' || this.faulty(this.faults.restoreError, ns, pvc.metadata.name)) return;
      const vs = this.find(VS, ns, String(source.name));
      if (!vs?.status?.['readyToUse']) return;
      const content = this.find(VSC, undefined, String(vs.status['boundVolumeSnapshotContentName']));
      const handle = content?.status?.['snapshotHandle'];
      if (typeof handle !== 'string' || !existsSync(join(this.snapshotsDir, handle))) return;
      from = join(this.snapshotsDir, handle);
    }
    const handle = `vol-${pvc.metadata.uid!}`;
    const dir = join(this.volumesDir, handle);
    if (from) {
      cpSync(from, dir, { recursive: true, verbatimSymlinks: true });
      if (this.faulty(this.faults.corruptRestore, ns, pvc.metadata.name)) corrupt(dir);
    } else mkdirSync(dir, { recursive: true });
    const storage = (pvc.spec['resources'] as { requests?: { storage?: string } } | undefined)?.requests?.storage;
    const pvName = `pvc-${pvc.metadata.uid!}`;
    store.create(
      PV,
      undefined,
      {
        metadata: { name: pvName },
        spec: {
          capacity: { storage },
          accessModes: pvc.spec['accessModes'],
          persistentVolumeReclaimPolicy: sc['reclaimPolicy'] ?? 'Delete',
          storageClassName: sc.metadata.name,
          claimRef: {
            kind: 'PersistentVolumeClaim',
            apiVersion: 'v1',
            namespace: ns,
            name: pvc.metadata.name,
            uid: pvc.metadata.uid,
          },
          csi: { driver, volumeHandle: handle },
        },
        status: { phase: 'Bound' },
      },
      this.opts.now(),
    );
    const bound = store.update(PVC, ns, { ...pvc, spec: { ...pvc.spec, volumeName: pvName } });
    store.update(
      PVC,
      ns,
      { ...bound, status: { phase: 'Bound', accessModes: pvc.spec['accessModes'], capacity: { storage } } },
      'status',
    );
  }

  private snapshot(vs: Obj): void {
    const { store } = this.opts;
    const ns = vs.metadata.namespace!;
    const claim = vs.spec['source']?.persistentVolumeClaimName as string | undefined;
    const key = `${ns}/${claim ?? ''}`;
    const boundName = vs.status['boundVolumeSnapshotContentName'] as string | undefined;
    const content = boundName ? this.find(VSC, undefined, boundName) : undefined;
    if (vs.metadata.deletionTimestamp) {
      if (this.faults.stuckFinalizer.has(key)) return;
      if (content && content.spec['deletionPolicy'] === 'Delete' && !content.metadata.deletionTimestamp)
        store.delete(VSC, undefined, content.metadata.name, this.opts.now());
      store.update(VS, ns, { ...vs, metadata: { ...vs.metadata, finalizers: [] } });
      return;
    }
    if (!boundName) return this.bind(vs, claim);
    if (!content) return;
    const status = {
      ...vs.status,
      readyToUse: content.status['readyToUse'] === true,
      ...(content.status['restoreSize'] !== undefined ? { restoreSize: String(content.status['restoreSize']) } : {}),
      ...(content.status['creationTime'] !== undefined
        ? { creationTime: new Date(Number(content.status['creationTime']) / 1e6).toISOString().replace(/\.\d+Z$/, 'Z') }
        : {}),
      ...(content.status['error'] ? { error: content.status['error'] } : {}),
    };
    if (JSON.stringify(status) !== JSON.stringify(vs.status)) store.update(VS, ns, { ...vs, status }, 'status');
  }

  private bind(vs: Obj, claim: string | undefined): void {
    const { store, now } = this.opts;
    const ns = vs.metadata.namespace!;
    const fail = (message: string) => {
      if (vs.status['error']?.message === message) return;
      store.update(VS, ns, { ...vs, status: { readyToUse: false, error: { message, time: stamp(now()) } } }, 'status');
    };
    const ref = {
      kind: 'VolumeSnapshot',
      apiVersion: 'snapshot.storage.k8s.io/v1',
      name: vs.metadata.name,
      namespace: ns,
      uid: vs.metadata.uid,
    };
    let contentName: string;
    if (claim) {
      const pvc = this.find(PVC, ns, claim);
      if (!pvc?.spec['volumeName']) return fail(`PersistentVolumeClaim ${claim} is not bound`);
      const pv = store.get(PV, undefined, String(pvc.spec['volumeName'])) as Obj;
      const driver = pv.spec['csi'].driver as string;
      const className = vs.spec['volumeSnapshotClassName'] as string | undefined;
      const klass = className
        ? this.find(VSCLASS, undefined, className)
        : (this.list(VSCLASS).find(
            (c) =>
              c['driver'] === driver &&
              c.metadata.annotations?.['snapshot.storage.kubernetes.io/is-default-class'] === 'true',
          ) as Obj | undefined);
      if (!klass)
        return fail(
          `failed to get input parameters to create snapshot: VolumeSnapshotClass ${className ?? '(default)'} not found`,
        );
      if (klass['driver'] !== driver)
        return fail(
          `VolumeSnapshotClass ${klass.metadata.name} is for driver ${String(klass['driver'])}, not ${driver}`,
        );
      contentName = `snapcontent-${vs.metadata.uid!}`;
      store.create(
        VSC,
        undefined,
        {
          metadata: { name: contentName },
          spec: {
            deletionPolicy: klass['deletionPolicy'],
            driver,
            source: { volumeHandle: pv.spec['csi'].volumeHandle },
            volumeSnapshotClassName: klass.metadata.name,
            volumeSnapshotRef: ref,
          },
        },
        now(),
      );
    } else {
      contentName = String(vs.spec['source']?.volumeSnapshotContentName);
      const content = this.find(VSC, undefined, contentName);
      if (!content) return fail(`VolumeSnapshotContent ${contentName} not found`);
      const want = content.spec['volumeSnapshotRef'] as { name?: string; namespace?: string };
      if (want.name !== vs.metadata.name || want.namespace !== ns)
        return fail(`VolumeSnapshotContent ${contentName} is bound to ${want.namespace}/${want.name}`);
      store.update(VSC, undefined, { ...content, spec: { ...content.spec, volumeSnapshotRef: ref } });
    }
    const withFinalizer = store.update(VS, ns, { ...vs, metadata: { ...vs.metadata, finalizers: [BOUND] } });
    store.update(
      VS,
      ns,
      { ...withFinalizer, status: { boundVolumeSnapshotContentName: contentName, readyToUse: false } },
      'status',
    );
  }

  private content(content: Obj): void {
    const { store, now } = this.opts;
    const ref = content.spec['volumeSnapshotRef'] as { name: string; namespace: string; uid?: string };
    const vs = store.find(VS, ref.namespace, ref.name);
    if (ref.uid && (!vs || vs.metadata.uid !== ref.uid)) {
      // Its VolumeSnapshot is gone: Delete takes the content (and the storage snapshot) with it.
      if (content.spec['deletionPolicy'] === 'Delete') store.delete(VSC, undefined, content.metadata.name, now());
      return;
    }
    if (content.status['readyToUse'] === true || content.status['error']) return;
    const source = content.spec['source'] as { volumeHandle?: string; snapshotHandle?: string };
    const setStatus = (status: Record<string, unknown>) =>
      store.update(VSC, undefined, { ...content, status }, 'status');
    if (source.snapshotHandle) {
      const dir = join(this.snapshotsDir, source.snapshotHandle);
      if (!existsSync(dir))
        return void setStatus({
          readyToUse: false,
          error: { message: `snapshot ${source.snapshotHandle} not found`, time: stamp(now()) },
        });
      return void setStatus({
        snapshotHandle: source.snapshotHandle,
        readyToUse: true,
        restoreSize: sizeOf(dir),
        creationTime: statSync(dir).mtimeMs * 1e6,
      });
    }
    const claim =
      vs?.spec?.['source'] && (vs.spec['source'] as { persistentVolumeClaimName?: string }).persistentVolumeClaimName;
    const key = `${ref.namespace}/${claim ?? ''}`;
    if (this.faults.neverReady.has(key)) {
      if (content.status['readyToUse'] !== false) setStatus({ readyToUse: false });
      return;
    }
    if (this.faults.snapshotError.has(key))
      return void setStatus({
        readyToUse: false,
        error: { message: 'fake CSI driver: injected snapshot failure', time: stamp(now()) },
      });
    // creationTimestamp has whole seconds: the delay counts from when the driver first saw the content.
    const uid = content.metadata.uid!;
    const seen = this.firstSeen.get(uid) ?? now().getTime();
    this.firstSeen.set(uid, seen);
    if (now().getTime() - seen < this.opts.snapshotDelayMs) return;
    this.firstSeen.delete(uid);
    const handle = `snap-${content.metadata.uid!}`;
    const dir = join(this.snapshotsDir, handle);
    cpSync(join(this.volumesDir, source.volumeHandle!), dir, { recursive: true, verbatimSymlinks: true });
    setStatus({
      snapshotHandle: handle,
      readyToUse: true,
      restoreSize: sizeOf(dir),
      creationTime: now().getTime() * 1e6,
    });
  }

  /** What the storage does when an object goes: a Delete content takes its snapshot, a PV its volume. */
  private deleted(obj: Obj): void {
    const { store } = this.opts;
    if (obj.kind === 'Pod') this.logs.delete(`${obj.metadata.namespace!}/${obj.metadata.name}`);
    if (obj.kind === 'VolumeSnapshotContent' && obj.spec?.['deletionPolicy'] === 'Delete') {
      const handle = obj.status?.['snapshotHandle'] ?? obj.spec['source']?.snapshotHandle;
      if (typeof handle === 'string') rmSync(join(this.snapshotsDir, handle), { recursive: true, force: true });
    }
    if (obj.kind === 'PersistentVolumeClaim' && obj.spec?.['volumeName']) {
      const pv = this.find(PV, undefined, String(obj.spec['volumeName']));
      if (!pv) return;
      if (pv.spec['persistentVolumeReclaimPolicy'] === 'Delete') {
        store.delete(PV, undefined, pv.metadata.name, this.opts.now());
        rmSync(join(this.volumesDir, String(pv.spec['csi'].volumeHandle)), { recursive: true, force: true });
      } else store.update(PV, undefined, { ...pv, status: { phase: 'Released' } }, 'status');
    }
  }
}

function norm(o: KubeObject): Obj {
  return { ...o, spec: o.spec ?? {}, status: o.status ?? {} };
}

/** Changes the first byte of every file under `dir`: what a storage that loses data would restore. */
function corrupt(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const bytes = readFileSync(path);
    if (bytes.length) bytes[0] = bytes[0]! ^ 0xff;
    writeFileSync(path, bytes.length ? bytes : Buffer.from([0]));
  }
}

function stamp(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** Bytes of the files under `dir` (at least 1, as a real restoreSize is never 0). */
function sizeOf(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  return Math.max(total, 1);
}
