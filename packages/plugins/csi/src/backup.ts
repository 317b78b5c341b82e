/**
 * A backup: a VolumeSnapshot of every claim the locator selects, through the Retain clone of the
 * snapshot class the class rule chooses for its driver; then the record written on each content.
 * Whatever goes wrong (an error, a cancel, a timeout), what this attempt made is removed.
 */
import { PluginError, type BackupRequest, type BackupResult, type TaskContext } from '@cairn/plugin-sdk';
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { chooseSnapshotClass, type SnapshotClassFact } from './classes.js';
import { SNAPSHOT_GROUP, type Kube, type SnapshotObject } from './client.js';
import { exportFor, readLocator, type CsiSettings } from './config.js';
import {
  backupIdFor,
  bytesOf,
  cloneClassName,
  externalIdOf,
  groupBackups,
  LABEL_BACKUP,
  LABEL_CLONE_OF,
  recordMetadata,
  snapshotName,
  type VolumeRecord,
} from './record.js';
import { ANNOTATION_EXPORT_ID, exportVolumes, LABEL_EXPORT, removeExportTemporaries } from './export.js';
import { LABEL_PRIMER } from './primer.js';
import { destroyContent, destroySnapshot, waitFor } from './snapshots.js';

const TEMPORARY_LABELS = [LABEL_EXPORT, LABEL_PRIMER];

interface Planned {
  claim: string;
  snapshot: string;
  snapshotClass: string;
  cloneClass: string;
  record: VolumeRecord;
}

export interface OperationEnv {
  kube: Kube;
  settings: CsiSettings;
  now: () => number;
}

export async function backup(env: OperationEnv, req: BackupRequest, ctx: TaskContext): Promise<BackupResult> {
  const { kube } = env;
  const locator = readLocator(req.locator);
  const exporting = exportFor(env.settings, req.offeringExternalId);
  const plan = await planBackup(env, req, ctx, locator.namespace, locator.selector);
  const made = plan.map((p) => p.snapshot);
  await sweepUnfinished(kube, locator.namespace, req.instanceId, plan[0]!.record.backupId, ctx);
  try {
    for (const cloneOf of new Set(plan.map((p) => p.snapshotClass))) await ensureRetainClone(kube, cloneOf);
    for (const p of plan) await createOrAdopt(kube, locator.namespace, p, ctx);
    const ready = await waitUntilReady(env, locator.namespace, plan, ctx);
    const exported = exporting
      ? await exportVolumes(
          env,
          exporting,
          plan.map((p) => ({ ...p, restoreSize: bytesOf(ready.get(p.snapshot)!.status?.restoreSize) })),
          ctx,
        )
      : undefined;
    const volumes = [];
    for (const p of plan) {
      const vs = ready.get(p.snapshot)!;
      const exportId = exported?.get(p.claim);
      const content = await recordOnContent(kube, vs, exportId ? { [ANNOTATION_EXPORT_ID]: exportId } : {});
      volumes.push({
        claim: p.claim,
        snapshot: p.snapshot,
        content: content.metadata.name,
        snapshotHandle: content.status?.snapshotHandle ?? '',
        snapshotClass: p.snapshotClass,
        cloneClass: p.cloneClass,
        restoreSize: bytesOf(vs.status?.restoreSize),
        ...(exportId ? { exportId } : {}),
      });
    }
    ctx.signal.throwIfAborted();
    ctx.progress({ percent: 100, message: `${plan.length} volume snapshot(s) ready` });
    return {
      externalId: externalIdOf(locator.namespace, plan[0]!.record.backupId),
      sizeBytes: volumes.reduce((sum, v) => sum + v.restoreSize, 0),
      mode: 'FULL',
      extra: { volumes },
    };
  } catch (err) {
    await removeAll(kube, locator.namespace, made, plan[0]!.record.backupId, ctx);
    throw err;
  }
}

