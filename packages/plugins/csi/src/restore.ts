/**
 * A restore: new claims, of the original names, in the original namespace or `target.namespace`,
 * provisioned from the backup's snapshots. The backup's contents are never bound to a snapshot in
 * the target: each gets a stand-in (a pre-provisioned `Retain` content of the same storage snapshot
 * and a VolumeSnapshot of it in the target namespace), removed once the claims are bound.
 */
import { PluginError, type RestoreRequest, type RestoreResult, type TaskContext } from '@cairn/plugin-sdk';
import { ensureRetainClone, type OperationEnv } from './backup.js';
import { SNAPSHOT_GROUP, type Kube } from './client.js';
import { readLocator, readTargetNamespace } from './config.js';
import { bytesOf, hash, LABEL_RESTORE, LABEL_RESTORED_FROM, type HeldBackup } from './record.js';
import { findBackup } from './catalog.js';
import { dropReplica, waitFor } from './snapshots.js';

interface Stand {
  claim: string;
  snapshot: string;
  content: string;
}

export async function restore(env: OperationEnv, req: RestoreRequest, ctx: TaskContext): Promise<RestoreResult> {
  const { kube } = env;
  const locator = readLocator(req.locator);
  const namespace = readTargetNamespace(req.target, locator);
  const held = await findBackup(kube, req.backupExternalId, req.instanceId);
  if (!held.complete)
    throw new PluginError(
      'BACKUP_INCOMPLETE',
      `backup ${req.backupExternalId} is missing volumes or has snapshots not ready`,
    );
  const tag = hash(ctx.taskId, 10);
  await checkTarget(kube, held, namespace, tag);
  const stands: Stand[] = held.volumes.map(({ record }) => ({
    claim: record.claim,
    snapshot: `${record.backupId}-r${tag}-${hash(record.claim, 8)}`,
    content: `${record.backupId}-r${tag}-${hash(record.claim, 8)}`,
  }));
  const created: string[] = [];
  let ok = false;
  try {
    for (const [i, { record, content }] of held.volumes.entries()) {
      const stand = stands[i]!;
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
            dataSource: { apiGroup: SNAPSHOT_GROUP, kind: 'VolumeSnapshot', name: stand.snapshot },
          },
        });
        created.push(record.claim);
      }
    }
    await waitForClaims(env, namespace, held, ctx);
    ok = true;
    return {
      bytesRestored: held.volumes.reduce((sum, v) => sum + bytesOf(v.content.status?.restoreSize), 0),
      extra: { namespace, claims: held.volumes.map((v) => v.record.claim) },
    };
  } finally {
    for (const stand of stands)
      await dropReplica(kube, namespace, stand.snapshot, stand.content).catch(() => undefined);
    if (!ok) for (const claim of created) await kube.deleteClaim(namespace, claim).catch(() => undefined);
  }
}

/** Everything the restore needs on the target, checked before it makes anything. */
async function checkTarget(kube: Kube, held: HeldBackup, namespace: string, tag: string): Promise<void> {
  if (!(await kube.namespace(namespace)))
    throw new PluginError('NAMESPACE_NOT_FOUND', `namespace ${namespace} does not exist on the cluster`);
  const storageClasses = new Set((await kube.storageClasses()).map((s) => s.metadata?.name));
  const snapshotClasses = new Set((await kube.list('volumesnapshotclasses')).map((c) => c.metadata.name));
  for (const { record } of held.volumes) {
    if (!snapshotClasses.has(record.snapshotClass))
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

async function waitForClaims(env: OperationEnv, namespace: string, held: HeldBackup, ctx: TaskContext): Promise<void> {
  const claims = held.volumes.map((v) => v.record.claim);
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
