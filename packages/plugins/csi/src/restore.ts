/**
 * A restore: new claims, of the original names, in the original namespace or `target.namespace`,
 * provisioned from the backup's snapshots. The backup's contents are never bound to a snapshot in
 * the target: each gets a stand-in (a pre-provisioned `Retain` content of the same storage snapshot
 * and a VolumeSnapshot of it in the target namespace), removed once the claims are bound.
 *
 * A volume whose content is gone (deleted with its storage snapshot, or never ready) is restored
 * from the backup's export, when the connection has `exportTo`: the export's restic snapshots
 * are listed by a data mover pod (their tags carry each volume's record), the claim is made empty
 * with the recorded class and capacity, and a data mover pod runs `restic restore` into it. Its
 * pods, each with a Secret of its own, labelled `cairn.dev/export`, `cairn.dev/restore` and
 * `cairn.dev/mover`, are removed whatever happens; a retry of the task removes what a killed
 * attempt left, and any later restore, sync or delete removes those of a task never retried.
 */
import { PluginError, type RestoreRequest, type RestoreResult, type TaskContext } from '@cairn/plugin-sdk';
import { ensureRetainClone, type OperationEnv } from './backup.js';
import { SNAPSHOT_GROUP, type Kube, type SnapshotObject } from './client.js';
import { readLocator, readTargetNamespace, type ExportSettings } from './config.js';
import {
  bytesOf,
  groupBackups,
  hash,
  LABEL_BACKUP,
  LABEL_RESTORE,
  LABEL_RESTORED_FROM,
  parseExternalId,
  type VolumeRecord,
} from './record.js';
import { LABEL_EXPORT, listExported } from './export.js';
import { runMover, sweepMovers } from './pods.js';
import { dropReplica, waitFor } from './snapshots.js';

/** Where one volume is restored from: its snapshot's content, or its export. */
type Source =
  | { record: VolumeRecord; content: SnapshotObject; exportId?: undefined }
  | { record: VolumeRecord; exportId: string; restoreSize: number; content?: undefined };

interface Stand {
  claim: string;
  snapshot: string;
  content: string;
}