/** Reads the claims and classes and decides everything before the first object is made. */
async function planBackup(
  env: OperationEnv,
  req: BackupRequest,
  ctx: TaskContext,
  namespace: string,
  selector: string | undefined,
): Promise<Planned[]> {
  const { kube } = env;
  if (!(await kube.namespace(namespace)))
    throw new PluginError(
      'NAMESPACE_NOT_FOUND',
      `namespace ${namespace} (locator.namespace) does not exist on the cluster`,
    );
  // The plugin's own temporaries (an export's claims, the primer's) are never backed up: an
  // export another instance runs in the namespace, or one a killed agent left, is not data.
  const claims = (await kube.claims(namespace, selector)).filter(
    (c) => !c.metadata?.deletionTimestamp && !TEMPORARY_LABELS.some((l) => c.metadata?.labels?.[l] !== undefined),
  );
  if (!claims.length)
    throw new PluginError(
      'NO_CLAIMS',
      `namespace ${namespace} has no PersistentVolumeClaim${selector ? ` matching ${selector} (locator.selector)` : ''} to back up`,
    );
  const unbound = claims.filter((c) => c.status?.phase !== 'Bound' || !c.spec?.volumeName);
  if (unbound.length)
    throw new PluginError(
      'CLAIM_NOT_BOUND',
      `PersistentVolumeClaims not bound to a volume: ${unbound.map(name).join(', ')}`,
    );
  const storageClasses = await kube.storageClasses();
  const snapshotClasses: SnapshotClassFact[] = (await kube.list('volumesnapshotclasses'))
    .filter((c) => c.metadata.labels?.[LABEL_CLONE_OF] === undefined)
    .map((c) => ({ name: c.metadata.name, driver: c.driver ?? '', annotations: c.metadata.annotations ?? {} }));
  const backupId = backupIdFor(ctx.taskId);
  const createdAt = new Date(env.now()).toISOString();
  const problems = new Set<string>();
  const plan: Planned[] = [];
  for (const claim of claims.sort((a, b) => name(a).localeCompare(name(b)))) {
    const pv = await kube.volume(claim.spec!.volumeName!);
    const driver = pv?.spec?.csi?.driver;
    if (!driver) {
      problems.add(`claim ${name(claim)}: its volume ${claim.spec!.volumeName!} is not a CSI volume`);
      continue;
    }
    const sc = storageClasses.find((s) => s.metadata?.name === claim.spec?.storageClassName);
    const choice = chooseSnapshotClass({
      driver,
      storageClass: sc && {
        name: sc.metadata!.name!,
        provisioner: sc.provisioner,
        annotations: sc.metadata?.annotations ?? {},
      },
      snapshotClasses,
    });
    if (!choice.ok) {
      problems.add(choice.message);
      continue;
    }
    plan.push({
      claim: name(claim),
      snapshot: snapshotName(backupId, name(claim)),
      snapshotClass: choice.className,
      cloneClass: cloneClassName(choice.className),
      record: {
        backupId,
        instanceId: req.instanceId,
        namespace,
        claim: name(claim),
        storageClass: claim.spec?.storageClassName ?? '',
        snapshotClass: choice.className,
        capacity: claim.status?.capacity?.['storage'] ?? claim.spec?.resources?.requests?.['storage'] ?? '1Gi',
        accessModes: claim.spec?.accessModes ?? ['ReadWriteOnce'],
        volumeMode: claim.spec?.volumeMode ?? 'Filesystem',
        volumes: claims.length,
        claims: claims.map(name),
        createdAt,
      },
    });
  }
  if (problems.size) throw new PluginError('SNAPSHOT_CLASS', [...problems].join('; '));
  ctx.event({
    type: 'provider.message',
    message: `backing up ${plan.length} claim(s) of ${namespace}: ${plan.map((p) => `${p.claim} via ${p.snapshotClass}`).join(', ')}`,
  });
  return plan;
}

