// The preflight's primer against the fake cluster: a claim written by a pod, snapshotted, restored
// into a new claim read by a second pod, compared, and everything removed; a fault injected at each
// step fails that step's check, and nothing is left behind.
import { startFakeKube, resourceType, until, type FakeKube } from '@cairn/kube-apiserver-fake';
import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IS_SNAPSHOT_CLASS } from './classes.js';
import plugin from './index.js';
import { primerNames } from './primer.js';

const DRIVER = 'hostpath.csi.k8s.io';
const NS = 'primer';
const STEPS = ['primer:claim', 'primer:write', 'primer:snapshot', 'primer:restore', 'primer:compare'];
let dir: string;
let kube: FakeKube;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-primer-'));
  kube = await startFakeKube({ dir, snapshotDelayMs: 30 });
  kube.put('namespaces', { metadata: { name: NS } });
  kube.put('storageclasses', { metadata: { name: 'hostpath' }, provisioner: DRIVER, reclaimPolicy: 'Delete' });
  kube.put('storageclasses', { metadata: { name: 'kept' }, provisioner: DRIVER, reclaimPolicy: 'Retain' });
  kube.put('volumesnapshotclasses', {
    metadata: { name: 'csi-hostpath-snapclass', annotations: { [IS_SNAPSHOT_CLASS]: 'true' } },
    driver: DRIVER,
    deletionPolicy: 'Delete',
  });
});

afterEach(async () => {
  await kube.close();
  await rm(dir, { recursive: true, force: true });
});

function env(taskId: string, primer: Record<string, unknown> = { storageClass: 'hostpath', namespace: NS }) {
  return new MockTaskEnvironment(plugin, {
    credentials: { kubeconfig: kube.kubeconfigPath },
    config: { pollIntervalMs: 20, readyTimeoutS: 1, primer },
    taskId,
  });
}

/** Everything in the cluster and on its storage that a primer could leave behind. */
async function leftovers() {
  const count = (plural: string) => kube.store.list(resourceType(plural)).length;
  return {
    pods: count('pods'),
    claims: count('persistentvolumeclaims'),
    volumes: count('persistentvolumes'),
    snapshots: count('volumesnapshots'),
    contents: count('volumesnapshotcontents'),
    storageVolumes: (await readdir(kube.controller.volumesDir)).length,
    storageSnapshots: kube.controller.storageSnapshots().length,
  };
}
const NOTHING = { pods: 0, claims: 0, volumes: 0, snapshots: 0, contents: 0, storageVolumes: 0, storageSnapshots: 0 };

async function preflight(taskId: string, primer?: Record<string, unknown>) {
  const started = Date.now();
  const run = await env(taskId, primer).run('preflight', {});
  if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
  return { report: run.value, ms: Date.now() - started };
}