export async function restore(env: OperationEnv, req: RestoreRequest, ctx: TaskContext): Promise<RestoreResult> {
  const { kube } = env;
  const locator = readLocator(req.locator);
  const namespace = readTargetNamespace(req.target, locator);
  const backupId = parseExternalId(req.backupExternalId);
  if (!backupId)
    throw new PluginError(
      'BACKUP_NOT_FOUND',
      `${JSON.stringify(req.backupExternalId)} is not a CSI backup id (<namespace>/cairn-<12 hex>)`,
    );
  if (!(await kube.namespace(namespace)))
    throw new PluginError('NAMESPACE_NOT_FOUND', `namespace ${namespace} does not exist on the cluster`);
  const tag = hash(ctx.taskId, 10);
  const temporaries = { [LABEL_EXPORT]: backupId, [LABEL_RESTORE]: tag };
  // Without an export nothing is made but claims and stand-ins: no pods or Secrets to look for.
  const exporting = env.settings.export !== undefined;
  if (exporting) await clearLeftovers(env, namespace, tag, ctx);
  const created: string[] = [];
  const stands: Stand[] = [];
  let ok = false;
  try {
    const sources = await planRestore(env, req, backupId, namespace, temporaries, ctx);
    await checkTarget(kube, sources, namespace, tag);
    for (const source of sources) {
      const { record } = source;
      let dataSource: { apiGroup: string; kind: string; name: string } | undefined;
      if (source.content) {
        const stand = {
          claim: record.claim,
          snapshot: `${record.backupId}-r${tag}-${hash(record.claim, 8)}`,
          content: `${record.backupId}-r${tag}-${hash(record.claim, 8)}`,
        };
        stands.push(stand);
        await standIn(kube, namespace, source.content, record, stand, tag);
        dataSource = { apiGroup: SNAPSHOT_GROUP, kind: 'VolumeSnapshot', name: stand.snapshot };
      }
      if (!(await kube.claim(namespace, record.claim))) {
        await kube.createClaim(namespace, {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: {
            name: record.claim,
            namespace,
            labels: { [LABEL_RESTORED_FROM]: record.backupId, [LABEL_RESTORE]: tag },
          },
          spec: {
            storageClassName: record.storageClass,
            accessModes: record.accessModes,
            volumeMode: record.volumeMode,
            resources: { requests: { storage: record.capacity } },
            ...(dataSource ? { dataSource } : {}),
          },
        });
        created.push(record.claim);
      }
    }
    await waitForClaims(env, namespace, sources, ctx);
    const fromExport = sources.filter((s) => s.exportId !== undefined);
    for (const [i, source] of fromExport.entries()) {
      await fillFromExport(env, env.settings.export!, namespace, source, { labels: temporaries, tag }, ctx);
      ctx.progress({
        percent: 100,
        message: `${i + 1} of ${fromExport.length} claim(s) filled from the export in ${namespace}`,
      });
    }
    ok = true;
    return {
      bytesRestored: sources.reduce(
        (sum, s) => sum + (s.content ? bytesOf(s.content.status?.restoreSize) : s.restoreSize),
        0,
      ),
      extra: {
        namespace,
        claims: sources.map((s) => s.record.claim),
        ...(fromExport.length ? { fromExport: fromExport.map((s) => s.record.claim) } : {}),
      },
    };
  } finally {
    for (const stand of stands)
      await dropReplica(kube, namespace, stand.snapshot, stand.content).catch(() => undefined);
    if (exporting)
      await removeRestoreTemporaries(kube, namespace, tag).catch((err: Error) =>
        ctx.event({
          type: 'warning',
          message: `could not remove the restore's data mover pods or Secret in ${namespace}: ${err.message}`,
        }),
      );
    if (!ok) for (const claim of created) await kube.deleteClaim(namespace, claim).catch(() => undefined);
  }
}

/** The stand-in of a backup's content in the target namespace: a Retain content and its snapshot. */
async function standIn(
  kube: Kube,
  namespace: string,
  content: SnapshotObject,
  record: VolumeRecord,
  stand: Stand,
  tag: string,
): Promise<void> {
  const cloneClass = await ensureRetainClone(kube, record.snapshotClass);
  await kube.create('volumesnapshotcontents', {
    apiVersion: `${SNAPSHOT_GROUP}/v1`,
    kind: 'VolumeSnapshotContent',
    metadata: { name: stand.content, labels: { [LABEL_RESTORE]: tag } },
    spec: {
      deletionPolicy: 'Retain',
      driver: content.spec?.['driver'],
      source: { snapshotHandle: content.status?.snapshotHandle },
      volumeSnapshotClassName: cloneClass,
      volumeSnapshotRef: { name: stand.snapshot, namespace },
    },
  });
  await kube.create(
    'volumesnapshots',
    {
      apiVersion: `${SNAPSHOT_GROUP}/v1`,
      kind: 'VolumeSnapshot',
      metadata: { name: stand.snapshot, namespace, labels: { [LABEL_RESTORE]: tag } },
      spec: { source: { volumeSnapshotContentName: stand.content }, volumeSnapshotClassName: cloneClass },
    },
    namespace,
  );
}

/**
 * Each volume's source: its content when that is there and ready; otherwise its export, listed
 * from the repository of the connection's `exportTo` through a data mover pod. A volume with neither fails
 * the restore before anything is made, naming it.
 */
