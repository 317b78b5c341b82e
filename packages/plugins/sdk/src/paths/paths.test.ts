import { spawnSync } from 'node:child_process';
import { chown, lstat, mkdir, mkdtemp, readFile, readlink, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { confinePath, confineRequest, makeStaging, placeRestored, type HostAccess } from './index.js';

let dir: string;
let host: HostAccess;
let tenantA: string;
let tenantB: string;
let outside: string;
let state: string;

beforeEach(async () => {
  dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'host-paths-')));
  tenantA = path.join(dir, 'tenants', 'a');
  tenantB = path.join(dir, 'tenants', 'b');
  outside = path.join(dir, 'etc');
  state = path.join(tenantA, 'agent-state');
  for (const d of [tenantA, tenantB, outside, state]) await mkdir(d, { recursive: true });
  await writeFile(path.join(outside, 'shadow'), 'root:secret\n');
  host = { roots: [tenantA], denied: [state] };
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const refusal = (p: Promise<unknown>) =>
  p.then(
    () => 'allowed',
    (err: { code?: string; message?: string }) => `${err.code}: ${err.message}`,
  );

describe('confinePath', () => {
  it('allows a path below a root, existing or not, and returns it normalized', async () => {
    await expect(confinePath(`${tenantA}/www/`, host, 'p')).resolves.toBe(`${tenantA}/www`);
    await expect(confinePath(`${tenantA}/x/../y`, host, 'p')).resolves.toBe(`${tenantA}/y`);
  });

  it.each([
    ['a relative path', 'www'],
    ['a path with a NUL', '/srv/a\0b'],
    ['not a string', 7],
  ])('refuses %s', async (_, p) => {
    expect(await refusal(confinePath(p, host, 'locator.paths[0]'))).toMatch(
      /^PATH_NOT_ALLOWED: locator.paths\[0\] must be an absolute path/,
    );
  });

  it('refuses .. that leaves the root, another tenant root and a path above the root', async () => {
    expect(await refusal(confinePath(`${tenantA}/../b/data`, host, 'p'))).toMatch(/^PATH_NOT_ALLOWED: p .*outside/);
    expect(await refusal(confinePath(tenantB, host, 'p'))).toMatch(/outside the directories this agent allows/);
    expect(await refusal(confinePath(dir, host, 'p'))).toMatch(/PATH_NOT_ALLOWED/);
  });

  it('judges a path after resolving a symlinked parent', async () => {
    await symlink(outside, path.join(tenantA, 'link'));
    expect(await refusal(confinePath(`${tenantA}/link/shadow`, host, 'p'))).toMatch(
      /resolves to .*\/etc\/shadow\) is outside/,
    );
    // A dangling link is judged where it would lead, too.
    await symlink(path.join(outside, 'new'), path.join(tenantA, 'dangling'));
    expect(await refusal(confinePath(`${tenantA}/dangling/x`, host, 'p'))).toMatch(/PATH_NOT_ALLOWED/);
  });

  it("refuses the agent's state directory, a path inside it and a path that holds it", async () => {
    expect(await refusal(confinePath(state, host, 'p'))).toMatch(/agent's own state/);
    expect(await refusal(confinePath(`${state}/credential.json`, host, 'p'))).toMatch(/agent's own state/);
    expect(await refusal(confinePath(tenantA, host, 'p'))).toMatch(/agent's own state/);
  });

  it('refuses everything when the agent has no roots', async () => {
    expect(await refusal(confinePath(tenantA, { roots: [], denied: [] }, 'p'))).toMatch(/allows no host paths/);
  });
});

describe('confineRequest', () => {
  const h = () => ({ roots: [tenantA], denied: [] });
  it('checks the locator, the target locator and the target of the operations that touch the host', async () => {
    const ok = { locator: { paths: [`${tenantA}/x`] } };
    await expect(confineRequest('backup', ok, h())).resolves.toBeUndefined();
    expect(await refusal(confineRequest('backup', { locator: { paths: [outside] } }, h()))).toMatch(
      /^PATH_NOT_ALLOWED: locator.paths\[0\]/,
    );
    expect(await refusal(confineRequest('restore', { ...ok, target: { path: outside } }, h()))).toMatch(
      /^PATH_NOT_ALLOWED: target.path/,
    );
    expect(
      await refusal(confineRequest('restore-volume', { ...ok, targetLocator: { paths: [tenantB] } }, h())),
    ).toMatch(/^PATH_NOT_ALLOWED: targetLocator.paths\[0\]/);
    expect(await refusal(confineRequest('backup', { locator: { vm: 1 } }, h()))).toMatch(/^BAD_LOCATOR/);
    // Deletes and listings name no host path to judge; a connection preflight names none either.
    await expect(confineRequest('delete-backup', { locator: { paths: [outside] } }, h())).resolves.toBeUndefined();
    await expect(confineRequest('preflight', {}, h())).resolves.toBeUndefined();
  });
});

describe('placeRestored', () => {
  it('replaces a symlink planted at a restored path instead of writing through it', async () => {
    const data = path.join(tenantA, 'data');
    await mkdir(data);
    await symlink(outside, path.join(data, 'conf'));
    const staged = await makeStaging(data, host);
    expect(path.dirname(staged)).toBe(tenantA);
    expect((await lstat(staged)).mode & 0o777).toBe(0o700);
    await mkdir(path.join(staged, 'conf'));
    await writeFile(path.join(staged, 'conf', 'shadow'), 'restored\n');
    await writeFile(path.join(staged, 'top.txt'), 'top\n');

    await placeRestored(staged, data, host);

    expect(await readFile(path.join(outside, 'shadow'), 'utf8')).toBe('root:secret\n');
    expect((await lstat(path.join(data, 'conf'))).isDirectory()).toBe(true);
    expect(await readFile(path.join(data, 'conf', 'shadow'), 'utf8')).toBe('restored\n');
    expect(await readFile(path.join(data, 'top.txt'), 'utf8')).toBe('top\n');
  });

  it('replaces a planted file symlink with the file, and keeps a restored symlink as a link', async () => {
    const data = path.join(tenantA, 'data');
    await mkdir(data);
    await symlink(path.join(outside, 'shadow'), path.join(data, 'authorized_keys'));
    const staged = await makeStaging(data, host);
    await writeFile(path.join(staged, 'authorized_keys'), 'ssh-ed25519 AAA\n');
    await symlink('/etc/hostname', path.join(staged, 'hostname-link'));
    await placeRestored(staged, data, host);
    expect(await readFile(path.join(outside, 'shadow'), 'utf8')).toBe('root:secret\n');
    expect(await readFile(path.join(data, 'authorized_keys'), 'utf8')).toBe('ssh-ed25519 AAA\n');
    expect(await readlink(path.join(data, 'hostname-link'))).toBe('/etc/hostname');
  });

  it('creates a missing target, and refuses one whose parent link leads out of the root', async () => {
    const staged = await makeStaging(tenantA, host);
    await writeFile(path.join(staged, 'f'), 'x');
    await placeRestored(staged, path.join(tenantA, 'new', 'deep'), host);
    expect(await readFile(path.join(tenantA, 'new', 'deep', 'f'), 'utf8')).toBe('x');

    await symlink(outside, path.join(tenantA, 'out'));
    const again = await makeStaging(tenantA, host);
    await writeFile(path.join(again, 'shadow'), 'pwned');
    expect(await refusal(placeRestored(again, path.join(tenantA, 'out'), host))).toMatch(/PATH_NOT_ALLOWED/);
    expect(await readFile(path.join(outside, 'shadow'), 'utf8')).toBe('root:secret\n');
  });
});

describe('placeRestored and removeStaging as a user that is not root', () => {
  // Root writes into any directory, so only another user shows what a read-only directory of a
  // restore point does to a move out of staging; agents should not run as root.
  const NOBODY = 65534;
  const repo = path.resolve(import.meta.dirname, '../../../..');
  const asNobody = ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups'];
  // Root, setpriv, and a checkout that user may read (one cloned into a private 0700 directory,
  // as `mktemp -d` makes, is not: its child could not even load this package).
  const canDrop =
    process.getuid?.() === 0 &&
    spawnSync('setpriv', ['--version']).status === 0 &&
    spawnSync('setpriv', [...asNobody, 'test', '-x', repo]).status === 0;
  const script = `
    import fs from 'node:fs/promises';
    import path from 'node:path';
    const { makeStaging, placeRestored, removeStaging } = await import(process.env.SDK_HOST_PATHS);
    const root = path.join(process.env.WORK, 'root');
    await fs.mkdir(root);
    const host = { roots: [root], denied: [] };
    const to = path.join(root, 'data');
    await fs.mkdir(path.join(to, 'ro'), { recursive: true });
    const staging = await makeStaging(to, host);
    for (const d of ['ro', 'new-ro']) {
      await fs.mkdir(path.join(staging, d));
      await fs.writeFile(path.join(staging, d, 'f'), d);
      await fs.chmod(path.join(staging, d), 0o555);
    }
    await placeRestored(staging, to, host);
    await removeStaging(staging);
    const placed = {};
    for (const d of ['ro', 'new-ro'])
      placed[d] = [(await fs.stat(path.join(to, d))).mode & 0o777, await fs.readFile(path.join(to, d, 'f'), 'utf8')];
    const cut = await makeStaging(to, host);
    await fs.mkdir(path.join(cut, 'a', 'b'), { recursive: true });
    await fs.chmod(path.join(cut, 'a'), 0o555);
    await removeStaging(cut);
    console.log(JSON.stringify({ placed, left: (await fs.readdir(root)).filter((n) => n !== 'data') }));
  `;

  it.runIf(canDrop)(
    'places read-only directories of a restore point, and removes a staging directory a cut-short restore left one in',
    async () => {
      const work = await mkdtemp(path.join(os.tmpdir(), 'host-paths-nobody-'));
      await chown(work, NOBODY, NOBODY);
      const run = spawnSync('setpriv', [...asNobody, process.execPath, '--import', 'tsx'], {
        cwd: repo,
        input: script,
        encoding: 'utf8',
        env: { ...process.env, WORK: work, SDK_HOST_PATHS: path.join(import.meta.dirname, 'index.ts') },
      });
      await rm(work, { recursive: true, force: true });
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout)).toEqual({
        placed: { ro: [0o555, 'ro'], 'new-ro': [0o555, 'new-ro'] },
        left: [],
      });
    },
  );
});