/** The Retain clone of `className`, made once and shared by every backup through that class. */
export async function ensureRetainClone(kube: Kube, className: string): Promise<string> {
  const cloneName = cloneClassName(className);
  const existing = await kube.get('volumesnapshotclasses', cloneName);
  const original = await kube.get('volumesnapshotclasses', className);
  if (!original)
    throw new PluginError('SNAPSHOT_CLASS_MISSING', `VolumeSnapshotClass ${className} does not exist on the cluster`);
  const check = (clone: SnapshotObject) => {
    if (clone.driver !== original.driver || clone.deletionPolicy !== 'Retain')
      throw new PluginError(
        'SNAPSHOT_CLASS_CLONE',
        `VolumeSnapshotClass ${cloneName} exists but is not the Retain clone of ${className} (driver ${clone.driver ?? '?'}, deletionPolicy ${clone.deletionPolicy ?? '?'})`,
      );
    return cloneName;
  };
  if (existing) return check(existing);
  const made = await kube.create('volumesnapshotclasses', {
    apiVersion: `${SNAPSHOT_GROUP}/v1`,
    kind: 'VolumeSnapshotClass',
    metadata: { name: cloneName, labels: { [LABEL_CLONE_OF]: className } },
    driver: original.driver!,
    deletionPolicy: 'Retain',
    ...(original.parameters ? { parameters: original.parameters } : {}),
  });
  return check(made ?? (await kube.get('volumesnapshotclasses', cloneName))!);
}

async function createOrAdopt(kube: Kube, namespace: string, p: Planned, ctx: TaskContext): Promise<void> {
  const made = await kube.create(
    'volumesnapshots',
    {
      apiVersion: `${SNAPSHOT_GROUP}/v1`,
      kind: 'VolumeSnapshot',
      metadata: { name: p.snapshot, namespace, ...recordMetadata(p.record) },
      spec: { source: { persistentVolumeClaimName: p.claim }, volumeSnapshotClassName: p.cloneClass },
    },
    namespace,
  );
  if (made) return;
  const found = await kube.get('volumesnapshots', p.snapshot, namespace);
  const source = found?.spec?.['source'] as { persistentVolumeClaimName?: string } | undefined;
  if (found?.metadata.labels?.[LABEL_BACKUP] !== p.record.backupId || source?.persistentVolumeClaimName !== p.claim)
    throw new PluginError(
      'SNAPSHOT_NAME_TAKEN',
      `VolumeSnapshot ${namespace}/${p.snapshot} exists and is not this backup's snapshot of ${p.claim}`,
    );
  ctx.event({
    type: 'provider.message',
    message: `adopted VolumeSnapshot ${p.snapshot} of ${p.claim}, made by an earlier attempt`,
  });
}

async function waitUntilReady(
  env: OperationEnv,
  namespace: string,
  plan: Planned[],
  ctx: TaskContext,
): Promise<Map<string, SnapshotObject>> {
  const backupId = plan[0]!.record.backupId;
  const byName = new Map<string, SnapshotObject>();
  let reported = -1;
  await waitFor(
    async () => {
      const found = await env.kube.list('volumesnapshots', { namespace, labelSelector: `${LABEL_BACKUP}=${backupId}` });
      byName.clear();
      for (const vs of found) byName.set(vs.metadata.name, vs);
      let ready = 0;
      for (const p of plan) {
        const vs = byName.get(p.snapshot);
        if (!vs || vs.metadata.deletionTimestamp)
          throw new PluginError(
            'SNAPSHOT_VANISHED',
            `VolumeSnapshot ${namespace}/${p.snapshot} of ${p.claim} was deleted during the backup`,
          );
        if (vs.status?.error?.message)
          throw new PluginError('SNAPSHOT_FAILED', `snapshot of ${p.claim} failed: ${vs.status.error.message}`, {
            retryable: true,
          });
        if (vs.status?.readyToUse === true) ready++;
      }
      if (ready !== reported) {
        reported = ready;
        const waiting = plan.filter((p) => byName.get(p.snapshot)?.status?.readyToUse !== true).map((p) => p.claim);
        ctx.progress({
          percent: Math.floor((ready / plan.length) * 95),
          message: `${ready} of ${plan.length} volume snapshot(s) ready${waiting.length ? `; waiting for ${waiting.join(', ')}` : ''}`,
        });
      }
      return ready === plan.length;
    },
    {
      intervalMs: env.settings.pollIntervalMs,
      timeoutMs: env.settings.readyTimeoutMs,
      signal: ctx.signal,
      now: env.now,
      timeoutMessage: () =>
        `volume snapshots not ready after ${env.settings.readyTimeoutMs / 1000} s (config.readyTimeoutS): ${plan
          .filter((p) => byName.get(p.snapshot)?.status?.readyToUse !== true)
          .map((p) => p.claim)
          .join(', ')}`,
    },
  );
  return byName;
}

