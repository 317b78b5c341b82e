/**
 * The plugin's tests. The conformance kit runs every check the Cairn agent and control plane
 * rely on (backup, increment, restores compared byte for byte, cancel, delete, capabilities),
 * one vitest test a check. Below it, tests of this plugin's own rules.
 */
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

  it('refuses a connection without a storeDir', async () => {
    const run = await new MockTaskEnvironment(plugin).run('sync', {});
    expect(run).toMatchObject({ ok: false, failure: { code: 'BAD_CONFIG' } });
  });
});