async function planRestore(
  env: OperationEnv,
  req: RestoreRequest,
  backupId: string,
  namespace: string,
  labels: Record<string, string>,
  ctx: TaskContext,
): Promise<Source[]> {
  const { kube } = env;
  const settings = env.settings.export;
  const contents = await kube.list('volumesnapshotcontents', { labelSelector: `${LABEL_BACKUP}=${backupId}` });
  const held = groupBackups(contents)[0];
  const notFound = () =>
    new PluginError(
      'BACKUP_NOT_FOUND',
      `backup ${req.backupExternalId} is not on the cluster${settings ? ` nor in the export repository ${settings.repository}` : ''}`,
    );
  // Another instance's backup is answered exactly as one that does not exist.
  const foreign = (r: VolumeRecord) => r.instanceId !== req.instanceId;
  if (held?.volumes.some((v) => foreign(v.record))) throw notFound();
  if (held?.complete) return held.volumes;
  const exported = settings ? await listExports(env, settings, namespace, backupId, labels, ctx) : new Map();
  if ([...exported.values()].some((e) => foreign(e.record))) throw notFound();
  const records = [...(held?.volumes ?? []), ...exported.values()].map((v) => v.record);
  if (!records.length) throw notFound();
  const usable = new Map(
    (held?.volumes ?? [])
      .filter((v) => v.content.status?.readyToUse === true && !v.content.metadata.deletionTimestamp)
      .map((v) => [v.record.claim, v]),
  );
  const claims = [...new Set(records.flatMap((r) => [r.claim, ...r.claims]))].sort();
  const sources: Source[] = [];
  const missing: string[] = [];
  for (const claim of claims) {
    const source = usable.get(claim) ?? exported.get(claim);
    if (source) sources.push(source);
    else missing.push(claim);
  }
  const want = records[0]!.volumes;
  if (missing.length || sources.length < want)
    throw new PluginError(
      'BACKUP_INCOMPLETE',
      `backup ${req.backupExternalId} cannot be restored: ${[
        ...missing.map((c) => `volume ${c} has neither a ready snapshot nor an export`),
        ...(sources.length + missing.length < want
          ? [`${want - sources.length - missing.length} more of its ${want} volume(s) left no record`]
          : []),
      ].join('; ')}${settings ? '' : ' (the connection has no exportTo to restore from)'}`,
    );
  const fromExport = sources.filter((s) => s.exportId !== undefined).map((s) => s.record.claim);
  if (fromExport.length)
    ctx.event({
      type: 'provider.message',
      message: `restoring ${fromExport.join(', ')} from the export in ${settings!.repository}: the snapshot content is gone or not ready`,
    });
  return sources;
}

/** The backup's exports in the repository, newest per claim, read by a data mover pod. */
async function listExports(
  env: OperationEnv,
  settings: ExportSettings,
  namespace: string,
  backupId: string,
  labels: Record<string, string>,
  ctx: TaskContext,
): Promise<Map<string, Source & { exportId: string }>> {
  const name = `${backupId}-r${labels[LABEL_RESTORE]}-ls`;
  const byClaim = new Map<string, Source & { exportId: string; time: string }>();
  for (const e of await listExported(env, settings, { name, namespace, labels }, backupId, ctx)) {
    const earlier = byClaim.get(e.record.claim);
    if (!earlier || earlier.time < e.time)
      byClaim.set(e.record.claim, { record: e.record, restoreSize: e.restoreSize, exportId: e.id, time: e.time });
  }
  return byClaim;
}

/** Runs `restic restore` of the volume's export into its (new, empty, bound) claim. */
async function fillFromExport(
  env: OperationEnv,
  settings: ExportSettings,
  namespace: string,
  source: Source,
  temporaries: { labels: Record<string, string>; tag: string },
  ctx: TaskContext,
): Promise<void> {
  const { record, exportId } = source;
  const name = `${record.backupId}-r${temporaries.tag}-${hash(record.claim, 8)}-x`;
  const { phase, log } = await runMover(
    env,
    settings,
    { name, namespace, labels: temporaries.labels },
    {
      claim: record.claim,
      command: ['restic', 'restore', exportId!, '--target', '.'],
      what: `restore of ${record.claim} from the export`,
    },
    ctx,
  );
  if (phase !== 'Succeeded')
    throw new PluginError(
      'EXPORT_RESTORE_FAILED',
      `restore of ${record.claim} from export ${exportId!} in ${settings.repository} failed (pod ${namespace}/${name} ${phase}): ${log.trim().slice(-400)}`,
      { retryable: true },
    );
}