/** Writes the snapshot's record on its content, which outlives the namespace. */
async function recordOnContent(kube: Kube, vs: SnapshotObject, extra: Record<string, string>): Promise<SnapshotObject> {
  const contentName = vs.status?.boundVolumeSnapshotContentName;
  for (let attempt = 0; ; attempt++) {
    const content = contentName ? await kube.get('volumesnapshotcontents', contentName) : undefined;
    if (!content) throw new PluginError('SNAPSHOT_VANISHED', `VolumeSnapshot ${vs.metadata.name} has no content`);
    try {
      return await kube.replace('volumesnapshotcontents', {
        ...content,
        metadata: {
          ...content.metadata,
          labels: { ...content.metadata.labels, ...vs.metadata.labels },
          annotations: { ...content.metadata.annotations, ...vs.metadata.annotations, ...extra },
        },
      });
    } catch (err) {
      if ((err as { status?: number }).status !== 409 || attempt >= 5) throw err;
    }
  }
}

/**
 * Removes what an earlier backup task of this instance left unfinished (its agent killed midway:
 * the control plane does not run that task again, so no retry adopts it). Unfinished: some of its
 * contents do not carry the record, or are not ready. A finished one stays, for sync to adopt.
 * The instance's backups never overlap (the control plane locks it), so none is under way.
 */
async function sweepUnfinished(
  kube: Kube,
  namespace: string,
  instanceId: string,
  backupId: string,
  ctx: TaskContext,
): Promise<void> {
  const ours = (await kube.list('volumesnapshots', { namespace, labelSelector: LABEL_BACKUP })).filter(
    (vs) => vs.metadata.annotations?.['cairn.dev/instance-id'] === instanceId,
  );
  const earlier = new Set(ours.map((vs) => vs.metadata.labels![LABEL_BACKUP]!).filter((id) => id !== backupId));
  for (const id of earlier) {
    const temporaries = await removeExportTemporaries(kube, namespace, id);
    if (temporaries)
      ctx.event({
        type: 'provider.message',
        message: `removed ${temporaries} export pod(s), claim(s) and Secret(s) of ${id}, left by an earlier task of this instance`,
      });
    const contents = await kube.list('volumesnapshotcontents', { labelSelector: `${LABEL_BACKUP}=${id}` });
    if (groupBackups(contents)[0]?.complete) continue;
    const names = ours.filter((vs) => vs.metadata.labels![LABEL_BACKUP] === id).map((vs) => vs.metadata.name);
    await removeAll(kube, namespace, names, id, ctx);
    for (const content of contents) await destroyContent(kube, content);
    ctx.event({
      type: 'provider.message',
      message: `removed ${names.length} VolumeSnapshot(s) of ${id}, a backup of this instance an earlier task left unfinished`,
    });
  }
}

/** Removes this backup's snapshots; a snapshot of that name that is not this backup's stays. */
async function removeAll(
  kube: Kube,
  namespace: string,
  snapshots: string[],
  backupId: string,
  ctx: TaskContext,
): Promise<void> {
  for (const snapshot of snapshots) {
    try {
      const found = await kube.get('volumesnapshots', snapshot, namespace);
      if (found && found.metadata.labels?.[LABEL_BACKUP] !== backupId) continue;
      await destroySnapshot(kube, namespace, snapshot);
    } catch (err) {
      ctx.event({
        type: 'warning',
        message: `could not remove VolumeSnapshot ${namespace}/${snapshot} after the failed backup: ${(err as Error).message}`,
      });
    }
  }
}

function name(claim: V1PersistentVolumeClaim): string {
  return claim.metadata?.name ?? '';
}
