/**
 * The preflight's primer: for one StorageClass, what a backup and a restore do, with data. A claim
 * is written by a pod, snapshotted through the class the class rule chooses, restored into a new
 * claim that a second pod reads, and the two hashes compared; then everything it made is removed,
 * whichever step failed. The pods are plain busybox pods (`sh`, `printf`, `sha256sum`), so the
 * primer runs the same on a real cluster as against the test cluster.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { PreflightCheck, TaskContext } from '@cairn/plugin-sdk';
import type { OperationEnv } from './backup.js';
import { SNAPSHOT_GROUP } from './client.js';
import type { PrimerSettings } from './config.js';
import { oneShotPod } from './pods.js';
import { hash } from './record.js';
import { destroySnapshot, waitFor } from './snapshots.js';

export const LABEL_PRIMER = 'cairn.dev/primer';
const MOUNT = '/cairn';
const FILE = `${MOUNT}/primer.txt`;
const DATA_VAR = 'CAIRN_PRIMER_DATA';

/** The names one primer run gives what it makes (deterministic per task). */
export function primerNames(taskId: string) {
  const tag = hash(`primer:${taskId}`, 10);
  const base = `cairn-primer-${tag}`;
  return {
    tag,
    source: `${base}-src`,
    restored: `${base}-restored`,
    snapshot: base,
    writer: `${base}-write`,
    reader: `${base}-read`,
  };
}

/** A step that failed: the check to report, and the steps after it are not run. */
class StepFailed extends Error {
  constructor(readonly check: PreflightCheck) {
    super(check.message);
  }
}

/**
 * Runs the primer for `settings.storageClass`, snapshotting through `snapshotClass` (the class
 * rule's choice for it). Reports one check a step that ran, and `primer:cleanup` always.
 */
export async function runPrimer(
  env: OperationEnv,
  settings: PrimerSettings,
  snapshotClass: string,
  ctx: TaskContext,
): Promise<PreflightCheck[]> {
  const { kube } = env;
  const { namespace, storageClass, image } = settings;
  const names = primerNames(ctx.taskId);
  const labels = { [LABEL_PRIMER]: names.tag };
  const data = randomBytes(1024).toString('hex');
  const want = createHash('sha256').update(data).digest('hex');
  const checks: PreflightCheck[] = [];
  const seconds = env.settings.readyTimeoutMs / 1000;
  const wait = (what: string, check: () => Promise<boolean>, signal = ctx.signal) =>
    waitFor(check, {
      intervalMs: env.settings.pollIntervalMs,
      timeoutMs: env.settings.readyTimeoutMs,
      signal,
      now: env.now,
      timeoutMessage: () => `${what} after ${seconds} s (config.readyTimeoutS)`,
    });
  const pass = (name: string, message: string) => checks.push({ name, ok: true, message });
  const fail = (name: string, message: string, advice: string) => new StepFailed({ name, ok: false, message, advice });
  const claimBody = (name: string, fromSnapshot: boolean) => ({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace, labels },
    spec: {
      storageClassName: storageClass,
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '64Mi' } },
      ...(fromSnapshot
        ? { dataSource: { apiGroup: SNAPSHOT_GROUP, kind: 'VolumeSnapshot', name: names.snapshot } }
        : {}),
    },
  });
  const podBody = (name: string, claim: string, command: string[]) =>
    oneShotPod({ name, namespace, labels }, claim, MOUNT, {
      name: 'primer',
      image,
      command,
      env: [{ name: DATA_VAR, value: data }],
    });
  /**
   * Makes a claim and a pod that mounts it, and waits for the pod to end (a claim of a
   * WaitForFirstConsumer class binds only once a pod uses it). Its claim check fails when the
   * claim never bound, its pod check when the pod did not succeed or printed another hash.
   */
  const claimAndPod = async (
    claim: { check: string; name: string; fromSnapshot: boolean; advice: string },
    pod: { check: string; name: string; command: string[]; advice: string },
  ) => {
    const started = env.now();
    await kube.createClaim(namespace, claimBody(claim.name, claim.fromSnapshot));
    await kube.createPod(namespace, podBody(pod.name, claim.name, pod.command));
    let phase: string | undefined;
    try {
      await wait(`pod ${pod.name} not finished`, async () => {
        phase = (await kube.pod(namespace, pod.name))?.status?.phase;
        return phase === 'Succeeded' || phase === 'Failed';
      });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      const bound = (await kube.claim(namespace, claim.name))?.status?.phase === 'Bound';
      if (!bound)
        throw fail(claim.check, `claim ${namespace}/${claim.name} not bound after ${seconds} s`, claim.advice);
      throw fail(
        pod.check,
        `pod ${namespace}/${pod.name} still ${phase ?? 'not started'} after ${seconds} s`,
        pod.advice,
      );
    }
    pass(claim.check, `claim ${namespace}/${claim.name} of StorageClass ${storageClass} bound`);
    const log = await kube.podLog(namespace, pod.name).catch((err: Error) => err.message);
    const got = /^([0-9a-f]{64}) {2}/m.exec(log)?.[1];
    if (phase !== 'Succeeded' || got !== want)
      throw fail(
        pod.check,
        `pod ${namespace}/${pod.name} ${phase === 'Succeeded' ? `read sha256 ${got ?? '(none)'}, wrote ${want}` : 'failed'}: ${log.trim().slice(0, 300)}`,
        pod.advice,
      );
    return env.now() - started;
  };

  try {
    const wroteMs = await claimAndPod(
      {
        check: 'primer:claim',
        name: names.source,
        fromSnapshot: false,
        advice: `check that the provisioner of StorageClass ${storageClass} runs: kubectl -n ${namespace} describe pvc ${names.source}`,
      },
      {
        check: 'primer:write',
        name: names.writer,
        command: ['sh', '-c', `printf %s "$${DATA_VAR}" > ${FILE} && sha256sum ${FILE}`],
        advice: `check that pods in ${namespace} may run ${image} and mount the claim: kubectl -n ${namespace} describe pod ${names.writer}`,
      },
    );
    pass('primer:write', `pod ${names.writer} wrote 2048 bytes (sha256 ${want.slice(0, 12)}…) in ${wroteMs} ms`);
    const snapStarted = env.now();
    await kube.create(
      'volumesnapshots',
      {
        apiVersion: `${SNAPSHOT_GROUP}/v1`,
        kind: 'VolumeSnapshot',
        metadata: { name: names.snapshot, namespace, labels },
        spec: { source: { persistentVolumeClaimName: names.source }, volumeSnapshotClassName: snapshotClass },
      },
      namespace,
    );
    const snapAdvice = `check the snapshot controller and the CSI driver's snapshotter: kubectl -n ${namespace} describe volumesnapshot ${names.snapshot}`;
    try {
      await wait(`snapshot ${names.snapshot} not ready`, async () => {
        const vs = await kube.get('volumesnapshots', names.snapshot, namespace);
        if (vs?.status?.error?.message)
          throw fail('primer:snapshot', `snapshot failed: ${vs.status.error.message}`, snapAdvice);
        return vs?.status?.readyToUse === true;
      });
    } catch (err) {
      if (err instanceof StepFailed || ctx.signal.aborted) throw err;
      throw fail('primer:snapshot', (err as Error).message, snapAdvice);
    }
    pass(
      'primer:snapshot',
      `snapshot ${names.snapshot} through ${snapshotClass} ready in ${env.now() - snapStarted} ms`,
    );
    const readMs = await claimAndPod(
      {
        check: 'primer:restore',
        name: names.restored,
        fromSnapshot: true,
        advice: `check that the driver of StorageClass ${storageClass} provisions claims from a VolumeSnapshot: kubectl -n ${namespace} describe pvc ${names.restored}`,
      },
      {
        check: 'primer:compare',
        name: names.reader,
        command: ['sha256sum', FILE],
        advice: `the restored claim does not hold what was written: do not rely on snapshots of StorageClass ${storageClass} until this passes`,
      },
    );
    pass(
      'primer:compare',
      `the restored claim holds the same 2048 bytes (sha256 ${want.slice(0, 12)}…), read in ${readMs} ms`,
    );
  } catch (err) {
    if (!(err instanceof StepFailed)) {
      if (ctx.signal.aborted) {
        await cleanUp(env, namespace, names, wait);
        throw err;
      }
      checks.push({
        name: 'primer:error',
        ok: false,
        message: (err as Error).message,
        advice: `check that the connection's credentials may create claims, pods and VolumeSnapshots in ${namespace}`,
      });
    } else checks.push(err.check);
  }
  checks.push(await cleanUp(env, namespace, names, wait));
  return checks;
}