/**
 * Before a restore that may read the export: what a killed attempt of this task left in the target
 * (its retry), and data mover pods and Secrets of any killed task of the connection (`sweepMovers`).
 */
async function clearLeftovers(env: OperationEnv, namespace: string, tag: string, ctx: TaskContext): Promise<void> {
  await removeRestoreTemporaries(env.kube, namespace, tag);
  const swept = await sweepMovers(env);
  if (swept)
    ctx.event({
      type: 'provider.message',
      message: `removed ${swept} data mover pod(s) and Secret(s) that killed tasks left`,
    });
}

/** Removes the data mover pods and Secrets of restore `tag` in `namespace` (never its claims). */
async function removeRestoreTemporaries(kube: Kube, namespace: string, tag: string): Promise<void> {
  const selector = `${LABEL_RESTORE}=${tag},${LABEL_EXPORT}`;
  for (const pod of await kube.pods(namespace, selector)) await kube.deletePod(namespace, pod.metadata!.name!);
  for (const secret of await kube.secrets(namespace, selector))
    await kube.deleteSecret(namespace, secret.metadata!.name!);
}

/** Everything the restore needs on the target, checked before it makes anything. */
async function checkTarget(kube: Kube, sources: Source[], namespace: string, tag: string): Promise<void> {
  const storageClasses = new Set((await kube.storageClasses()).map((s) => s.metadata?.name));
  const snapshotClasses = new Set((await kube.list('volumesnapshotclasses')).map((c) => c.metadata.name));
  for (const { record, content } of sources) {
    // A restore from the export makes no snapshot: the class need not exist on the target.
    if (content && !snapshotClasses.has(record.snapshotClass))
      throw new PluginError(
        'SNAPSHOT_CLASS_MISSING',
        `VolumeSnapshotClass ${record.snapshotClass}, with which ${record.claim} was snapshotted, does not exist on the target cluster: restoring needs a class of that name`,
      );
    if (!storageClasses.has(record.storageClass))
      throw new PluginError(
        'STORAGE_CLASS_MISSING',
        `StorageClass ${record.storageClass} of ${record.claim} does not exist on the target cluster`,
      );
    const existing = await kube.claim(namespace, record.claim);
    // A claim an earlier attempt of this same restore task made is adopted.
    if (existing && existing.metadata?.labels?.[LABEL_RESTORE] !== tag)
      throw new PluginError(
        'CLAIM_EXISTS',
        `PersistentVolumeClaim ${namespace}/${record.claim} already exists: restore into another namespace, or delete it first`,
      );
  }
}

async function waitForClaims(env: OperationEnv, namespace: string, sources: Source[], ctx: TaskContext): Promise<void> {
  const claims = sources.map((s) => s.record.claim);
  let pending = claims;
  let reported = -1;
  await waitFor(
    async () => {
      const bound = new Set<string>();
      for (const claim of claims)
        if ((await env.kube.claim(namespace, claim))?.status?.phase === 'Bound') bound.add(claim);
      pending = claims.filter((c) => !bound.has(c));
      if (bound.size !== reported) {
        reported = bound.size;
        ctx.progress({
          percent: Math.floor((bound.size / claims.length) * 100),
          message: `${bound.size} of ${claims.length} claim(s) restored into ${namespace}`,
        });
      }
      return pending.length === 0;
    },
    {
      intervalMs: env.settings.pollIntervalMs,
      timeoutMs: env.settings.readyTimeoutMs,
      signal: ctx.signal,
      now: env.now,
      timeoutMessage: () =>
        `claims not bound after ${env.settings.readyTimeoutMs / 1000} s (config.readyTimeoutS): ${pending.join(', ')}`,
    },
  );
}
