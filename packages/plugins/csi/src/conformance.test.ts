/**
 * The conformance kit on the CSI plugin, against the fake Kubernetes API server: the kit's sample
 * data is written into a claim's volume (a directory of the fake CSI driver), backed up with
 * VolumeSnapshots, restored into a NEW namespace for each restore and read back from the restored
 * claim's volume, compared byte for byte; a backup cancelled midway, a delete, sync. Afterwards
 * nothing the backups made is left: no VolumeSnapshot, no content, no storage snapshot.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakeKube, resourceType, until, type FakeKube } from '@cairn/kube-apiserver-fake';
import { CHECK_NAMES, runConformance, type CheckResult, type ConformanceReport } from '@cairn/plugin-conformance';
import { settleCheck } from '@cairn/plugin-conformance/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_SNAPSHOT_CLASS } from './classes.js';

const DRIVER = 'hostpath.csi.k8s.io';
const NAMESPACE = 'conformance';
const CLAIM = 'data';
const PVC = resourceType('persistentvolumeclaims');
const VS = resourceType('volumesnapshots');
const VSC = resourceType('volumesnapshotcontents');

let dir: string;
let kube: FakeKube;
let report: ConformanceReport | undefined;
/** What the cluster held when the cancel check ended. */
let afterCancel: { contents: number; storage: number } | undefined;
/** Each restore's target directory (made by the kit) → the namespace made for it. */
const restoreNamespaces = new Map<string, string>();

describe('@cairn/plugin-csi conformance (fake cluster)', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cairn-csi-conformance-'));
    // Slow enough that the kit's cancel lands while the snapshot is not ready.
    kube = await startFakeKube({ dir, snapshotDelayMs: 300 });
    kube.put('namespaces', { metadata: { name: NAMESPACE } });
    kube.put('storageclasses', { metadata: { name: 'hostpath' }, provisioner: DRIVER, reclaimPolicy: 'Delete' });
    kube.put('volumesnapshotclasses', {
      metadata: { name: 'csi-hostpath-snapclass', annotations: { [IS_SNAPSHOT_CLASS]: 'true' } },
      driver: DRIVER,
      deletionPolicy: 'Delete',
    });
    report = await runConformance({
      // The built package, loaded as the agent loads it (the package.json "cairn" field included).
      packageName: fileURLToPath(new URL('..', import.meta.url)),
      connection: {
        credentials: { kubeconfig: kube.kubeconfigPath },
        config: { pollIntervalMs: 20, readyTimeoutS: 30 },
      },
      // The sample lives in a claim's volume.
      dataDirFor: async () => {
        kube.put('persistentvolumeclaims', {
          metadata: { name: CLAIM, namespace: NAMESPACE },
          spec: {
            storageClassName: 'hostpath',
            accessModes: ['ReadWriteOnce'],
            resources: { requests: { storage: '1Gi' } },
          },
        });
        await until('the claim bound', () => kube.store.find(PVC, NAMESPACE, CLAIM)?.status?.['phase'] === 'Bound');
        return kube.controller.volumePath(NAMESPACE, CLAIM);
      },
      locatorFor: () => ({ namespace: NAMESPACE }),
      // Every restore goes into a namespace of its own, made for it.
      restoreTargetFor: (target) => {
        const namespace = `restore-${restoreNamespaces.size + 1}`;
        restoreNamespaces.set(target, namespace);
        kube.put('namespaces', { metadata: { name: namespace } });
        return { namespace };
      },
      restoredDirFor: (target) => kube.controller.volumePath(restoreNamespaces.get(target)!, CLAIM),
      onCheck: (check: CheckResult) => {
        if (check.name === 'cancel')
          afterCancel = { contents: kube.store.list(VSC).length, storage: kube.controller.storageSnapshots().length };
      },
    });
  }, 120_000);

  afterAll(async () => {
    await kube?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const name of CHECK_NAMES) it(name, (ctx) => settleCheck(report, name, (note) => ctx.skip(note)));

  it('restores into new namespaces and compares them: both points and the one after the delete', () => {
    const passed = (name: string) => report?.checks.find((c) => c.name === name)?.status;
    expect(['restore first point', 'restore second point', 'delete'].map(passed)).toEqual(['pass', 'pass', 'pass']);
    expect([...restoreNamespaces.values()]).toEqual(['restore-1', 'restore-2', 'restore-3']);
  });

  it('leaves nothing of the cancelled backup: as many contents and storage snapshots as points (three)', () => {
    // First, second, and the backup after the cancel: one claim each.
    expect(afterCancel).toEqual({ contents: 3, storage: 3 });
  });

  it('leaves nothing behind once the kit deleted its points', async () => {
    await until('the snapshots gone', () => kube.store.list(VS).length === 0);
    expect({
      snapshots: kube.store.list(VS).length,
      contents: kube.store.list(VSC).length,
      storage: kube.controller.storageSnapshots(),
    }).toEqual({ snapshots: 0, contents: 0, storage: [] });
  });
});
