/**
 * The plugin's tests. The conformance kit runs every check the Cairn agent and control plane
 * rely on (backup, increment, restores compared byte for byte, cancel, delete, capabilities),
 * one vitest test a check. Below it, tests of this plugin's own rules.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeConformance } from '@cairn/plugin-conformance/vitest';
import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
import { describe, expect, it } from 'vitest';
import plugin from './index.js';

describeConformance('cairn-plugin-example conformance', {
  // Loaded from the built package (run `npm run build` first), as the agent loads it: this also
  // checks the package.json "cairn" field against the manifest.
  packageName: fileURLToPath(new URL('..', import.meta.url)),
  // `scratch` is an empty directory of the run: the store of this file-based backup system.
  connection: ({ scratch }) => ({ config: { storeDir: `${scratch}/store` } }),
  // The instance locator that names the directory of sample data the kit writes.
  locatorFor: (dir) => ({ paths: [dir] }),
});

describe('cairn-plugin-example', () => {
  it('refuses a locator that names other than one directory, with a code of its own', async () => {
    const env = new MockTaskEnvironment(plugin, { config: { storeDir: path.join(os.tmpdir(), 'example-store') } });
    const run = await env.run('backup', {
      instanceId: 'i-1',
      instanceName: 'web',
      locator: { paths: [path.join(os.tmpdir(), 'a'), path.join(os.tmpdir(), 'b')] },
      mode: 'FULL',
    });
    expect(run).toMatchObject({ ok: false, failure: { code: 'BAD_LOCATOR', retryable: false } });
  });

  it('restores into a target that keeps its own mode, over a link planted there, writing nothing through it', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'example-'));
    const [data, target, outside] = ['data', 'target', 'outside'].map((d) => path.join(root, d)) as [
      string,
      string,
      string,
    ];
    for (const d of [data, target, outside]) await mkdir(d);
    await writeFile(path.join(data, 'a.txt'), 'restored');
    await writeFile(path.join(outside, 'a.txt'), "not the tenant's");
    const env = new MockTaskEnvironment(plugin, {
      config: { storeDir: path.join(root, 'store') },
      host: { roots: [data, target], denied: [] },
    });
    const backup = await env.run('backup', {
      instanceId: 'i-1',
      instanceName: 'web',
      locator: { paths: [data] },
      mode: 'FULL',
    });
    if (!backup.ok) throw new Error(backup.failure.message);
    await chmod(target, 0o751);
    await symlink(path.join(outside, 'a.txt'), path.join(target, 'a.txt'));
    const run = await env.run('restore', {
      instanceId: 'i-1',
      locator: { paths: [data] },
      backupExternalId: backup.backup.externalId,
      target: { path: target },
    });
    expect(run.ok).toBe(true);
    expect(await readFile(path.join(target, 'a.txt'), 'utf8')).toBe('restored');
    expect(await readFile(path.join(outside, 'a.txt'), 'utf8')).toBe("not the tenant's");
    expect((await stat(target)).mode & 0o777).toBe(0o751);
    await rm(root, { recursive: true, force: true });
  });

  it('refuses a connection without a storeDir', async () => {
    const run = await new MockTaskEnvironment(plugin).run('sync', {});
    expect(run).toMatchObject({ ok: false, failure: { code: 'BAD_CONFIG' } });
  });
});
