/**
 * The kit on real plugins: the dummy and the template (a file-copy provider) pass; broken
 * variants of the template fail, each with a message that names the check and what went wrong.
 */
import {
  chmod,
  copyFile,
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProviderPlugin, TaskContext } from '@cairn/plugin-sdk';
import { loadPlugin } from '@cairn/plugin-sdk/host';
import { confinePath } from '@cairn/plugin-sdk/paths';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepsAccessTimes } from './host.js';
import { CHECK_NAMES, runConformance, type ConformanceOptions, type ConformanceReport } from './run.js';
import { sample } from './sample.js';
import { withProvider } from './wrap.js';

const templateDir = path.resolve(import.meta.dirname, '../../template');

let workDir: string;
let reference: ProviderPlugin;
beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'conformance-kit-'));
  reference = (await loadPlugin(templateDir)).plugin;
});
afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

const fileCopy = (plugin: ProviderPlugin | string, extra: Partial<ConformanceOptions> = {}): ConformanceOptions => ({
  ...(typeof plugin === 'string' ? { packageName: plugin } : { plugin }),
  connection: ({ scratch }) => ({ config: { storeDir: path.join(scratch, 'store') } }),
  locatorFor: (dir) => ({ paths: [dir] }),
  workDir,
  ...extra,
});

const status = (report: ConformanceReport) => Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
const check = (report: ConformanceReport, name: string) => report.checks.find((c) => c.name === name)!;
const failed = (report: ConformanceReport) => report.checks.filter((c) => c.status === 'fail').map((c) => c.name);

const DATA_CHECKS = ['backup', 'second backup', 'restore first point', 'restore second point', 'cancel', 'delete'];
const IDENTITY_CHECKS = ['identity reported', 'repository changed', 'repository absent'];
const HOST_CHECKS = [
  'host paths declared',
  'locator outside roots',
  'restore target outside roots',
  'links planted before restore',
];