describe('the primer', () => {
  it('writes, snapshots, restores and compares through the chosen StorageClass, and removes all it made', async () => {
    const { report, ms } = await preflight('t-pass');
    expect(report.checks.map((c) => [c.name, c.ok])).toEqual([
      ['cluster-reachable', true],
      ['snapshot-class:hostpath', true],
      ['snapshot-class:kept', true],
      ...STEPS.map((s) => [s, true]),
      ['primer:cleanup', true],
    ]);
    expect(report.ok).toBe(true);
    expect(report.checks.find((c) => c.name === 'primer:snapshot')?.message).toMatch(/through csi-hostpath-snapclass/);
    const left = await leftovers();
    console.log(`primer pass: ${report.checks.length} checks, ${ms} ms, left ${JSON.stringify(left)}`);
    expect(left).toEqual(NOTHING);
  });

  it('removes the volumes a Retain StorageClass leaves behind', async () => {
    const { report } = await preflight('t-retain', { storageClass: 'kept', namespace: NS });
    expect(report.ok).toBe(true);
    const left = await leftovers();
    // The PersistentVolume objects go; the storage keeps a Retain volume's data, as a real one does.
    expect({ ...left, storageVolumes: 0 }).toEqual(NOTHING);
    expect(left.storageVolumes).toBe(2);
  });

  const faults: { fault: keyof FakeKube['controller']['faults']; claim: 'source' | 'restored'; fails: string }[] = [
    { fault: 'neverBind', claim: 'source', fails: 'primer:claim' },
    { fault: 'podFailure', claim: 'source', fails: 'primer:write' },
    { fault: 'snapshotError', claim: 'source', fails: 'primer:snapshot' },
    { fault: 'neverReady', claim: 'source', fails: 'primer:snapshot' },
    { fault: 'restoreError', claim: 'restored', fails: 'primer:restore' },
    { fault: 'podFailure', claim: 'restored', fails: 'primer:compare' },
    { fault: 'corruptRestore', claim: 'restored', fails: 'primer:compare' },
  ];
  for (const c of faults)
    it(`reports ${c.fails} failed under ${c.fault} of the ${c.claim} claim, and leaves nothing behind`, async () => {
      const taskId = `t-${c.fault}-${c.claim}`;
      const names = primerNames(taskId);
      kube.controller.faults[c.fault].add(`${NS}/${names[c.claim]}`);
      const { report, ms } = await preflight(taskId);
      const primer = report.checks.filter((x) => x.name.startsWith('primer'));
      const failed = primer.filter((x) => !x.ok);
      const left = await leftovers();
      console.log(
        `primer ${c.fault} ${c.claim}: failed ${failed.map((x) => x.name).join(',')}, ${primer.length} primer checks, ${ms} ms, left ${Object.values(left).reduce((a, b) => a + b, 0)} objects`,
      );
      expect(report.ok).toBe(false);
      expect(failed.map((x) => x.name)).toEqual([c.fails]);
      expect(failed[0]!.advice).toBeTruthy();
      const before = STEPS.slice(0, STEPS.indexOf(c.fails));
      expect(primer.map((x) => x.name)).toEqual([...before, c.fails, 'primer:cleanup']);
      expect(left).toEqual(NOTHING);
    });

  it('says which hashes differ when the restored data is not what was written', async () => {
    kube.controller.faults.corruptRestore.add(`${NS}/${primerNames('t-hash').restored}`);
    const { report } = await preflight('t-hash');
    expect(report.checks.find((c) => c.name === 'primer:compare')?.message).toMatch(
      /read sha256 [0-9a-f]{64}, wrote [0-9a-f]{64}/,
    );
  });

  it('reports a cleanup it could not finish, with the command that finishes it', async () => {
    kube.controller.faults.stuckFinalizer.add(`${NS}/${primerNames('t-stuck').source}`);
    const { report } = await preflight('t-stuck');
    const cleanup = report.checks.find((c) => c.name === 'primer:cleanup')!;
    expect(cleanup).toMatchObject({ ok: false, advice: expect.stringMatching(/kubectl -n primer delete/) as unknown });
    expect(cleanup.message).toMatch(/volumesnapshot cairn-primer-/);
    expect((await leftovers()).snapshots).toBe(1);
  });

  it('removes what it made when the preflight is cancelled midway', async () => {
    kube.controller.faults.neverReady.add(`${NS}/*`);
    const e = env('t-cancel');
    const pending = e.run('preflight', {});
    await until('the primer snapshot', () => kube.store.list(resourceType('volumesnapshots')).length > 0);
    e.cancel('user asked');
    const run = await pending;
    expect(run.ok ? '' : run.failure.code).toBe('CANCELLED');
    expect(await leftovers()).toEqual(NOTHING);
  });

  const refusals: { title: string; primer: unknown; want: string }[] = [
    { title: 'a primer that is not an object', primer: 'hostpath', want: 'config.primer: must be an object' },
    {
      title: 'an unknown primer field',
      primer: { storageClass: 'hostpath', namespace: NS, size: 1 },
      want: 'config.primer.size: unknown field',
    },
    {
      title: 'no StorageClass',
      primer: { namespace: NS },
      want: 'config.primer.storageClass: must be a StorageClass name',
    },
    {
      title: 'a namespace that is not a DNS label',
      primer: { storageClass: 'hostpath', namespace: 'Primer_1' },
      want: 'config.primer.namespace: must be a namespace name',
    },
    {
      title: 'an image with a space',
      primer: { storageClass: 'hostpath', namespace: NS, image: 'busybox; rm' },
      want: 'config.primer.image: must be an image reference',
    },
  ];
  for (const c of refusals)
    it(`refuses ${c.title}, naming the field, and makes nothing`, async () => {
      const run = await env('t-bad', c.primer as Record<string, unknown>).run('preflight', {});
      expect(run.ok ? '' : `${run.failure.code}: ${run.failure.message}`).toContain(`INVALID_CONFIG: ${c.want}`);
      expect(await leftovers()).toEqual(NOTHING);
    });

  for (const [title, primer, want] of [
    [
      'a StorageClass that does not exist',
      { storageClass: 'gone', namespace: NS },
      /StorageClass gone .* does not exist/,
    ],
    [
      'a namespace that does not exist',
      { storageClass: 'hostpath', namespace: 'nowhere' },
      /namespace nowhere .* does not exist/,
    ],
  ] as const)
    it(`does not run with ${title}: one failed check, nothing made`, async () => {
      const { report } = await preflight('t-missing', primer);
      expect(report.checks.filter((c) => !c.ok)).toMatchObject([
        { name: 'primer', message: expect.stringMatching(want) as unknown },
      ]);
      expect(await leftovers()).toEqual(NOTHING);
    });
});
