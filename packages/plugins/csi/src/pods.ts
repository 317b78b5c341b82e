import type { TaskContext } from '@cairn/plugin-sdk';
import type { V1Container, V1Pod, V1Secret } from '@kubernetes/client-node';
import type { OperationEnv } from './backup.js';
import { waitFor } from './snapshots.js';

/**
 * A pod that runs one container once (`restartPolicy: Never`), with one claim mounted at
 * `mountPath` (the volume is named `data`) or, with `claim` undefined, none.
 */
export function oneShotPod(
  meta: { name: string; namespace: string; labels: Record<string, string> },
  claim: string | undefined,
  mountPath: string,
  container: Omit<V1Container, 'volumeMounts'>,
): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta,
    spec: {
      restartPolicy: 'Never',
      containers: [{ ...container, ...(claim ? { volumeMounts: [{ name: 'data', mountPath }] } : {}) }],
      ...(claim ? { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim } }] } : {}),
    },
  };
}

/**
 * Creates `pod` and waits until it ends (`config.readyTimeoutS`); answers its phase and log. A pod
 * still running at the timeout is a TIMEOUT_WAITING naming `what`. The caller deletes the pod.
 */
export async function runToEnd(
  env: OperationEnv,
  pod: V1Pod,
  what: string,
  ctx: TaskContext,
): Promise<{ phase: string; log: string }> {
  const { kube } = env;
  const namespace = pod.metadata!.namespace!;
  const name = pod.metadata!.name!;
  await kube.createPod(namespace, pod);
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
        `${what}: data mover pod ${namespace}/${name} still ${phase ?? 'not started'} after ${env.settings.readyTimeoutMs / 1000} s (config.readyTimeoutS)`,
    },
  );
  return { phase: phase!, log: await kube.podLog(namespace, name) };
}

/** The Secret that holds a restic repository's password for data mover pods (key `password`). */
export function passwordSecret(
  name: string,
  namespace: string,
  labels: Record<string, string>,
  password: string,
): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, labels },
    data: { password: Buffer.from(password).toString('base64') },
  };
}

/** A restic data mover container's environment: the repository, the password from `secret`. */
export function resticEnv(repository: string, secret: string): V1Container['env'] {
  return [
    { name: 'RESTIC_REPOSITORY', value: repository },
    { name: 'RESTIC_PASSWORD', valueFrom: { secretKeyRef: { name: secret, key: 'password' } } },
  ];
}