/**
 * Deletes the pods, the claims and the snapshot (its content switched to Delete first), and waits
 * until they are gone; a Retain volume the claims leave behind is deleted too.
 */
async function cleanUp(
  env: OperationEnv,
  namespace: string,
  names: ReturnType<typeof primerNames>,
  wait: (what: string, check: () => Promise<boolean>, signal?: AbortSignal) => Promise<void>,
): Promise<PreflightCheck> {
  const { kube } = env;
  const selector = `${LABEL_PRIMER}=${names.tag}`;
  try {
    for (const pod of [names.reader, names.writer]) await kube.deletePod(namespace, pod);
    await destroySnapshot(kube, namespace, names.snapshot);
    const volumes: string[] = [];
    for (const claim of [names.restored, names.source]) {
      const volume = (await kube.claim(namespace, claim))?.spec?.volumeName;
      if (volume) volumes.push(volume);
      await kube.deleteClaim(namespace, claim);
    }
    const left = async () => {
      const found = [
        ...(await kube.pods(namespace, selector)).map((p) => `pod ${p.metadata?.name ?? ''}`),
        ...(await kube.claims(namespace, selector)).map((c) => `claim ${c.metadata?.name ?? ''}`),
        ...(await kube.list('volumesnapshots', { namespace, labelSelector: selector })).map(
          (s) => `volumesnapshot ${s.metadata.name}`,
        ),
      ];
      for (const volume of volumes) {
        const pv = await kube.volume(volume);
        if (pv?.status?.phase === 'Released' && pv.spec?.persistentVolumeReclaimPolicy === 'Retain')
          await kube.deleteVolume(volume);
        else if (pv) found.push(`persistentvolume ${volume}`);
      }
      return found;
    };
    let remaining: string[] = [];
    await wait(
      'primer objects still there',
      async () => (remaining = await left()).length === 0,
      new AbortController().signal,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${remaining.join(', ')}`);
    });
    return {
      name: 'primer:cleanup',
      ok: true,
      message: `removed the primer's pods, claims and snapshot from ${namespace}`,
    };
  } catch (err) {
    return {
      name: 'primer:cleanup',
      ok: false,
      message: `could not remove everything the primer made: ${(err as Error).message}`,
      advice: `kubectl -n ${namespace} delete pod,pvc,volumesnapshot -l ${selector}`,
    };
  }
}
