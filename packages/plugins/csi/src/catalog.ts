/**
 * What the cluster holds: backups found by their contents' labels (sync, delete, restore), and the
 * preflight's look at drivers and classes.
 */
import {
  PluginError,
  type DeleteBackupRequest,
  type ListedBackup,
  type PreflightCheck,
  type PreflightRequest,
  type TaskContext,
} from '@cairn/plugin-sdk';
import type { OperationEnv } from './backup.js';
import { chooseSnapshotClass, IS_SNAPSHOT_CLASS } from './classes.js';
import type { Kube } from './client.js';
import { readLocator } from './config.js';
import {
  bytesOf,
  externalIdOf,
  groupBackups,
  LABEL_BACKUP,
  LABEL_CLONE_OF,
  parseExternalId,
  type HeldBackup,
} from './record.js';
import { runPrimer } from './primer.js';
import { destroyContent, refersTo } from './snapshots.js';

/** The backup an external id names, of `instanceId` when given; else BACKUP_NOT_FOUND. */
export async function findBackup(kube: Kube, externalId: string, instanceId?: string): Promise<HeldBackup> {
  const backupId = parseExternalId(externalId);
  if (!backupId)
    throw new PluginError(
      'BACKUP_NOT_FOUND',
      `${JSON.stringify(externalId)} is not a CSI backup id (<namespace>/cairn-<12 hex>)`,
    );
  const contents = await kube.list('volumesnapshotcontents', { labelSelector: `${LABEL_BACKUP}=${backupId}` });
  const held = groupBackups(contents)[0];
  // Another instance's backup is answered exactly as one that does not exist.
  if (!held || (instanceId !== undefined && held.volumes.some((v) => v.record.instanceId !== instanceId)))
    throw new PluginError('BACKUP_NOT_FOUND', `backup ${externalId} is not on the cluster`);
  return held;
}

export async function sync(env: OperationEnv, req: { locator?: unknown }): Promise<ListedBackup[]> {
  const namespace = req.locator === undefined || req.locator === null ? undefined : readLocator(req.locator).namespace;
  const contents = await env.kube.list('volumesnapshotcontents', { labelSelector: LABEL_BACKUP });
  return groupBackups(contents)
    .filter((b) => b.complete && (!namespace || b.volumes[0]!.record.namespace === namespace))
    .map((b) => {
      const { record } = b.volumes[0]!;
      return {
        externalId: externalIdOf(record.namespace, b.backupId),
        createdAt: record.createdAt,
        sizeBytes: b.volumes.reduce((sum, v) => sum + bytesOf(v.content.status?.restoreSize), 0),
        locator: { namespace: record.namespace, instanceId: record.instanceId },
        mode: 'FULL' as const,
      };
    });
}

/** Deletes the backup's snapshots, storage snapshots included; they may be partly gone already. */
export async function deleteBackup(env: OperationEnv, req: DeleteBackupRequest): Promise<void> {
  const { kube } = env;
  const held = await findBackup(kube, req.backupExternalId, req.instanceId);
  for (const { record, content } of held.volumes) {
    const ref = content.spec?.['volumeSnapshotRef'] as { name?: string; namespace?: string } | undefined;
    if (ref?.name && ref.namespace) {
      const vs = await kube.get('volumesnapshots', ref.name, ref.namespace);
      if (vs?.metadata.labels?.[LABEL_BACKUP] === record.backupId && refersTo(content, ref.namespace, ref.name))
        await kube.remove('volumesnapshots', ref.name, ref.namespace);
    }
    await destroyContent(kube, content);
  }
}

/**
 * One check that the cluster answers, one per StorageClass of a driver with snapshot classes
 * (the class rule), with `config.primer` the primer's checks (`primer.ts`), and with a locator one
 * that its namespace exists.
 */
export async function preflight(env: OperationEnv, req: PreflightRequest, ctx: TaskContext) {
  const { kube } = env;
  const checks: PreflightCheck[] = [];
  const locator = req.locator === undefined || req.locator === null ? undefined : readLocator(req.locator);
  let storageClasses;
  try {
    storageClasses = await kube.storageClasses();
    checks.push({
      name: 'cluster-reachable',
      ok: true,
      message: `the cluster answers; ${storageClasses.length} StorageClass(es)`,
    });
  } catch (err) {
    checks.push({
      name: 'cluster-reachable',
      ok: false,
      message: (err as Error).message,
      advice: 'check credentials.kubeconfig: the server address, and that its user may list storageclasses',
    });
    return { ok: false, checks };
  }
  ctx.signal.throwIfAborted();
  const all = await kube.list('volumesnapshotclasses');
  const snapshotClasses = all
    .filter((c) => c.metadata.labels?.[LABEL_CLONE_OF] === undefined)
    .map((c) => ({ name: c.metadata.name, driver: c.driver ?? '', annotations: c.metadata.annotations ?? {} }));
  const drivers = new Set(snapshotClasses.map((c) => c.driver));
  const choices = new Map<string, ReturnType<typeof chooseSnapshotClass>>();
  for (const sc of storageClasses) {
    if (!drivers.has(sc.provisioner)) continue;
    const name = sc.metadata!.name!;
    const choice = chooseSnapshotClass({
      driver: sc.provisioner,
      storageClass: { name, provisioner: sc.provisioner, annotations: sc.metadata?.annotations ?? {} },
      snapshotClasses,
    });
    choices.set(name, choice);
    checks.push(
      choice.ok
        ? {
            name: `snapshot-class:${name}`.slice(0, 100),
            ok: true,
            message: `claims of StorageClass ${name} (${sc.provisioner}) are snapshotted through ${choice.className} (${choice.via === 'storage-class' ? 'named by the StorageClass' : `annotated ${IS_SNAPSHOT_CLASS}`})`,
          }
        : {
            name: `snapshot-class:${name}`.slice(0, 100),
            ok: false,
            message: choice.message,
            advice: `kubectl annotate volumesnapshotclass <name> ${IS_SNAPSHOT_CLASS}=true on exactly one class of ${sc.provisioner}`,
          },
    );
  }
  const { primer } = env.settings;
  if (primer) {
    const choice = choices.get(primer.storageClass);
    const reason = !storageClasses.some((sc) => sc.metadata?.name === primer.storageClass)
      ? `StorageClass ${primer.storageClass} (config.primer.storageClass) does not exist`
      : !choice
        ? `StorageClass ${primer.storageClass} (config.primer.storageClass) is of a driver with no VolumeSnapshotClass`
        : !choice.ok
          ? `StorageClass ${primer.storageClass}: ${choice.message}`
          : !(await kube.namespace(primer.namespace))
            ? `namespace ${primer.namespace} (config.primer.namespace) does not exist`
            : undefined;
    if (reason || !choice?.ok)
      checks.push({
        name: 'primer',
        ok: false,
        message: `the primer did not run: ${reason ?? ''}`,
        advice:
          'name an existing StorageClass of a CSI driver with a snapshot class, and an existing namespace, in config.primer',
      });
    else checks.push(...(await runPrimer(env, primer, choice.className, ctx)));
  }
  if (locator) {
    const ns = await kube.namespace(locator.namespace);
    checks.push(
      ns
        ? { name: 'namespace', ok: true, message: `namespace ${locator.namespace} exists` }
        : {
            name: 'namespace',
            ok: false,
            message: `namespace ${locator.namespace} does not exist`,
            advice: 'correct locator.namespace',
          },
    );
  }
  return { ok: checks.every((c) => c.ok), checks };
}
