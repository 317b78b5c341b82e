/**
 * Export of a backup's volumes into a restic repository, so that the backup outlives the cluster's
 * storage: for each volume, a temporary claim restored from its VolumeSnapshot, read by a data
 * mover pod of a restic image (`restic backup .` in the mounted claim), then both removed, with the
 * Secret that holds the repository password. Each restic snapshot carries the volume's record in a
 * tag, for a restore when the cluster has lost the snapshot. Runs the same on a real cluster.
 *
 * The temporaries' names derive from the backup id (so from the task id) and all carry the label
 * `cairn.dev/export=<backup id>`: what an attempt killed midway left, a retry of the task or the
 * instance's next backup finds and removes (`removeExportTemporaries`).
 */
import { PluginError, REPOSITORY_CHANGED, type TaskContext } from '@cairn/plugin-sdk';
import type { OperationEnv } from './backup.js';
import { SNAPSHOT_GROUP, type Kube } from './client.js';
import { MOVER_MOUNT, oneShotPod, passwordSecret, resticEnv, runMover, runToEnd } from './pods.js';
import type { ExportSettings } from './config.js';
import { LABEL_RESTORE, readRecordTag, recordTag, type VolumeRecord } from './record.js';

export const LABEL_EXPORT = 'cairn.dev/export';
export const ANNOTATION_EXPORT_ID = 'cairn.dev/export-id';
export const MOUNT = MOVER_MOUNT;

/** Exports each volume; answers the restic snapshot id of each, by claim. */
export async function exportVolumes(
  env: OperationEnv,
  settings: ExportSettings,
  volumes: readonly { snapshot: string; record: VolumeRecord; restoreSize: number }[],
  ctx: TaskContext,
): Promise<Map<string, string>> {
  const { kube } = env;
  const { namespace, backupId } = volumes[0]!.record;
  const labels = { [LABEL_EXPORT]: backupId };
  const secret = `${backupId}-export`;
  const ids = new Map<string, string>();
  const adopted = await removeExportTemporaries(kube, namespace, backupId);
  if (adopted)
    ctx.event({
      type: 'provider.message',
      message: `removed ${adopted} export pod(s), claim(s) and Secret(s) of ${backupId} an earlier attempt left, to export again`,
    });
  await checkExportRepository(env, settings, { name: `${backupId}-id`, namespace, labels }, ctx);
  await kube.createSecret(namespace, passwordSecret(secret, namespace, labels, settings.password));
  try {
    for (const { snapshot, record, restoreSize } of volumes) {
      const name = `${snapshot}-x`;
      try {
        await kube.createClaim(namespace, {
          apiVersion: 'v1',
          kind: 'PersistentVolumeClaim',
          metadata: { name, namespace, labels },
          spec: {
            storageClassName: record.storageClass,
            accessModes: record.accessModes,
            volumeMode: record.volumeMode,
            resources: { requests: { storage: record.capacity } },
            dataSource: { apiGroup: SNAPSHOT_GROUP, kind: 'VolumeSnapshot', name: snapshot },
          },
        });
        const { phase, log } = await runToEnd(
          env,
          oneShotPod({ name, namespace, labels }, name, MOUNT, {
            name: 'restic',
            image: settings.image,
            command: [
              'restic',
              'backup',
              '--json',
              '--host',
              'cairn',
              '--tag',
              `${LABEL_EXPORT}=${backupId}`,
              '--tag',
              `cairn.dev/claim=${record.claim}`,
              '--tag',
              recordTag(record, restoreSize),
              '.',
            ],
            workingDir: MOUNT,
            env: resticEnv(settings.repository, secret),
          }),
          `export of ${record.claim}`,
          ctx,
        );
        const id = /"message_type":"summary".*"snapshot_id":"([0-9a-f]+)"/.exec(log)?.[1];
        if (phase !== 'Succeeded' || !id)
          throw new PluginError(
            'EXPORT_FAILED',
            `export of ${record.claim} into ${settings.repository} failed (pod ${phase}): ${log.trim().slice(-400)}`,
            { retryable: true },
          );
        ids.set(record.claim, id);
        ctx.progress({ percent: 95, message: `exported ${ids.size} of ${volumes.length} volume(s) into restic` });
      } finally {
        await kube.deletePod(namespace, name);
        await kube.deleteClaim(namespace, name);
      }
    }
  } finally {
    await kube.deleteSecret(namespace, secret);
  }
  return ids;
}

/**
 * Removes the pods, claims and Secret an export of `backupId` made in `namespace` (a restore's,
 * also labelled `cairn.dev/restore`, stay); answers how many it removed.
 */
export async function removeExportTemporaries(kube: Kube, namespace: string, backupId: string): Promise<number> {
  const selector = `${LABEL_EXPORT}=${backupId},!${LABEL_RESTORE}`;
  let removed = 0;
  for (const pod of await kube.pods(namespace, selector)) {
    await kube.deletePod(namespace, pod.metadata!.name!);
    removed++;
  }
  for (const claim of await kube.claims(namespace, selector)) {
    await kube.deleteClaim(namespace, claim.metadata!.name!);
    removed++;
  }
  for (const secret of await kube.secrets(namespace, selector)) {
    await kube.deleteSecret(namespace, secret.metadata!.name!);
    removed++;
  }
  return removed;
}

