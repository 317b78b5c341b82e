// The fake API server itself: what it answers over HTTPS, checked with raw requests and with the
// machine's kubectl where there is one.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { resourceType, startFakeKube, type FakeKube } from './index.js';

let dir: string;
let kube: FakeKube;
let ca: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-kube-fake-'));
  kube = await startFakeKube({ dir, simulate: false });
  const config = parse(await readFile(kube.kubeconfigPath, 'utf8')) as {
    clusters: { cluster: { 'certificate-authority-data': string } }[];
  };
  ca = Buffer.from(config.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString();
  kube.put('namespaces', { metadata: { name: 'shop' } });
});

afterEach(async () => {
  await kube.close();
  await rm(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: Record<string, unknown> & { metadata?: Record<string, unknown>; status?: unknown };
}

function call(method: string, path: string, body?: unknown, token = kube.token): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${kube.url}${path}`,
      { method, ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Answer['body'],
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const VS_PATH = '/apis/snapshot.storage.k8s.io/v1/namespaces/shop/volumesnapshots';
const vs = (name: string, spec: Record<string, unknown> = { source: { persistentVolumeClaimName: 'data' } }) => ({
  apiVersion: 'snapshot.storage.k8s.io/v1',
  kind: 'VolumeSnapshot',
  metadata: { name },
  spec,
});

describe('the fake Kubernetes API server', () => {
  it('answers discovery for the core group and the two API groups', async () => {
    expect((await call('GET', '/api')).body).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    const groups = (await call('GET', '/apis')).body['groups'] as { name: string }[];
    expect(groups.map((g) => g.name)).toEqual(['storage.k8s.io', 'snapshot.storage.k8s.io']);
    const snap = (await call('GET', '/apis/snapshot.storage.k8s.io/v1')).body['resources'] as { name: string }[];
    expect(snap.map((r) => r.name)).toEqual([
      'volumesnapshotclasses',
      'volumesnapshots',
      'volumesnapshots/status',
      'volumesnapshotcontents',
      'volumesnapshotcontents/status',
    ]);
  });

  it('refuses a request without the kubeconfig token with a Status body', async () => {
    expect(await call('GET', '/api/v1/namespaces', undefined, 'wrong')).toEqual({
      status: 401,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'Unauthorized',
        reason: 'Unauthorized',
        code: 401,
      },
    });
  });

  it('validates snapshot bodies against the published v1 CRD schemas and stores nothing invalid', async () => {
    const cases: [unknown, RegExp][] = [
      [vs('a', {}), /spec\.source: Required value/],
      [
        vs('b', { source: { persistentVolumeClaimName: 'data' }, volumeSnapshotClass: 'x' }),
        /spec\.volumeSnapshotClass: unknown field/,
      ],
      [
        vs('c', { source: { persistentVolumeClaimName: 'data', volumeSnapshotContentName: 'x' } }),
        /exactly one of volumeSnapshotContentName and persistentVolumeClaimName/,
      ],
      [
        vs('d', { source: { persistentVolumeClaimName: 7 } }),
        /spec\.source\.persistentVolumeClaimName: must be a string/,
      ],
    ];
    for (const [body, want] of cases) {
      const answer = await call('POST', VS_PATH, body);
      expect(answer.status).toBe(422);
      expect(answer.body).toMatchObject({ kind: 'Status', reason: 'Invalid' });
      expect(String(answer.body['message'])).toMatch(want);
    }
    const badClass = await call('POST', '/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses', {
      metadata: { name: 'k' },
      driver: 'd',
      deletionPolicy: 'Keep',
    });
    expect(String(badClass.body['message'])).toMatch(
      /deletionPolicy: Unsupported value "Keep": supported values: Delete, Retain/,
    );
    const noDriver = await call('POST', '/apis/snapshot.storage.k8s.io/v1/volumesnapshotclasses', {
      metadata: { name: 'k' },
      deletionPolicy: 'Retain',
    });
    expect(String(noDriver.body['message'])).toMatch(/driver: Required value/);
    expect(kube.store.list(resourceType('volumesnapshots'))).toEqual([]);
    expect(kube.store.list(resourceType('volumesnapshotclasses'))).toEqual([]);
  });

  it('answers AlreadyExists, NotFound, and Conflict on a stale resourceVersion', async () => {
    const made = await call('POST', VS_PATH, vs('one'));
    expect(made.status).toBe(201);
    expect(await call('POST', VS_PATH, vs('one'))).toMatchObject({ status: 409, body: { reason: 'AlreadyExists' } });
    expect(await call('GET', `${VS_PATH}/two`)).toMatchObject({
      status: 404,
      body: { reason: 'NotFound', message: 'volumesnapshots.snapshot.storage.k8s.io "two" not found' },
    });
    const current = (await call('GET', `${VS_PATH}/one`)).body;
    const labelled = { ...current, metadata: { ...current.metadata, labels: { a: 'b' } } };
    expect((await call('PUT', `${VS_PATH}/one`, labelled)).status).toBe(200);
    expect(await call('PUT', `${VS_PATH}/one`, labelled)).toMatchObject({ status: 409, body: { reason: 'Conflict' } });
    expect(
      await call('POST', '/api/v1/namespaces/nowhere/persistentvolumeclaims', { metadata: { name: 'x' } }),
    ).toMatchObject({ status: 404 });
  });

  it('keeps status to the status subresource and the rest to the object', async () => {
    await call('POST', VS_PATH, vs('s'));
    const current = (await call('GET', `${VS_PATH}/s`)).body;
    const sneaky = await call('PUT', `${VS_PATH}/s`, { ...current, status: { readyToUse: true } });
    expect(sneaky.body['status']).toEqual({});
    const withStatus = await call('PUT', `${VS_PATH}/s/status`, {
      ...sneaky.body,
      spec: { source: { persistentVolumeClaimName: 'other' } },
      status: { readyToUse: false },
    });
    expect(withStatus.body).toMatchObject({
      spec: { source: { persistentVolumeClaimName: 'data' } },
      status: { readyToUse: false },
    });
  });

  it('holds an object with a finalizer at deletionTimestamp until the finalizer goes', async () => {
    await call('POST', VS_PATH, { ...vs('f'), metadata: { name: 'f', finalizers: ['test/hold'] } });
    const marked = await call('DELETE', `${VS_PATH}/f`);
    expect(marked.body.metadata?.['deletionTimestamp']).toEqual(expect.any(String));
    const held = (await call('GET', `${VS_PATH}/f`)).body;
    expect(held.metadata?.['deletionTimestamp']).toEqual(marked.body.metadata?.['deletionTimestamp']);
    await call('PUT', `${VS_PATH}/f`, { ...held, metadata: { ...held.metadata, finalizers: [] } });
    expect((await call('GET', `${VS_PATH}/f`)).status).toBe(404);
  });

  it('streams watch events from a resourceVersion, and answers 410 Gone for one compacted away', async () => {
    const from = (await call('GET', VS_PATH)).body.metadata?.['resourceVersion'] as string;
    await call('POST', VS_PATH, vs('w1'));
    const lines: { type: string; object: { metadata: { name: string } } }[] = [];
    const watching = new Promise<void>((resolve, reject) => {
      const req = request(
        `${kube.url}${VS_PATH}?watch=true&resourceVersion=${from}`,
        { ca, headers: { authorization: `Bearer ${kube.token}` } },
        (res) => {
          let buffered = '';
          res.on('data', (chunk: Buffer) => {
            buffered += chunk.toString();
            const parts = buffered.split('\n');
            buffered = parts.pop()!;
            for (const p of parts) lines.push(JSON.parse(p) as (typeof lines)[number]);
            if (lines.length >= 2) {
              req.destroy();
              resolve();
            }
          });
        },
      );
      req.on('error', (e) => (lines.length >= 2 ? resolve() : reject(e)));
      req.end();
    });
    const second = new Promise((r) => setTimeout(r, 50)).then(() => call('POST', VS_PATH, vs('w2')));
    await watching;
    await second;
    expect(lines.slice(0, 2).map((l) => [l.type, l.object.metadata.name])).toEqual([
      ['ADDED', 'w1'],
      ['ADDED', 'w2'],
    ]);
    kube.store.compact();
    expect(await call('GET', `${VS_PATH}?watch=true&resourceVersion=${from}`)).toMatchObject({
      status: 410,
      body: { reason: 'Expired' },
    });
  });

  it('provisions a claim, snapshots it, provisions a new claim from the snapshot with its data, and cascades a namespace delete', async () => {
    kube.controller.start();
    kube.put('storageclasses', { metadata: { name: 'hp' }, provisioner: 'hostpath.csi.k8s.io' });
    kube.put('volumesnapshotclasses', {
      metadata: { name: 'snap' },
      driver: 'hostpath.csi.k8s.io',
      deletionPolicy: 'Delete',
    });
    const claim = (name: string, extra: Record<string, unknown> = {}) =>
      call('POST', '/api/v1/namespaces/shop/persistentvolumeclaims', {
        metadata: { name },
        spec: {
          storageClassName: 'hp',
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: '1Gi' } },
          ...extra,
        },
      });
    await claim('data');
    const bound = async (name: string) => {
      for (let i = 0; i < 500; i++) {
        if ((await call('GET', `/api/v1/namespaces/shop/persistentvolumeclaims/${name}`)).body['status']) {
          const s = (await call('GET', `/api/v1/namespaces/shop/persistentvolumeclaims/${name}`)).body['status'] as {
            phase?: string;
          };
          if (s.phase === 'Bound') return;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`${name} never bound`);
    };
    await bound('data');
    await writeFile(join(kube.controller.volumePath('shop', 'data'), 'f.txt'), 'payload');
    await call('POST', VS_PATH, {
      ...vs('s1'),
      spec: { source: { persistentVolumeClaimName: 'data' }, volumeSnapshotClassName: 'snap' },
    });
    await claim('copy', { dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 's1' } });
    await bound('copy');
    expect(await readFile(join(kube.controller.volumePath('shop', 'copy'), 'f.txt'), 'utf8')).toBe('payload');
    // deletionPolicy Delete: deleting the namespace deletes the snapshot, which takes its content
    // and the storage snapshot with it (why the CSI plugin snapshots through a Retain clone).
    expect(kube.controller.storageSnapshots()).toHaveLength(1);
    expect(kube.store.list(resourceType('volumesnapshotcontents'))).toHaveLength(1);
    await call('DELETE', '/api/v1/namespaces/shop');
    for (let i = 0; i < 500 && (await call('GET', '/api/v1/namespaces/shop')).status !== 404; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect((await call('GET', '/api/v1/namespaces/shop')).status).toBe(404);
    expect(kube.controller.storageSnapshots()).toEqual([]);
    expect(kube.store.list(resourceType('volumesnapshotcontents'))).toEqual([]);
  });

  const kubectl = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));
  it.runIf(kubectl)('answers kubectl get and create (the CRD schemas judge what kubectl sends)', async () => {
    const run = (...args: string[]) => promisify(execFile)(kubectl!, ['--kubeconfig', kube.kubeconfigPath, ...args]);
    expect((await run('get', 'ns', '-o', 'name')).stdout).toBe('namespace/shop\n');
    const file = join(dir, 'vs.yaml');
    await writeFile(file, JSON.stringify(vs('by-kubectl')));
    // --validate=false: the fake publishes no OpenAPI document; the server-side schema still applies.
    await run('create', '--validate=false', '-n', 'shop', '-f', file);
    expect((await run('get', 'volumesnapshots', '-n', 'shop', '-o', 'jsonpath={.items[*].metadata.name}')).stdout).toBe(
      'by-kubectl',
    );
    await writeFile(file, JSON.stringify(vs('bad', { source: {} })));
    await expect(run('create', '--validate=false', '-n', 'shop', '-f', file)).rejects.toMatchObject({
      stderr: expect.stringMatching(
        /exactly one of volumeSnapshotContentName and persistentVolumeClaimName must be set/,
      ) as unknown,
    });
  });
});
