import type { TaskContext } from '@cairn/plugin-sdk';
import type { V1Container, V1Pod, V1Secret } from '@kubernetes/client-node';
import type { OperationEnv } from './backup.js';
import type { ExportSettings } from './config.js';
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

/**
 * The label of a data mover pod that runs on its own with a Secret of its own (a restore's, a
 * listing's, a forget's), on both; its value is what the pod does.
 */
export const LABEL_MOVER = 'cairn.dev/mover';

/**
 * Runs one data mover pod of the export's restic image to its end, the repository password in a
 * Secret of the pod's name, and removes both whatever happens. What an agent killed meanwhile
 * leaves, a later operation of the connection removes (`sweepMovers`).
 */
export async function runMover(
  env: OperationEnv,
  settings: ExportSettings,
  meta: { name: string; namespace: string; labels: Record<string, string> },
  spec: { claim?: string; command: string[]; what: string },
  ctx: TaskContext,
): Promise<{ phase: string; log: string }> {
  const { kube } = env;
  const { name, namespace } = meta;
  const labels = { ...meta.labels, [LABEL_MOVER]: spec.command[1] ?? 'restic' };
  // The name derives from the task: one there already is an earlier attempt's, left when it was killed.
  await kube.deletePod(namespace, name);
  await kube.deleteSecret(namespace, name);
  await kube.createSecret(namespace, passwordSecret(name, namespace, labels, settings.password));
  try {
    return await runToEnd(
      env,
      oneShotPod({ name, namespace, labels }, spec.claim, MOVER_MOUNT, {
        name: 'restic',
        image: settings.image,
        command: spec.command,
        ...(spec.claim ? { workingDir: MOVER_MOUNT } : {}),
        env: resticEnv(settings.repository, name),
      }),
      spec.what,
      ctx,
    );
  } finally {
    await kube.deletePod(namespace, name);
    await kube.deleteSecret(namespace, name);
  }
}

/** Where a data mover pod mounts the claim it reads or fills. */
export const MOVER_MOUNT = '/data';

/**
 * Removes, in every namespace, data mover pods and their Secrets that outlived any wait for them:
 * older than twice `config.readyTimeoutS` and a minute (a task waits for its pod at most
 * `readyTimeoutS`, then removes it), so only those of a task whose agent was killed. Answers how
 * many it removed.
 */
export async function sweepMovers(env: OperationEnv): Promise<number> {
  const { kube } = env;
  const bound = 2 * env.settings.readyTimeoutMs + 60_000;
  const now = env.now();
  const stale = (o: { metadata?: { creationTimestamp?: Date | string } }) => {
    const at = o.metadata?.creationTimestamp;
    return at !== undefined && now - new Date(at).getTime() > bound;
  };
  let removed = 0;
  for (const pod of (await kube.podsEverywhere(LABEL_MOVER)).filter(stale)) {
    await kube.deletePod(pod.metadata!.namespace!, pod.metadata!.name!);
    removed++;
  }
  for (const secret of (await kube.secretsEverywhere(LABEL_MOVER)).filter(stale)) {
    await kube.deleteSecret(secret.metadata!.namespace!, secret.metadata!.name!);
    removed++;
  }
  return removed;
}