/**
 * When the export target's connection recorded the identity of its repository, checks through a
 * data mover pod (`restic cat config`, in `meta.namespace`) that the repository the pods reach is
 * that one, before anything writes, lists or restores: another repository at the same place (an
 * unmounted disk, a re-created bucket) fails `REPOSITORY_CHANGED` naming both ids, and a sync
 * never reads its listing as "everything gone". Unreadable: EXPORT_UNREADABLE. Without a recorded
 * identity (the target connection has run no task yet) nothing is checked, and no pod is run.
 */
export async function checkExportRepository(
  env: OperationEnv,
  settings: ExportSettings,
  meta: { name: string; namespace: string; labels: Record<string, string> },
  ctx: TaskContext,
): Promise<void> {
  if (!settings.identity) return;
  const read = await runMover(
    env,
    settings,
    meta,
    { command: ['restic', 'cat', 'config'], what: `reading the identity of ${settings.repository}` },
    ctx,
  );
  let id: unknown;
  try {
    id = (JSON.parse(read.log.slice(read.log.indexOf('{'), read.log.lastIndexOf('}') + 1)) as { id?: unknown }).id;
  } catch {
    id = undefined;
  }
  if (read.phase !== 'Succeeded' || typeof id !== 'string' || !id)
    throw new PluginError(
      'EXPORT_UNREADABLE',
      `could not read the identity of the export repository ${settings.repository} (pod ${meta.namespace}/${meta.name} ${read.phase}): ${read.log.trim().slice(-400)}`,
      { retryable: true },
    );
  if (id !== settings.identity)
    throw new PluginError(
      REPOSITORY_CHANGED,
      `the export target ${settings.repository} is repository ${id}, not ${settings.identity}, the one its connection (exportTo) recorded: it is not the repository exported to before (is its disk mounted?). Nothing was changed. If the repository was moved on purpose, an SP admin clears the export target connection's repositoryIdentity`,
    );
}

/** One volume's export in the repository: its restic snapshot and the record its tag carries. */
export interface Exported {
  id: string;
  time: string;
  record: VolumeRecord;
  restoreSize: number;
}

/**
 * The exports in the repository (of `backupId` only, when given), read by a `restic snapshots`
 * data mover pod in `meta.namespace`. A listing that cannot be read fails EXPORT_UNREADABLE: never
 * an empty answer, which a sync would take for "everything gone".
 */
export async function listExported(
  env: OperationEnv,
  settings: ExportSettings,
  meta: { name: string; namespace: string; labels: Record<string, string> },
  backupId: string | undefined,
  ctx: TaskContext,
): Promise<Exported[]> {
  const what = backupId ? `the exports of ${backupId}` : 'the exports';
  await checkExportRepository(env, settings, { ...meta, name: `${meta.name}-id` }, ctx);
  const listed = await runMover(
    env,
    settings,
    meta,
    {
      command: ['restic', 'snapshots', '--json', ...(backupId ? ['--tag', `${LABEL_EXPORT}=${backupId}`] : [])],
      what: `listing ${what}`,
    },
    ctx,
  );
  const line = listed.log.split('\n').find((l) => l.startsWith('['));
  let snapshots: { id: string; time: string; tags?: string[] }[] | undefined;
  try {
    snapshots = line ? (JSON.parse(line) as typeof snapshots) : undefined;
  } catch {
    snapshots = undefined;
  }
  if (listed.phase !== 'Succeeded' || !Array.isArray(snapshots))
    throw new PluginError(
      'EXPORT_UNREADABLE',
      `could not list ${what} in ${settings.repository} (pod ${meta.namespace}/${meta.name} ${listed.phase}): ${listed.log.trim().slice(-400)}`,
      { retryable: true },
    );
  const out: Exported[] = [];
  for (const s of snapshots) {
    const found = readRecordTag(s.tags ?? []);
    if (found && (!backupId || found.record.backupId === backupId)) out.push({ id: s.id, time: s.time, ...found });
  }
  return out;
}

/**
 * Forgets restic snapshots of the export (`restic forget`, through a data mover pod in
 * `meta.namespace`); the space they held goes at the repository's next prune.
 */
export async function forgetExported(
  env: OperationEnv,
  settings: ExportSettings,
  meta: { name: string; namespace: string; labels: Record<string, string> },
  ids: readonly string[],
  ctx: TaskContext,
): Promise<void> {
  if (!ids.length) return;
  const { phase, log } = await runMover(
    env,
    settings,
    meta,
    { command: ['restic', 'forget', ...ids], what: `forgetting ${ids.length} export snapshot(s)` },
    ctx,
  );
  if (phase !== 'Succeeded')
    throw new PluginError(
      'EXPORT_FAILED',
      `could not forget export snapshot(s) ${ids.join(', ')} in ${settings.repository} (pod ${meta.namespace}/${meta.name} ${phase}): ${log.trim().slice(-400)}`,
      { retryable: true },
    );
}