describe('the conformance kit on plugins that conform', () => {
  it('passes the dummy, loaded by package name as the agent loads it', async () => {
    const seen: string[] = [];
    const report = await runConformance({
      packageName: '@cairn/plugin-dummy',
      // The kit's own package, where the dummy is installed (a dev dependency).
      cwd: import.meta.dirname,
      connection: ({ scratch }) => ({ config: { storeDir: `${scratch}/store`, durationMs: 200, steps: 4 } }),
      locatorFor: (dir) => ({ paths: [dir] }),
      workDir,
      onCheck: (c) => seen.push(c.name),
    });
    expect(failed(report)).toEqual([]);
    expect(report).toMatchObject({ ok: true, plugin: { name: '@cairn/plugin-dummy' } });
    expect(seen).toEqual(CHECK_NAMES);
    // The dummy declares neither restore-to-path nor incremental: those checks say why they did not run.
    expect(check(report, 'restore first point')).toMatchObject({
      status: 'skip',
      reason: expect.stringContaining('restore-to-path'),
    });
    expect(check(report, 'second backup').reason).toMatch(/^FULL .* \(the plugin does not declare incremental\)$/);
    expect(check(report, 'capability restore-volume').status).toBe('pass');
    expect(check(report, 'capability incremental')).toMatchObject({
      status: 'skip',
      reason: 'not declared in capabilities',
    });
    expect(check(report, 'cancel').status).toBe('pass');
    expect(check(report, 'delete').status).toBe('pass');
    // Its locator names the sample directory, but it reads nothing there: nothing says it must confine paths.
    expect(check(report, 'host paths declared')).toMatchObject({
      status: 'skip',
      reason: expect.stringMatching(
        /^does not declare host-paths; its locator names the sample directory, but the kit saw it restore nothing onto the host/,
      ),
    });
    for (const name of HOST_CHECKS.slice(1))
      expect(check(report, name)).toMatchObject({ status: 'skip', reason: 'the plugin does not declare host-paths' });
    for (const name of IDENTITY_CHECKS)
      expect(check(report, name)).toMatchObject({
        status: 'skip',
        reason: 'the plugin does not declare repository-identity',
      });
    // Its undeclared traits (sp-locators among them), the host and identity checks.
    expect(report.counts).toEqual({ pass: CHECK_NAMES.length - 15, fail: 0, skip: 15 });
  });

  it('passes the template (the reference file-copy plugin) on every data check, and leaves nothing behind', async () => {
    const report = await runConformance(fileCopy(templateDir));
    expect(failed(report)).toEqual([]);
    for (const name of [...DATA_CHECKS, ...HOST_CHECKS]) expect(check(report, name).status, name).toBe('pass');
    expect(check(report, 'locator outside roots').reason).toMatch(
      /nothing there was read \(access times kept\), and no point was made$/,
    );
    expect(check(report, 'links planted before restore').reason).toMatch(
      / in place and to a path over a directory and a file swapped for links/,
    );
    expect(check(report, 'second backup').reason).toMatch(/^INCREMENT .* on /);
    expect(check(report, 'delete').reason).toMatch(/still restores the changed data$/);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('keeps the work directory when asked', async () => {
    const report = await runConformance(fileCopy(reference, { keepWorkDir: true }));
    const kept = /work directory (\S+)$/.exec(check(report, 'manifest').reason)?.[1];
    expect(kept).toBeDefined();
    expect((await readdir(kept!)).sort()).toEqual(['outside', 'scratch', 'tenant']);
    expect(await readdir(path.join(kept!, 'tenant'))).toEqual(expect.arrayContaining(['data', 'agent-state']));
    await rm(kept!, { recursive: true, force: true });
  });
});

/** The task's context with a check against the wrong directories: one level above the agent's roots, no state denied. */
const tooWide = (ctx: TaskContext): TaskContext => ({
  ...ctx,
  host: { roots: ctx.host.roots.map((r) => path.dirname(r)), denied: [] },
});

/** Copies the tree at `from` onto `to` the naive way: mkdir -p and copyFile follow any link `to` holds. */
async function copyFollowingLinks(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const e of await readdir(from, { withFileTypes: true })) {
    const [src, dest] = [path.join(from, e.name), path.join(to, e.name)];
    if (e.isSymbolicLink()) {
      await rm(dest, { force: true });
      await symlink(await readlink(src), dest);
      continue;
    }
    if (e.isDirectory()) await copyFollowingLinks(src, dest);
    else await copyFile(src, dest);
    await chmod(dest, (await lstat(src)).mode & 0o7777);
  }
}

describe('the conformance kit on plugins that touch the host', () => {
  it("fails a plugin whose own check lets a locator or a restore target outside the agent's roots through", async () => {
    const checksTooLittle = withProvider(reference, (p) => ({
      backup: (req, ctx) => p.backup!(req, tooWide(ctx)),
      restore: (req, ctx) => p.restore!(req, tooWide(ctx)),
    }));
    const report = await runConformance(fileCopy(checksTooLittle));
    expect(failed(report)).toEqual(['locator outside roots', 'restore target outside roots']);
    // As the agent runs it, the agent's check refuses; called without it, the plugin's own check must.
    expect(check(report, 'locator outside roots').reason).toMatch(
      /^called without the agent's check, a backup of a directory outside the roots \(\S+\/outside\/secret\) succeeded \(\S+\): check every host path yourself with confinePath/,
    );
    expect(check(report, 'restore target outside roots').reason).toMatch(
      /^called without the agent's check, the restore in place, with a locator outside the roots \(\S+\/outside\/secret\) changed what lies outside the roots: secret/,
    );
    // The point its backup made anyway is deleted at the end with the others.
    expect(await readdir(workDir)).toEqual([]);
  });

  it('fails a plugin that reads what its locator names before it refuses it', async (ctx) => {
    if (!(await keepsAccessTimes(workDir)))
      ctx.skip('this file system keeps no access times: the kit cannot see reads');
    const readsFirst = withProvider(reference, (p) => ({
      backup: async (req, ctx) => {
        const dir = (req.locator as { paths: string[] }).paths[0]!;
        for (const name of await readdir(dir)) await readFile(path.join(dir, name)).catch(() => undefined);
        return p.backup!(req, ctx);
      },
    }));
    const report = await runConformance(fileCopy(readsFirst));
    expect(failed(report)).toEqual(['locator outside roots']);
    expect(check(report, 'locator outside roots').reason).toMatch(
      /^called without the agent's check, the refused backup of a directory outside the roots still read \S+\/outside\/secret, \S+\/outside\/secret\/canary\.txt \(access time moved\)/,
    );
  });

  it('fails a plugin whose restore writes through links planted since the backup, naming what changed outside', async () => {
    const followsLinks = withProvider(reference, (p) => ({
      // The template's restore into a fresh directory, then copied into place through any link there.
      restore: async (req, ctx) => {
        const named =
          req.target === undefined
            ? (req.locator as { paths: string[] }).paths[0]
            : (req.target as { path: string }).path;
        const dest = await confinePath(named, ctx.host, 'destination');
        const fresh = await mkdtemp(path.join(ctx.host.roots[0]!, 'naive-'));
        try {
          const result = await p.restore!({ ...req, target: { path: fresh } }, ctx);
          await copyFollowingLinks(fresh, dest);
          return result;
        } finally {
          await rm(fresh, { recursive: true, force: true });
        }
      },
    }));
    const report = await runConformance(fileCopy(followsLinks));
    expect(failed(report)).toEqual(['links planted before restore']);
    expect(check(report, 'links planted before restore').reason).toMatch(
      /^the restore in place wrote through links planted since the backup \(nested and hello\.txt of \S+ swapped for links out of the roots\), changing .*planted-dir\/deeper\/leaf\.txt: was file sha256 \w+, .*, now file sha256/,
    );
  });

  it('fails a plugin that reads and restores the host paths its locator names without declaring host-paths', async () => {
    const undeclared: ProviderPlugin = {
      manifest: {
        ...reference.manifest,
        capabilities: reference.manifest.capabilities.filter((c) => c !== 'host-paths'),
      },
      createProvider: (c) => reference.createProvider(c),
    };
    const report = await runConformance(fileCopy(undeclared));
    expect(failed(report)).toEqual(['host paths declared']);
    expect(check(report, 'host paths declared').reason).toMatch(
      /^its locator names a directory on the agent's host, and its backup read the files there and its restores wrote them back into directories of the host, but it does not declare host-paths/,
    );
    for (const name of HOST_CHECKS.slice(1)) expect(check(report, name).status, name).toBe('skip');
  });
});

describe('the conformance kit on broken plugins', () => {
  it('fails a restore that flips a byte, naming the check, the file and the offset', async () => {
    const flipsAByte = withProvider(reference, (p) => ({
      restore: async (req, ctx) => {
        const result = await p.restore!(req, ctx);
        const handle = await open(path.join((req.target as { path: string }).path, 'random.bin'), 'r+');
        const byte = Buffer.alloc(1);
        await handle.read(byte, 0, 1, 1000);
        byte[0] = byte[0]! ^ 0x01;
        await handle.write(byte, 0, 1, 1000);
        await handle.close();
        return result;
      },
    }));
    const report = await runConformance(fileCopy(flipsAByte));
    expect(report.ok).toBe(false);
    // The links check restores too (in place, where this variant finds no target.path, and to a path).
    expect(failed(report)).toEqual([
      'restore first point',
      'restore second point',
      'delete',
      'links planted before restore',
    ]);
    const random = sample(1).find((e) => e.path === 'random.bin');
    const want = random?.kind === 'file' ? random.blocks[0]!.data[1000]! : -1;
    const hex = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;
    expect(check(report, 'restore first point').reason).toMatch(
      new RegExp(
        `^the restore of the first point \\(\\S+\\) differs from the first data: random\\.bin: byte 1000 differs \\(restored ${hex(want ^ 0x01)}, expected ${hex(want)}\\)$`,
      ),
    );
    expect(check(report, 'restore second point').reason).toContain(
      'differs from the changed data: random.bin: byte 1000 differs',
    );
  });

  it('fails progress that goes backwards, naming both values', async () => {
    const backwards = withProvider(reference, (p) => ({
      backup: (req, ctx) => {
        ctx.progress({ percent: 60 });
        ctx.progress({ percent: 40 });
        return p.backup!(req, ctx);
      },
    }));
    const report = await runConformance(fileCopy(backwards));
    expect(check(report, 'backup')).toMatchObject({
      status: 'fail',
      reason: 'the backup: progress went backwards: 40 % after 60 %',
    });
    expect(check(report, 'second backup').reason).toBe('the second backup: progress went backwards: 40 % after 60 %');
  });

  it('fails a backup that ignores cancel, saying how long it was given', async () => {
    const ignoresCancel = withProvider(reference, (p) => ({
      backup: async (req, ctx) => {
        ctx.progress({ percent: 1, message: 'starting' });
        await sleep(2_000); // without ctx.signal: a cancel goes unnoticed
        ctx.signal.throwIfAborted();
        return p.backup!(req, ctx);
      },
    }));
    const report = await runConformance(fileCopy(ignoresCancel, { cancelGraceMs: 300 }));
    expect(failed(report)).toEqual(['cancel']);
    expect(check(report, 'cancel').reason).toBe('did not stop within 300 ms after cancel');
  });

  it('fails a backup that finishes anyway after cancel, and the point it leaves', async () => {
    const finishesAnyway = withProvider(reference, (p) => ({
      backup: (req, ctx) => p.backup!(req, { ...ctx, signal: new AbortController().signal }),
    }));
    const report = await runConformance(fileCopy(finishesAnyway));
    expect(failed(report)).toEqual(['cancel']);
    expect(check(report, 'cancel').reason).toMatch(/^finished the backup \(\S+\) instead of stopping after cancel$/);
    // The point it made anyway is deleted with the others at the end.
    expect(await readdir(workDir)).toEqual([]);
  });

  it('fails a plugin that declares incremental but always takes full backups', async () => {
    const alwaysFull = withProvider(reference, (p) => ({
      backup: (req, ctx) => p.backup!({ ...req, mode: 'FULL', parentExternalId: undefined }, ctx),
    }));
    const report = await runConformance(fileCopy(alwaysFull));
    expect(check(report, 'second backup').reason).toMatch(
      /^the second backup: declares incremental, but answered an INCREMENT on \S+ with FULL$/,
    );
  });

  it('fails a declared operation without its method, and a trait without the operations it needs', async () => {
    const overpromises: ProviderPlugin = {
      manifest: {
        ...reference.manifest,
        capabilities: [...reference.manifest.capabilities, 'restore-volume', 'restore-requires-stopped'],
      },
      createProvider: (c) => reference.createProvider(c),
    };
    const report = await runConformance(fileCopy(overpromises));
    expect(check(report, 'capability restore-volume')).toMatchObject({
      status: 'fail',
      reason:
        'declares restore-volume but the provider has no restoreVolume() (its tasks would fail UNSUPPORTED_OPERATION)',
    });
    expect(check(report, 'capability restore-requires-stopped')).toMatchObject({
      status: 'fail',
      reason: 'declares restore-requires-stopped but not power-state',
    });
    expect(check(report, 'capability power-state').status).toBe('skip');
  });

  it('fails a plugin that declares repository-identity but neither reports nor checks it, and makes a missing store', async () => {
    const unchecked: ProviderPlugin = {
      manifest: { ...reference.manifest, capabilities: [...reference.manifest.capabilities, 'repository-identity'] },
      createProvider: (c) => reference.createProvider(c),
    };
    const report = await runConformance(
      fileCopy(unchecked, {
        absentConnection: ({ scratch }) => ({ config: { storeDir: path.join(scratch, 'none') } }),
      }),
    );
    // A repository is made only by a preflight asked to initialise: the trait needs preflight.
    expect(check(report, 'capability repository-identity')).toMatchObject({
      status: 'fail',
      reason: 'declares repository-identity but not preflight',
    });
    expect(check(report, 'identity reported')).toMatchObject({
      status: 'fail',
      reason: expect.stringMatching(
        /^sync through a connection with no identity emitted no repository\.identity event/,
      ),
    });
    expect(check(report, 'repository changed')).toMatchObject({
      status: 'fail',
      reason: expect.stringMatching(/^a backup through a connection that records identity \S+ succeeded/),
    });
    expect(check(report, 'repository absent')).toMatchObject({
      status: 'fail',
      reason: expect.stringMatching(/^a backup to a repository that does not exist succeeded/),
    });
    // Without absentConnection, that check says what it needs.
    const without = await runConformance(fileCopy(unchecked));
    expect(check(without, 'repository absent')).toMatchObject({
      status: 'skip',
      reason: expect.stringContaining('absentConnection'),
    });
  });

  it('fails the manifest of a plugin the agent would refuse, and skips the rest', async () => {
    const refused = { manifest: { ...reference.manifest, apiVersion: 99 }, createProvider: reference.createProvider };
    const report = await runConformance(fileCopy(refused));
    expect(check(report, 'manifest')).toMatchObject({
      status: 'fail',
      reason: 'plugin (given as an object): SDK API version 99 is not supported by this agent (supports 1)',
    });
    expect(status(report)).toEqual(Object.fromEntries(CHECK_NAMES.map((n) => [n, n === 'manifest' ? 'fail' : 'skip'])));
    expect(report.plugin).toBeUndefined();
  });

  it('refuses options without a plugin, or with two', async () => {
    await expect(runConformance({ locatorFor: () => ({}) })).rejects.toThrow('either `plugin` or `packageName`');
    await expect(runConformance({ plugin: reference, packageName: 'x', locatorFor: () => ({}) })).rejects.toThrow(
      'not both or neither',
    );
  });
});
