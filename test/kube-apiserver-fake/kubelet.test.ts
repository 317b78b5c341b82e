// The fake kubelet: the narrow busybox subset it runs, and a pod run against a claim's directory
// whose output is served as the pods/log subresource.
import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { mountResolver, resourceType, runContainer, startFakeKube, until, type FakeKube } from './index.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-kubelet-'));
  await mkdir(join(dir, 'vol'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SUM_OF_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

describe('the fake kubelet', () => {
  const resolve = () => mountResolver([{ mountPath: '/data/', dir: join(dir, 'vol') }]);

  it('writes an env value with printf and hashes it with sha256sum as busybox prints it', async () => {
    const run = runContainer(
      ['sh', '-c', 'printf %s "$TEXT" > /data/f.txt && sha256sum /data/f.txt'],
      { TEXT: 'abc' },
      resolve(),
    );
    expect(run).toEqual({ exitCode: 0, log: `${SUM_OF_ABC}  /data/f.txt\n` });
    expect(await readFile(join(dir, 'vol', 'f.txt'), 'utf8')).toBe('abc');
  });

  const refused: { title: string; command: string[]; exitCode: number; log: RegExp }[] = [
    {
      title: 'a command outside the subset',
      command: ['sh', '-c', 'rm -rf /data'],
      exitCode: 127,
      log: /sh: rm -rf \/data: not found/,
    },
    {
      title: 'a program that is not sh or sha256sum',
      command: ['cat', '/data/f.txt'],
      exitCode: 127,
      log: /not found/,
    },
    {
      title: 'a missing file',
      command: ['sha256sum', '/data/none'],
      exitCode: 1,
      log: /sha256sum: \/data\/none: No such file/,
    },
    {
      title: 'a path outside every mount',
      command: ['sh', '-c', 'printf %s "$TEXT" > /etc/passwd'],
      exitCode: 1,
      log: /can't create \/etc\/passwd/,
    },
    {
      title: 'a path that climbs out of the mount',
      command: ['sha256sum', '/data/../vol/f.txt'],
      exitCode: 1,
      log: /No such file/,
    },
  ];
  for (const c of refused)
    it(`fails ${c.title} with exit code ${c.exitCode} and writes nothing`, async () => {
      await writeFile(join(dir, 'vol', 'f.txt'), 'abc');
      const run = runContainer(c.command, { TEXT: 'x' }, resolve());
      expect(run.exitCode).toBe(c.exitCode);
      expect(run.log).toMatch(c.log);
      expect(await readFile(join(dir, 'vol', 'f.txt'), 'utf8')).toBe('abc');
    });

  describe('through the API server', () => {
    let kube: FakeKube;
    beforeEach(async () => {
      await mkdir(join(dir, 'kube'));
      kube = await startFakeKube({ dir: join(dir, 'kube'), snapshotDelayMs: 10 });
      kube.put('namespaces', { metadata: { name: 'shop' } });
      kube.put('storageclasses', { metadata: { name: 'hostpath' }, provisioner: 'hostpath.csi.k8s.io' });
    });
    afterEach(() => kube.close());

    const pod = (name: string, claim: string) => ({
      metadata: { name, namespace: 'shop' },
      spec: {
        restartPolicy: 'Never',
        containers: [
          {
            name: 'c',
            image: 'busybox:1.36',
            command: ['sha256sum', '/in/f.txt'],
            volumeMounts: [{ name: 'v', mountPath: '/in' }],
          },
        ],
        volumes: [{ name: 'v', persistentVolumeClaim: { claimName: claim } }],
      },
    });

    it('keeps a pod Pending until its claim binds, then runs it; its log is pods/<name>/log', async () => {
      const PODS = resourceType('pods');
      const phase = (name: string) => kube.store.find(PODS, 'shop', name)?.status?.['phase'];
      kube.controller.faults.neverBind.add('shop/data');
      kube.put('pods', pod('first', 'data'));
      kube.putClaim('shop', 'data', 'hostpath');
      await until('pending', () => phase('first') === 'Pending');
      await new Promise((r) => setTimeout(r, 100));
      expect(phase('first')).toBe('Pending');
      expect(await getText('/api/v1/namespaces/shop/pods/first/log')).toMatchObject({ status: 400 });
      kube.controller.faults.neverBind.clear();
      // It runs as soon as the claim binds, on an empty volume: sha256sum fails, as busybox's would.
      await until('first ran', () => phase('first') === 'Failed');
      expect(await getText('/api/v1/namespaces/shop/pods/first/log')).toEqual({
        status: 200,
        text: 'sha256sum: /in/f.txt: No such file or directory\n',
      });
      await writeFile(join(kube.controller.volumePath('shop', 'data'), 'f.txt'), 'abc');
      kube.put('pods', pod('second', 'data'));
      await until('second ran', () => phase('second') === 'Succeeded');
      expect(await getText('/api/v1/namespaces/shop/pods/second/log')).toEqual({
        status: 200,
        text: `${SUM_OF_ABC}  /in/f.txt\n`,
      });
      expect(kube.store.find(PODS, 'shop', 'second')?.status).toMatchObject({
        containerStatuses: [{ state: { terminated: { exitCode: 0, reason: 'Completed' } } }],
      });
      expect(await getText('/api/v1/namespaces/shop/pods/nobody/log')).toMatchObject({ status: 404 });
    });

    it('runs a restic data mover pod: a backup of its claim into a repository, restored into another claim', async () => {
      const repo = join(dir, 'repo');
      const RESTIC = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'pw' };
      execFileSync('restic', ['init', '-q'], { env: { ...process.env, ...RESTIC } });
      kube.put('secrets', {
        metadata: { name: 'restic', namespace: 'shop' },
        data: { password: Buffer.from('pw').toString('base64') },
      });
      for (const name of ['data', 'copy']) kube.putClaim('shop', name, 'hostpath');
      const PVC = resourceType('persistentvolumeclaims');
      await until('bound', () => ['data', 'copy'].every((c) => kube.store.find(PVC, 'shop', c)?.spec?.['volumeName']));
      await mkdir(join(kube.controller.volumePath('shop', 'data'), 'sub'));
      await writeFile(join(kube.controller.volumePath('shop', 'data'), 'sub', 'f.bin'), Buffer.alloc(5000, 3));
      const mover = (name: string, claim: string, command: string[]) => ({
        metadata: { name, namespace: 'shop' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'restic',
              image: 'restic/restic:0.14.0',
              command,
              workingDir: '/data',
              env: [
                { name: 'RESTIC_REPOSITORY', value: repo },
                { name: 'RESTIC_PASSWORD', valueFrom: { secretKeyRef: { name: 'restic', key: 'password' } } },
              ],
              volumeMounts: [{ name: 'v', mountPath: '/data' }],
            },
          ],
          volumes: [{ name: 'v', persistentVolumeClaim: { claimName: claim } }],
        },
      });
      const PODS = resourceType('pods');
      const ended = (name: string) =>
        until(
          `${name} ended`,
          () => ['Succeeded', 'Failed'].includes(String(kube.store.find(PODS, 'shop', name)?.status?.['phase'])),
          30_000,
        );
      kube.put('pods', mover('up', 'data', ['restic', 'backup', '--json', '--host', 'cairn', '.']));
      await ended('up');
      const log = (await getText('/api/v1/namespaces/shop/pods/up/log')).text;
      const id = /"snapshot_id":"([0-9a-f]+)"/.exec(log)?.[1];
      expect(id, log).toMatch(/^[0-9a-f]{8,}$/);
      kube.put('pods', mover('down', 'copy', ['restic', 'restore', id!, '--target', '/data']));
      await ended('down');
      expect(kube.store.find(PODS, 'shop', 'down')?.status?.['phase']).toBe('Succeeded');
      const copied = await readFile(join(kube.controller.volumePath('shop', 'copy'), 'sub', 'f.bin'));
      expect(copied.equals(Buffer.alloc(5000, 3))).toBe(true);
      // A restic command outside backup, restore, snapshots, forget and cat is not run.
      expect(runContainer(['restic', 'prune'], RESTIC, () => undefined).exitCode).toBe(127);
    });

    it('holds a pod whose Secret is missing in Pending', async () => {
      kube.put('pods', {
        metadata: { name: 'waits', namespace: 'shop' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'c',
              image: 'busybox:1.36',
              command: ['sha256sum'],
              env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'absent', key: 'k' } } }],
            },
          ],
        },
      });
      const PODS = resourceType('pods');
      await until('pending', () => kube.store.find(PODS, 'shop', 'waits')?.status?.['phase'] === 'Pending');
      await new Promise((r) => setTimeout(r, 100));
      expect(kube.store.find(PODS, 'shop', 'waits')?.status?.['phase']).toBe('Pending');
    });

    async function getText(path: string): Promise<{ status: number; text: string }> {
      const config = parse(await readFile(kube.kubeconfigPath, 'utf8')) as {
        clusters: { cluster: { 'certificate-authority-data': string } }[];
      };
      const ca = Buffer.from(config.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString();
      return new Promise((resolveText, reject) => {
        const req = request(`${kube.url}${path}`, { ca, headers: { authorization: `Bearer ${kube.token}` } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolveText({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        });
        req.on('error', reject);
        req.end();
      });
    }
  });
});
