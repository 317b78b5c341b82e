/**
 * Export of a backup's volumes into a restic repository, so that the backup outlives the cluster's
 * storage: for each volume, a temporary claim restored from its VolumeSnapshot, read by a data
 * mover pod of a restic image (`restic backup .` in the mounted claim), then both removed, with the
 * Secret that holds the repository password. Runs the same on a real cluster.
 */
import { PluginError, type TaskContext } from '@cairn/plugin-sdk';
import type { OperationEnv } from './backup.js';
import { SNAPSHOT_GROUP } from './client.js';
import { oneShotPod } from './pods.js';
import type { ExportSettings } from './config.js';
import type { VolumeRecord } from './record.js';
import { waitFor } from './snapshots.js';

export const LABEL_EXPORT = 'cairn.dev/export';
export const ANNOTATION_EXPORT_ID = 'cairn.dev/export-id';
const MOUNT = '/data';

/** Exports each volume; answers the restic snapshot id of each, by claim. */
export async function exportVolumes(
  env: OperationEnv,
  settings: ExportSettings,
  volumes: readonly { snapshot: string; record: VolumeRecord }[],
  ctx: TaskContext,
): Promise<Map<string, string>> {
  const { kube } = env;
  const { namespace, backupId } = volumes[0]!.record;
  const labels = { [LABEL_EXPORT]: backupId };
  const secret = `${backupId}-export`;
  const ids = new Map<string, string>();
  await kube.createSecret(namespace, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secret, namespace, labels },
    data: { password: Buffer.from(settings.password).toString('base64') },
  });
  try {
    for (const { snapshot, record } of volumes) {
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
        await kube.createPod(
          namespace,
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
              '.',
            ],
            workingDir: MOUNT,
            env: [
              { name: 'RESTIC_REPOSITORY', value: settings.repository },
              { name: 'RESTIC_PASSWORD', valueFrom: { secretKeyRef: { name: secret, key: 'password' } } },
            ],
          }),
        );
        let phase: string | undefined;
        await waitFor(
          async () => {
            phase = (await kube.pod(namespace, name))?.status?.phase;
            return phase === 'Succeeded' || phase === 'Failed';
          },
          {
            intervalMs: env.settings.pollIntervalMs,
            timeoutMs: env.settings.readyTimeoutMs,
            signal: ctx.signal,
            now: env.now,
            timeoutMessage: () =>
              `export of ${record.claim}: data mover pod ${namespace}/${name} still ${phase ?? 'not started'} after ${env.settings.readyTimeoutMs / 1000} s (config.readyTimeoutS)`,
          },
        );
        const log = await kube.podLog(namespace, name);
        const id = /"message_type":"summary".*"snapshot_id":"([0-9a-f]+)"/.exec(log)?.[1];
        if (phase !== 'Succeeded' || !id)
          throw new PluginError(
            'EXPORT_FAILED',
            `export of ${record.claim} into ${settings.repository} failed (pod ${phase ?? '?'}): ${log.trim().slice(-400)}`,
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
