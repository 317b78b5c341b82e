/**
 * What the connection holds: backups found by their contents' labels and in the export (sync,
 * delete), and the preflight's look at drivers and classes.
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
import { ANNOTATION_EXPORT_ID, forgetExported, LABEL_EXPORT, listExported, type Exported } from './export.js';
import { sweepMovers } from './pods.js';
import {
  bytesOf,
  externalIdOf,
  groupBackups,
  hash,
  LABEL_BACKUP,
  LABEL_CLONE_OF,
  parseExternalId,
  type HeldBackup,
  type VolumeRecord,
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

/**
 * What the connection holds: backups whose every volume has a ready content, and, with
 * `config.export`, those whose every volume has an export (their contents deleted with the
 * storage snapshots): either restores. The export is listed through a data mover pod in
 * `config.export.namespace`; a listing that fails fails the sync (never a shorter listing).
 */
export async function sync(env: OperationEnv, req: { locator?: unknown }, ctx: TaskContext): Promise<ListedBackup[]> {
  const namespace = req.locator === undefined || req.locator === null ? undefined : readLocator(req.locator).namespace;
  const contents = await env.kube.list('volumesnapshotcontents', { labelSelector: LABEL_BACKUP });
  const listed = new Map<string, ListedBackup>();
  for (const b of groupBackups(contents).filter((b) => b.complete)) {
    const { record } = b.volumes[0]!;
    const size = b.volumes.reduce((sum, v) => sum + bytesOf(v.content.status?.restoreSize), 0);
    listed.set(b.backupId, listedOf(record, size));
  }
  const settings = env.settings.export;
  if (settings) {
    await sweep(env, ctx);
    const exported = await listExported(env, settings, moverIn(settings.namespace, ctx, 'ls'), undefined, ctx);
    for (const [backupId, volumes] of groupExports(exported))
      if (!listed.has(backupId) && volumes.size === volumes.values().next().value!.record.volumes) {
        const all = [...volumes.values()];
        listed.set(
          backupId,
          listedOf(
            all[0]!.record,
            all.reduce((sum, e) => sum + e.restoreSize, 0),
          ),
        );
      }
  }
  return [...listed.values()].filter((b) => !namespace || (b.locator as { namespace: string }).namespace === namespace);
}

function listedOf(record: VolumeRecord, sizeBytes: number): ListedBackup {
  return {
    externalId: externalIdOf(record.namespace, record.backupId),
    createdAt: record.createdAt,
    sizeBytes,
    locator: { namespace: record.namespace, instanceId: record.instanceId },
    mode: 'FULL',
  };
}

/** Exports by backup, then by claim (the newest of a claim exported twice). */
function groupExports(exported: readonly Exported[]): Map<string, Map<string, Exported>> {
  const out = new Map<string, Map<string, Exported>>();
  for (const e of exported) {
    let byClaim = out.get(e.record.backupId);
    if (!byClaim) out.set(e.record.backupId, (byClaim = new Map()));
    const earlier = byClaim.get(e.record.claim);
    if (!earlier || earlier.time < e.time) byClaim.set(e.record.claim, e);
  }
  return out;
}

/** A data mover pod of this task in `namespace`: its name and labels. */
function moverIn(namespace: string, ctx: TaskContext, what: string) {
  return { namespace, name: `cairn-${hash(ctx.taskId, 12)}-${what}`, labels: { [LABEL_EXPORT]: 'catalog' } };
}

async function sweep(env: OperationEnv, ctx: TaskContext): Promise<void> {
  const swept = await sweepMovers(env);
  if (swept)
    ctx.event({
      type: 'provider.message',
      message: `removed ${swept} data mover pod(s) and Secret(s) that killed tasks left`,
    });
}

/**
 * Deletes the backup's snapshots, storage snapshots included (they may be partly gone already),
 * and, with `config.export`, forgets its exports (in the backup's namespace if it is there, else
 * in `config.export.namespace`). A backup found in neither is BACKUP_NOT_FOUND.
 */
export async function deleteBackup(env: OperationEnv, req: DeleteBackupRequest, ctx: TaskContext): Promise<void> {
  const { kube } = env;
  const settings = env.settings.export;
  if (!settings) {
    const held = await findBackup(kube, req.backupExternalId, req.instanceId);
    const exportIds = held.volumes
      .map((v) => v.content.metadata?.annotations?.[ANNOTATION_EXPORT_ID])
      .filter((id): id is string => typeof id === 'string' && id !== '');
    await destroyHeld(kube, held);
    // Exported while the connection had an export target: without one now, nothing can forget them.
    if (exportIds.length)
      ctx.event({
        type: 'warning',
        message: `backup ${req.backupExternalId} was exported into restic (snapshot(s) ${exportIds.join(', ')}) while this connection had an exportTo; it has none now, so those snapshots stay in that repository: forget them there with restic, or set exportTo again before deleting exported backups`,
        data: { exportIds },
      });
    return;
  }
  const backupId = parseExternalId(req.backupExternalId);
  if (!backupId) await findBackup(kube, req.backupExternalId, req.instanceId); // throws: not a CSI id
  const contents = await kube.list('volumesnapshotcontents', { labelSelector: `${LABEL_BACKUP}=${backupId!}` });
  const held = groupBackups(contents)[0];
  await sweep(env, ctx);
  const source = req.backupExternalId.split('/')[0]!;
  const mover = moverIn((await kube.namespace(source)) ? source : settings.namespace, ctx, 'rm');
  const exported = await listExported(env, settings, { ...mover, name: `${mover.name}-ls` }, backupId, ctx);
  const foreign = (r: VolumeRecord) => r.instanceId !== req.instanceId;
  // Another instance's backup is answered exactly as one that does not exist.
  if (
    (!held && !exported.length) ||
    held?.volumes.some((v) => foreign(v.record)) ||
    exported.some((e) => foreign(e.record))
  )
    throw new PluginError(
      'BACKUP_NOT_FOUND',
      `backup ${req.backupExternalId} is neither on the cluster nor in the export`,
    );
  if (held) await destroyHeld(kube, held);
  await forgetExported(
    env,
    settings,
    mover,
    exported.map((e) => e.id),
    ctx,
  );
}

async function destroyHeld(kube: Kube, held: HeldBackup): Promise<void> {
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
