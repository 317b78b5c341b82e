import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderPlugin } from '@cairn/plugin-sdk';
import { MockTaskEnvironment, type MockRunRecord, type MockTaskOptions } from '@cairn/plugin-sdk/testing';
import { treeBytes, treeDigest } from '@cairn/test-harness/files';
import { canChoosePid, PidTaken, spawnWithPid } from '@cairn/test-harness/pids';
import { hasRestic } from '@cairn/test-harness/restic';
import { waitFor } from '@cairn/test-harness/wait';
import plugin from './index.js';
import { isSupported, parseVersion, redact } from './client.js';
import { PID_REUSE_SLACK_MS } from './locks.js';

const PASSWORD = 'correct-horse-battery-staple-7f3a';
const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-restic-unit-')));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
/** The one directory the tests' agent allows (its --roots); `root` beside it is outside. */
const tenant = path.join(root, 'tenant');
fs.mkdirSync(tenant);
const host = { roots: [tenant], denied: [path.join(tenant, 'agent-state')] };
/** A fresh directory inside the allowed root. */
const tmp = (prefix: string) => fs.mkdtempSync(path.join(tenant, `${prefix}-`));

/** restic run directly, as an operator would, on `repo`. */
function restic(repo: string, args: string[], password = PASSWORD): string {
  return execFileSync('restic', args, {
    encoding: 'utf8',
    env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: password },
    stdio: 'pipe',
  });
}

/** A tree of random files: a few small ones, a nested directory, one larger file. */
function makeTree(dir: string, bigBytes = 2 * 1024 * 1024): string {
  fs.mkdirSync(path.join(dir, 'sub', 'deeper'), { recursive: true });
  for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, `small-${i}.txt`), randomBytes(100 + i * 37));
  fs.writeFileSync(path.join(dir, 'sub', 'deeper', 'note.md'), 'hello restic\n');
  fs.writeFileSync(path.join(dir, 'sub', 'big.bin'), randomBytes(bigBytes));
  return dir;
}

/** Everything a run left that could leave the plugin: progress, events, logs, failure. */
const everything = (run: MockRunRecord & { failure?: unknown; value?: unknown }) => JSON.stringify(run);

/** A restic that records every argument list it is given, then runs the real one. */
function recordingRestic(dir: string): { binary: string; argv: string } {
  const binary = path.join(dir, 'restic-recording');
  const argv = path.join(dir, 'argv.log');
  fs.writeFileSync(binary, `#!/bin/sh\necho "$@" >> ${argv}\nexec /usr/bin/restic "$@"\n`, { mode: 0o755 });
  return { binary, argv };
}

/**
 * The plugin as an agent that did not check host paths would run it (its manifest without
 * `host-paths`): only the plugin's own checks stand between a request and restic.
 */
const unchecked: ProviderPlugin = {
  manifest: { ...plugin.manifest, capabilities: plugin.manifest.capabilities.filter((c) => c !== 'host-paths') },
  createProvider: (connection) => plugin.createProvider(connection),
};

/** Every entry below `dir`: kind, mode, size, mtime, and the bytes of a file or the target of a link. */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.lstatSync(p, { bigint: true });
      const what = st.isSymbolicLink()
        ? `link ${fs.readlinkSync(p)}`
        : st.isFile()
          ? `file ${createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`
          : 'dir';
      out[path.relative(dir, p)] = `${what} mode ${st.mode} size ${st.size} mtime ${st.mtimeNs}`;
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** Staging directories left in the allowed root. */
const stagingLeft = () => fs.readdirSync(tenant).filter((n) => n.startsWith('.cairn-restore-'));

function env(repo: string, { plugin: which = plugin, ...options }: MockTaskOptions & { plugin?: ProviderPlugin } = {}) {
  return new MockTaskEnvironment(which, {
    endpoint: repo,
    credentials: { password: PASSWORD },
    host,
    ...(process.env['RESTIC_TEST_LOG'] ? { onLog: (l) => console.log(l.message, JSON.stringify(l.fields)) } : {}),
    ...options,
  });
}

describe.runIf(hasRestic)('restic plugin against real restic', () => {
  const repo = path.join(root, 'repo');
  const data = makeTree(path.join(tenant, 'data'));
  const rec = recordingRestic(root);
  const config = { binary: rec.binary };
  const locator = { paths: [data] };
  let full: { externalId: string };
  let incr: { externalId: string };
  /** The repository's id, as the preflight that initialised it reported it. */
  let identity: string;
  const records: string[] = [];
  const firstBackup = () =>
    env(repo, { config }).run('backup', { instanceId: 'inst-1', instanceName: 'files', locator, mode: 'FULL' });

  beforeAll(async () => {
    // No backup creates a repository: a missing one (an unmounted disk, say) fails, and makes nothing.
    const missing = await firstBackup();
    expect(!missing.ok && missing.failure).toMatchObject({
      code: 'REPOSITORY_NOT_FOUND',
      message: expect.stringMatching(/no repository at .*preflight with initialise/),
    });
    expect(fs.existsSync(repo)).toBe(false);
    const pre = await env(repo, { config }).run('preflight', {});
    expect(pre.ok && pre.value.ok).toBe(false);
    expect(pre.ok && pre.value.checks?.find((c) => c.name === 'repository')).toMatchObject({
      ok: false,
      advice: expect.stringContaining('initialise'),
    });
    expect(fs.existsSync(repo)).toBe(false);
    const init = await env(repo, { config }).run('preflight', { initialise: true });
    records.push(everything(init));
    expect(init.ok && init.value.ok).toBe(true);
    expect(init.ok && init.value.checks?.find((c) => c.name === 'repository')).toMatchObject({
      ok: true,
      message: expect.stringMatching(/no repository at .*: initialised it \(repository [0-9a-f]{64}\)/),
    });
    const reported = init.events.filter((e) => e.type === 'repository.identity');
    expect(reported).toHaveLength(1);
    identity = reported[0]!.data!['identity'] as string;
    expect(identity).toBe((JSON.parse(restic(repo, ['cat', 'config'])) as { id: string }).id);
    const run = await firstBackup();
    records.push(everything(run));
    if (!run.ok) throw new Error(`${run.failure.code}: ${run.failure.message}`);
    full = run.backup;
  });

  it('makes a full backup into the initialised repository, tagged with the instance', async () => {
    expect(full).toMatchObject({
      mode: 'FULL',
      parentExternalId: '',
      externalId: expect.stringMatching(/^[0-9a-f]{8}$/),
    });
    const run = await env(repo, { config }).run('sync', {});
    records.push(everything(run));
    expect(run.ok && run.value).toEqual([
      expect.objectContaining({ externalId: full.externalId, locator: { instanceId: 'inst-1' }, mode: 'FULL' }),
    ]);
    const listed = JSON.parse(restic(repo, ['snapshots', '--json'])) as { short_id: string; tags: string[] }[];
    expect(listed).toEqual([
      expect.objectContaining({
        short_id: full.externalId,
        tags: ['cairn-instance=inst-1', expect.stringMatching(/^cairn-run=[0-9a-f]{16}$/)],
      }),
    ]);
  });

  it('reports the backup size and progress, at most one report a second', async () => {
    fs.writeFileSync(path.join(data, 'sub', 'added.bin'), randomBytes(512 * 1024));
    const started = Date.now();
    const run = await env(repo, { config }).run('backup', {
      instanceId: 'inst-1',
      instanceName: 'files',
      locator,
      mode: 'INCREMENT',
      parentExternalId: full.externalId,
    });
    records.push(everything(run));
    if (!run.ok) throw new Error(run.failure.message);
    incr = run.backup;
    const total = treeBytes(data);
    expect(run.backup).toMatchObject({ mode: 'INCREMENT', parentExternalId: full.externalId, sizeBytes: total });
    // Only the new file (and its trees) was added: far less than the whole tree.
    expect(run.backup.addedBytes).toBeGreaterThan(512 * 1024);
    expect(run.backup.addedBytes).toBeLessThan(total / 2);
    const last = run.progress.at(-1)!;
    expect(last).toMatchObject({ percent: 100, bytesDone: total, bytesTotal: total });
    const seconds = (Date.now() - started) / 1000;
    // At most one a second, and the last.
    expect(run.progress.length).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
    const parentOf = JSON.parse(restic(repo, ['snapshots', '--json', incr.externalId])) as { parent: string }[];
    expect(parentOf[0]!.parent.startsWith(full.externalId)).toBe(true);
  });

  it('restores a backup to another path, byte for byte', async () => {
    const target = tmp('target');
    const run = await env(repo, { config }).run('restore', {
      instanceId: 'inst-1',
      locator,
      backupExternalId: incr.externalId,
      target: { path: target },
    });
    records.push(everything(run));
    expect(run.ok).toBe(true);
    // restic restores absolute paths below the target.
    expect(treeDigest(path.join(target, data))).toEqual(treeDigest(data));
    expect(run.progress.at(-1)).toMatchObject({ percent: 100 });
    expect(run.ok && run.value.bytesRestored).toBe(treeBytes(data));
    fs.rmSync(target, { recursive: true, force: true });
  });

  it('restores in place: changed and deleted files come back', async () => {
    const before = treeDigest(data);
    fs.writeFileSync(path.join(data, 'small-3.txt'), 'scribbled over');
    fs.rmSync(path.join(data, 'sub', 'deeper', 'note.md'));
    const run = await env(repo, { config }).run('restore', {
      instanceId: 'inst-1',
      locator,
      backupExternalId: incr.externalId,
    });
    records.push(everything(run));
    expect(run.ok).toBe(true);
    expect(treeDigest(data)).toEqual(before);
  });

  it('restores one path of a backup onto another instance (restore-volume)', async () => {
    const other = tmp('other');
    const volume = path.join(data, 'sub');
    const run = await env(repo, { config }).run('restore-volume', {
      instanceId: 'inst-1',
      locator,
      backupExternalId: incr.externalId,
      volume,
      targetInstanceId: 'inst-2',
      targetLocator: { paths: [other] },
    });
    records.push(everything(run));
    expect(run.ok).toBe(true);
    expect(treeDigest(path.join(other, volume))).toEqual(treeDigest(volume));
    // Only that path: the small files beside it stay out.
    expect(fs.existsSync(path.join(other, data, 'small-0.txt'))).toBe(false);
    const missing = await env(repo, { config }).run('restore-volume', {
      instanceId: 'inst-1',
      locator,
      backupExternalId: incr.externalId,
      volume: path.join(data, 'nope'),
      targetInstanceId: 'inst-2',
      targetLocator: { paths: [other] },
    });
    expect(!missing.ok && missing.failure.code).toBe('VOLUME_NOT_FOUND');
    fs.rmSync(other, { recursive: true, force: true });
  });

  it("refuses to restore another instance's snapshot", async () => {
    const run = await env(repo, { config }).run('restore', {
      instanceId: 'inst-9',
      locator,
      backupExternalId: incr.externalId,
      target: { path: tmp('t9') },
    });
    expect(!run.ok && run.failure.code).toBe('BACKUP_NOT_FOUND');
  });

  it('sync lists only Cairn-tagged snapshots, with their chain', async () => {
    restic(repo, ['backup', '--quiet', data]); // the operator's own snapshot, untagged
    const run = await env(repo, { config }).run('sync', {});
    records.push(everything(run));
    if (!run.ok) throw new Error(run.failure.message);
    expect(run.value.map((b) => b.externalId).sort()).toEqual([full.externalId, incr.externalId].sort());
    expect(run.value.find((b) => b.externalId === incr.externalId)).toMatchObject({
      mode: 'INCREMENT',
      parentExternalId: full.externalId,
      locator: { instanceId: 'inst-1' },
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
  });

  it('an increment whose parent is gone becomes a full backup', async () => {
    const run = await env(repo, { config }).run('backup', {
      instanceId: 'inst-1',
      instanceName: 'files',
      locator,
      mode: 'INCREMENT',
      parentExternalId: 'deadbeef',
    });
    records.push(everything(run));
    expect(run.ok && run.backup).toMatchObject({ mode: 'FULL', parentExternalId: '' });
    expect(run.events.map((e) => e.message)).toContainEqual(expect.stringMatching(/parent snapshot deadbeef is gone/));
  });

  const snapshotIds = () =>
    (JSON.parse(restic(repo, ['snapshots', '--json'])) as { short_id: string }[]).map((x) => x.short_id);

  it("refuses to delete another instance's snapshot (BACKUP_NOT_FOUND) and forgets nothing", async () => {
    const before = snapshotIds();
    const run = await env(repo, { config }).run('delete-backup', {
      backupExternalId: full.externalId,
      locator,
      instanceId: 'inst-2',
    });
    records.push(everything(run));
    expect(run.ok).toBe(false);
    if (run.ok) return;
    expect(run.failure.code).toBe('BACKUP_NOT_FOUND');
    expect(run.failure.message).toMatch(/not a backup of instance inst-2/);
    expect(snapshotIds()).toEqual(before);
  });

  it('deletes a backup of its instance by forgetting it only (no prune); a snapshot already gone is success', async () => {
    const packs = () => restic(repo, ['list', 'packs']).split('\n').filter(Boolean).sort();
    const packsBefore = packs();
    const del = { backupExternalId: full.externalId, locator, instanceId: 'inst-1' };
    const run = await env(repo, { config }).run('delete-backup', del);
    records.push(everything(run));
    expect(run.ok).toBe(true);
    expect(snapshotIds()).not.toContain(full.externalId);
    expect(snapshotIds()).toContain(incr.externalId);
    // Forgotten, not pruned: the data stays until the connection's prune, and no long lock was taken.
    expect(packs()).toEqual(packsBefore);
    expect(run.events.map((e) => e.message)).toContainEqual(expect.stringMatching(/freed by the next prune/));
    const again = await env(repo, { config }).run('delete-backup', del);
    expect(again.ok).toBe(true);
    expect(again.events.map((e) => e.message)).toContainEqual(expect.stringMatching(/already gone/));
    // The increment that had it as parent still restores whole.
    restic(repo, ['check']);
  });

  it('prunes the repository as an operation of its own; the kept snapshot stays whole', async () => {
    const run = await env(repo, { config }).run('prune', {});
    records.push(everything(run));
    expect(run.ok).toBe(true);
    if (!run.ok) return;
    expect(run.value).toMatchObject({ message: expect.stringMatching(/^restic: pruned the repository/) });
    expect(snapshotIds()).toContain(incr.externalId);
    expect(restic(repo, ['list', 'locks']).trim()).toBe('');
    restic(repo, ['check', '--read-data']);
  });

  it('lists retention presets as offerings', async () => {
    const run = await env(repo, { config }).run('list-offerings');
    expect(run.ok && run.value.map((o) => o.externalId)).toEqual(
      expect.arrayContaining(['restic-daily-7', 'restic-weekly-4']),
    );
  });

  it('preflight passes every check on a good connection', async () => {
    const run = await env(repo, { config, identity }).run('preflight', { locator });
    records.push(everything(run));
    expect(run.ok && run.value).toMatchObject({ ok: true });
    expect(run.ok && run.value.checks?.map((c) => [c.name, c.ok])).toEqual([
      ['restic', true],
      ['repository', true],
      ['password', true],
      ['identity', true],
      ['free space', true],
      ['paths', true],
    ]);
    // Asked to initialise a repository that is there, it initialises nothing.
    const again = await env(repo, { config, identity }).run('preflight', { initialise: true });
    expect(again.ok && again.value.checks?.find((c) => c.name === 'repository')?.message).toMatch(/is initialised/);
    expect(again.events.filter((e) => e.type === 'repository.identity')).toEqual([]);
  });

  it('every operation that opens the repository reports its identity when the connection records none', async () => {
    const runs = [
      await env(repo, { config }).run('sync', {}),
      await env(repo, { config }).run('restore', {
        instanceId: 'inst-1',
        locator,
        backupExternalId: incr.externalId,
        target: { path: tmp('ident') },
      }),
      await env(repo, { config }).run('delete-backup', { instanceId: 'inst-1', locator, backupExternalId: 'deadbeef' }),
    ];
    for (const run of runs) {
      expect(run.ok || run.failure).toBe(true);
      expect(run.events.filter((e) => e.type === 'repository.identity').map((e) => e.data)).toEqual([{ identity }]);
    }
    const recorded = await env(repo, { config, identity }).run('sync', {});
    expect(recorded.ok && recorded.events.filter((e) => e.type === 'repository.identity')).toEqual([]);
  });

  it('fails REPOSITORY_CHANGED, naming both ids, through a connection that recorded another repository', async () => {
    const other = 'f'.repeat(64);
    const before = restic(repo, ['snapshots', '--json']);
    const e = env(repo, { config, identity: other });
    const runs = {
      backup: await e.run('backup', { instanceId: 'inst-1', instanceName: 'files', locator, mode: 'FULL' }),
      sync: await e.run('sync', {}),
      restore: await e.run('restore', {
        instanceId: 'inst-1',
        locator,
        backupExternalId: incr.externalId,
        target: { path: tmp('changed') },
      }),
      'restore-volume': await e.run('restore-volume', {
        instanceId: 'inst-1',
        locator,
        backupExternalId: incr.externalId,
        volume: data,
        targetInstanceId: 'inst-2',
        targetLocator: { paths: [tmp('changed-vol')] },
      }),
      'delete-backup': await e.run('delete-backup', {
        instanceId: 'inst-1',
        locator,
        backupExternalId: incr.externalId,
      }),
    };
    for (const [op, run] of Object.entries(runs))
      expect(!run.ok && run.failure, op).toMatchObject({
        code: 'REPOSITORY_CHANGED',
        message: expect.stringMatching(new RegExp(`repository ${identity}, not ${other}`)),
      });
    expect(restic(repo, ['snapshots', '--json'])).toBe(before);
    const pre = await e.run('preflight', { initialise: true });
    expect(pre.ok && pre.value.ok).toBe(false);
    expect(pre.ok && pre.value.checks?.find((c) => c.name === 'identity')).toMatchObject({
      ok: false,
      message: expect.stringContaining('REPOSITORY_CHANGED'),
      advice: expect.stringContaining('repositoryIdentity'),
    });
  });

  it('opens an unchanged local repository once for its id, and still finds one made anew at the same path', async () => {
    const swap = path.join(root, 'repo-swap');
    const opens = () =>
      fs
        .readFileSync(rec.argv, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('cat config')).length;
    const backup = (options: MockTaskOptions = {}) =>
      env(swap, { config, ...options }).run('backup', {
        instanceId: 'inst-1',
        instanceName: 'files',
        locator,
        mode: 'FULL',
      });
    const init = await env(swap, { config }).run('preflight', { initialise: true });
    expect(init.ok && init.value.ok).toBe(true);
    const first = await backup();
    expect(first.ok).toBe(true);
    const id = first.events.find((e) => e.type === 'repository.identity')!.data!['identity'] as string;
    // Two more backups: restic runs for the backups, never to read the id again.
    const before = opens();
    expect((await backup({ identity: id })).ok).toBe(true);
    expect((await backup({ identity: id })).ok).toBe(true);
    expect(opens()).toBe(before);

    // The repository is replaced by another at the same path: its config differs, restic is asked,
    // and the backup is refused before anything is written.
    fs.rmSync(swap, { recursive: true, force: true });
    restic(swap, ['init']);
    const other = restic(swap, ['snapshots', '--json']);
    const refused = await backup({ identity: id });
    expect(!refused.ok && refused.failure).toMatchObject({ code: 'REPOSITORY_CHANGED' });
    expect(opens()).toBe(before + 1);
    expect(restic(swap, ['snapshots', '--json'])).toBe(other);
  });

  it('never hands the password to restic on a command line, nor lets it out in any report', () => {
    const argv = fs.readFileSync(rec.argv, 'utf8');
    expect(argv).toContain('backup');
    expect(argv).not.toContain(PASSWORD);
    expect(records.length).toBeGreaterThan(8);
    for (const r of records) expect(r).not.toContain(PASSWORD);
  });
});

describe.runIf(hasRestic)('restic plugin failures', () => {
  const data = makeTree(path.join(tenant, 'fdata'), 1024);
  const locator = { paths: [data] };
  const backup = (e: MockTaskEnvironment, loc: unknown = locator) =>
    e.run('backup', { instanceId: 'inst-f', instanceName: 'f', locator: loc, mode: 'FULL' });

  it('a wrong password fails the backup with WRONG_PASSWORD, and says so without the password', async () => {
    const repo = path.join(root, 'repo-pw');
    restic(repo, ['init']);
    const wrong = 'not-the-password-1234';
    const e = new MockTaskEnvironment(plugin, { endpoint: repo, credentials: { password: wrong } });
    const run = await backup(e);
    expect(!run.ok && run.failure).toMatchObject({ code: 'WRONG_PASSWORD', message: expect.stringContaining(repo) });
    expect(everything(run)).not.toContain(wrong);
    const pre = await e.run('preflight', {});
    expect(pre.ok && pre.value.checks?.find((c) => c.name === 'password')).toMatchObject({ ok: false });
    expect(pre.ok && pre.value.ok).toBe(false);
    expect(everything(pre)).not.toContain(wrong);
  });

  it.each([
    ['no paths', {}, 'BAD_LOCATOR', /absolute paths/],
    ['an empty list', { paths: [] }, 'BAD_LOCATOR', /absolute paths/],
    ['a relative path', { paths: ['data'] }, 'PATH_NOT_ALLOWED', /must be an absolute path/],
    ['a path that is not text', { paths: [3] }, 'PATH_NOT_ALLOWED', /must be an absolute path/],
  ])('refuses a locator with %s (%s)', async (_what, loc, code, message) => {
    // The agent's own check answers first; the plugin, called without it, answers BAD_LOCATOR.
    const run = await backup(env(path.join(root, 'repo-loc')), loc);
    expect(!run.ok && run.failure).toMatchObject({ code, message: expect.stringMatching(message) });
    const own = await backup(env(path.join(root, 'repo-loc'), { plugin: unchecked }), loc);
    expect(!own.ok && own.failure).toMatchObject({ code: 'BAD_LOCATOR', message: /absolute paths/ });
  });

  it('a path missing on the host fails with PATH_NOT_FOUND', async () => {
    const run = await backup(env(path.join(root, 'repo-loc')), { paths: [path.join(tenant, 'gone')] });
    expect(!run.ok && run.failure).toMatchObject({ code: 'PATH_NOT_FOUND', message: expect.stringContaining('gone') });
  });

  it('refuses restic older than 0.14, naming the version it found', async () => {
    const old = path.join(root, 'restic-old');
    fs.writeFileSync(old, '#!/bin/sh\necho "restic 0.9.6 compiled with go1.13.8 on linux/amd64"\n', { mode: 0o755 });
    const e = env(path.join(root, 'repo-old'), { config: { binary: old } });
    const run = await backup(e);
    expect(!run.ok && run.failure).toMatchObject({ code: 'RESTIC_TOO_OLD', message: expect.stringContaining('0.9.6') });
    const pre = await e.run('preflight', {});
    expect(pre.ok && pre.value).toMatchObject({ ok: false, checks: [{ name: 'restic', ok: false }] });
  });

  it('a missing restic binary fails with RESTIC_MISSING', async () => {
    const e = env(path.join(root, 'repo-none'), { config: { binary: path.join(root, 'no-such-restic') } });
    const run = await backup(e);
    expect(!run.ok && run.failure.code).toBe('RESTIC_MISSING');
    const pre = await e.run('preflight', {});
    expect(pre.ok && pre.value.checks?.[0]).toMatchObject({ name: 'restic', ok: false, advice: expect.any(String) });
  });

  it('a connection without endpoint or password is BAD_CONFIG', async () => {
    const none = new MockTaskEnvironment(plugin, { endpoint: path.join(root, 'r'), credentials: {} });
    expect(await backup(none)).toMatchObject({ ok: false, failure: { code: 'BAD_CONFIG' } });
    const relative = new MockTaskEnvironment(plugin, { endpoint: 'repo', credentials: { password: PASSWORD } });
    expect(await backup(relative)).toMatchObject({ ok: false, failure: { code: 'BAD_CONFIG' } });
  });

  it('preflight: an unreachable repository, too little space and a missing path fail their checks', async () => {
    const remote = await env('rest:http://127.0.0.1:9/repo', { config: { lockWaitMs: 0 } }).run('preflight', {});
    expect(remote.ok && remote.value.checks?.find((c) => c.name === 'repository')).toMatchObject({ ok: false });
    const local = await env(path.join(root, 'repo-new', 'r'), {
      config: { minFreeBytes: Number.MAX_SAFE_INTEGER },
    }).run('preflight', { locator: { paths: [path.join(tenant, 'gone')] } });
    expect(local.ok && local.value.checks?.map((c) => [c.name, c.ok])).toEqual([
      ['restic', true],
      ['repository', false], // not there: only a preflight with initialise makes it
      ['password', true],
      ['free space', false],
      ['paths', false],
    ]);
  });

  it('preflight with initialise makes no new repository where the one the connection recorded is missing', async () => {
    const repo = path.join(root, 'repo-unmounted');
    const plain = await env(repo, { identity: 'a'.repeat(64) }).run('preflight', {});
    expect(plain.ok && plain.value.checks?.find((c) => c.name === 'repository')).toMatchObject({
      ok: false,
      advice: expect.stringContaining(`recorded repository ${'a'.repeat(64)}: mount the disk`),
    });
    const run = await env(repo, { identity: 'a'.repeat(64) }).run('preflight', { initialise: true });
    expect(run.ok && run.value.checks?.find((c) => c.name === 'repository')).toMatchObject({
      ok: false,
      message: expect.stringContaining(`recorded repository ${'a'.repeat(64)}`),
      advice: expect.stringContaining('repositoryIdentity'),
    });
    expect(fs.existsSync(repo)).toBe(false);
  });

  it('no operation creates a missing repository: each fails REPOSITORY_NOT_FOUND', async () => {
    const repo = path.join(root, 'repo-never');
    fs.mkdirSync(repo); // an empty mount point
    const e = env(repo);
    const runs = [
      await backup(e),
      await e.run('sync', {}),
      await e.run('restore', { instanceId: 'i', locator, backupExternalId: 'deadbeef', target: { path: tmp('nf') } }),
      await e.run('delete-backup', { instanceId: 'i', locator, backupExternalId: 'deadbeef' }),
    ];
    for (const run of runs) expect(!run.ok && run.failure.code).toBe('REPOSITORY_NOT_FOUND');
    expect(fs.readdirSync(repo)).toEqual([]);
  });

  it('a missing snapshot fails a restore with BACKUP_NOT_FOUND', async () => {
    const repo = path.join(root, 'repo-pw');
    const run = await env(repo).run('restore', { instanceId: 'i', locator, backupExternalId: 'deadbeef' });
    expect(!run.ok && run.failure.code).toBe('BACKUP_NOT_FOUND');
  });
});

describe.runIf(hasRestic)('restic plugin confined to the roots', () => {
  const repo = path.join(root, 'repo-confined');
  const data = makeTree(path.join(tenant, 'cf-data'), 1024);
  const outside = path.join(root, 'outside');
  const secret = path.join(outside, 'secret');
  const ways = [
    ['as the agent runs it', plugin],
    ["called directly, without the agent's check", unchecked],
  ] as const;
  const rec = recordingRestic(fs.mkdtempSync(path.join(root, 'rec-')));
  let point: string;

  beforeAll(async () => {
    fs.mkdirSync(path.join(secret, 'deeper'), { recursive: true });
    fs.writeFileSync(path.join(secret, 'canary.txt'), "not the tenant's\n");
    fs.writeFileSync(path.join(secret, 'deeper', 'note.md'), 'a canary where the restore would write\n');
    fs.writeFileSync(path.join(outside, 'authorized_keys'), 'ssh-ed25519 AAAA root\n');
    fs.mkdirSync(path.join(tenant, 'agent-state'), { recursive: true });
    fs.writeFileSync(path.join(tenant, 'agent-state', 'credential.json'), '{"token":"agent"}');
    fs.symlinkSync(secret, path.join(tenant, 'link-out'));
    restic(repo, ['init']);
    const run = await env(repo).run('backup', {
      instanceId: 'inst-c',
      instanceName: 'c',
      locator: { paths: [data] },
      mode: 'FULL',
    });
    if (!run.ok) throw new Error(run.failure.message);
    point = run.backup.externalId;
  });

  it.each(ways)(
    "refuses a backup outside the roots, through a link out of them, or of the agent's state, %s, before restic runs",
    async (_way, which) => {
      for (const p of [secret, path.join(tenant, 'link-out', 'deeper'), path.join(tenant, 'agent-state')]) {
        const run = await env(repo, { plugin: which, config: { binary: rec.binary } }).run('backup', {
          instanceId: 'inst-c',
          instanceName: 'c',
          locator: { paths: [data, p] },
          mode: 'FULL',
        });
        expect(!run.ok && run.failure, p).toMatchObject({
          code: 'PATH_NOT_ALLOWED',
          message: expect.stringContaining(p),
        });
      }
      expect(fs.existsSync(rec.argv) ? fs.readFileSync(rec.argv, 'utf8') : '').not.toMatch(/backup/);
    },
  );

  it.each(ways)(
    'refuses a restore to a target outside the roots or through a link out of them, %s',
    async (_way, which) => {
      const before = fingerprint(outside);
      for (const target of [secret, path.join(tenant, 'link-out')]) {
        const run = await env(repo, { plugin: which }).run('restore', {
          instanceId: 'inst-c',
          locator: { paths: [data] },
          backupExternalId: point,
          target: { path: target },
        });
        expect(!run.ok && run.failure, target).toMatchObject({ code: 'PATH_NOT_ALLOWED' });
      }
      const vol = await env(repo, { plugin: which }).run('restore-volume', {
        instanceId: 'inst-c',
        locator: { paths: [data] },
        backupExternalId: point,
        volume: path.join(data, 'sub'),
        targetInstanceId: 'inst-d',
        targetLocator: { paths: [secret] },
      });
      expect(!vol.ok && vol.failure).toMatchObject({ code: 'PATH_NOT_ALLOWED' });
      expect(fingerprint(outside)).toEqual(before);
      expect(stagingLeft()).toEqual([]);
    },
  );

  it('restores in place over links planted since the backup, writing nothing through them', async () => {
    const want = treeDigest(data);
    // The tenant swaps a directory and a file of its own for links to what it may not touch.
    fs.rmSync(path.join(data, 'sub'), { recursive: true });
    fs.symlinkSync(secret, path.join(data, 'sub'));
    fs.rmSync(path.join(data, 'small-0.txt'));
    fs.symlinkSync(path.join(outside, 'authorized_keys'), path.join(data, 'small-0.txt'));
    const before = fingerprint(outside);
    const run = await env(repo).run('restore', {
      instanceId: 'inst-c',
      locator: { paths: [data] },
      backupExternalId: point,
    });
    expect(run.ok).toBe(true);
    expect(fingerprint(outside)).toEqual(before);
    expect(fs.lstatSync(path.join(data, 'sub')).isDirectory()).toBe(true);
    expect(fs.lstatSync(path.join(data, 'small-0.txt')).isFile()).toBe(true);
    expect(treeDigest(data)).toEqual(want);
    expect(stagingLeft()).toEqual([]);
  });

  it('restores to a path over a link planted where the layout begins, writing nothing through it', async () => {
    const target = tmp('planted');
    const top = data.split(path.sep)[1]!; // restic lays the files out at their absolute path: <target>/<top>/…
    fs.symlinkSync(secret, path.join(target, top));
    fs.chmodSync(target, 0o751);
    const before = fingerprint(outside);
    const run = await env(repo).run('restore', {
      instanceId: 'inst-c',
      locator: { paths: [data] },
      backupExternalId: point,
      target: { path: target },
    });
    expect(run.ok).toBe(true);
    expect(fingerprint(outside)).toEqual(before);
    expect(treeDigest(path.join(target, data))).toEqual(treeDigest(data));
    // The target keeps its own mode: staging's private 0700 stays staging's.
    expect(fs.statSync(target).mode & 0o777).toBe(0o751);
    expect(stagingLeft()).toEqual([]);
  });

  it('refuses a snapshot of the instance that holds a path outside the roots, whatever the target', async () => {
    // Made by hand (or before the agent had --roots) and tagged with the instance.
    const id = (
      JSON.parse(
        restic(repo, ['backup', '--json', '--tag', 'cairn-instance=inst-c', secret]).trim().split('\n').at(-1)!,
      ) as { snapshot_id: string }
    ).snapshot_id.slice(0, 8);
    fs.writeFileSync(path.join(secret, 'canary.txt'), 'changed since that snapshot\n');
    const before = fingerprint(outside);
    const target = tmp('adopted');
    for (const where of [{}, { target: { path: target } }]) {
      const run = await env(repo).run('restore', {
        instanceId: 'inst-c',
        locator: { paths: [data] },
        backupExternalId: id,
        ...where,
      });
      expect(!run.ok && run.failure).toMatchObject({
        code: 'PATH_NOT_ALLOWED',
        message: expect.stringContaining(`snapshot ${id} path ${secret}`),
      });
    }
    expect(fingerprint(outside)).toEqual(before);
    expect(fs.readdirSync(target)).toEqual([]);
    expect(stagingLeft()).toEqual([]);
  });

  /**
   * A restic whose restore notes its --target in `targets`, writes a little there (only inside
   * the test's root), then fails or hangs.
   */
  function brokenRestore(how: 'fails' | 'hangs'): { binary: string; targets: string } {
    const binary = path.join(root, `restic-restore-${how}`);
    const targets = path.join(root, `restic-restore-${how}.targets`);
    fs.writeFileSync(
      binary,
      [
        '#!/bin/sh',
        'if [ "$1" = restore ]; then',
        '  prev=""; for a in "$@"; do [ "$prev" = --target ] && t="$a"; prev="$a"; done',
        `  echo "$t" >> '${targets}'`,
        `  case "$t" in '${tenant}'/*) mkdir -p "$t/partial" && echo half > "$t/partial/file" ;; esac`,
        how === 'hangs' ? '  exec sleep 30' : '  echo "Fatal: the disk caught fire" >&2; exit 1',
        'fi',
        'exec restic "$@"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    return { binary, targets };
  }

  it('a restore that fails or is cancelled places nothing and leaves no staging directory', async () => {
    const want = fingerprint(data);
    const fails = brokenRestore('fails');
    const failed = await env(repo, { config: { binary: fails.binary } }).run('restore', {
      instanceId: 'inst-c',
      locator: { paths: [data] },
      backupExternalId: point,
    });
    expect(!failed.ok && failed.failure).toMatchObject({ code: 'RESTIC_FAILED', message: /disk caught fire/ });
    const hangs = brokenRestore('hangs');
    const e: MockTaskEnvironment = env(repo, {
      config: { binary: hangs.binary },
      onEvent: (ev) => {
        if (ev.message.includes('restoring snapshot')) setTimeout(() => e.cancel('stop the restore'), 300);
      },
    });
    const cancelled = await e.run('restore', {
      instanceId: 'inst-c',
      locator: { paths: [data] },
      backupExternalId: point,
    });
    expect(cancelled).toMatchObject({ ok: false, failure: { code: 'CANCELLED' }, abandoned: false });
    // restic was pointed at a fresh staging directory in the root, never at / nor at the data.
    for (const f of [fails.targets, hangs.targets])
      expect(fs.readFileSync(f, 'utf8')).toMatch(new RegExp(`^${tenant}/\\.cairn-restore-\\w+\\n$`));
    expect(fingerprint(data)).toEqual(want);
    expect(stagingLeft()).toEqual([]);
  });

  it('preflight fails its paths check for a locator outside the roots, with advice', async () => {
    const run = await env(repo, { plugin: unchecked }).run('preflight', { locator: { paths: [secret] } });
    expect(run.ok && run.value.checks?.find((c) => c.name === 'paths')).toMatchObject({
      ok: false,
      message: expect.stringContaining('outside the directories this agent allows'),
      advice: expect.stringContaining('--roots'),
    });
  });
});

describe.runIf(hasRestic)('a restic killed with -9 (its agent killed under it)', () => {
  const data = path.join(tenant, 'kdata');
  beforeAll(() => {
    fs.mkdirSync(data);
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(data, `big-${i}.bin`), randomBytes(16 * 1024 * 1024));
  });
  // Whole lock files: restic writes each under a `-tmp-` name first, then renames it.
  const locks = (repo: string) => fs.readdirSync(path.join(repo, 'locks')).filter((f) => !f.includes('-tmp-'));

  /**
   * A repository with a backup's lock in it, and that backup's restic, running (stopped or not).
   * Its lock file is there before restic has taken it as its own: restic writes the file, reads
   * the other locks, and only then counts it among the locks it removes on SIGINT. A restic
   * interrupted in between (SIGSTOP the moment the file appears, then SIGINT) leaves its lock
   * behind, every time. So the backup must also have said what it does next (its parent
   * snapshot), which it says after locking.
   */
  async function lockedBy(name: string): Promise<{ repo: string; child: ChildProcess }> {
    const repo = path.join(root, name);
    restic(repo, ['init']);
    const child = spawn('restic', ['backup', data], {
      env: { ...process.env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PASSWORD },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let said = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (said += chunk));
    await waitFor(
      () => locks(repo).length > 0 && said.includes('parent snapshot'),
      'the backup to take its lock and go on past it',
    );
    return { repo, child };
  }
  const kill = async (child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  };

  it('leaves a stale lock that the next operation needing the whole repository removes, then runs', async () => {
    const { repo, child } = await lockedBy('repo-killed');
    await kill(child);
    expect(locks(repo)).toHaveLength(1);
    // A prune needs the exclusive lock: without the stale lock removed it would wait lockWaitMs
    // and fail REPOSITORY_LOCKED for 30 minutes (restic's own stale age).
    const run = await env(repo, { config: { lockWaitMs: 0 } }).run('prune', {});
    expect(run.ok, JSON.stringify(run)).toBe(true);
    expect(locks(repo)).toEqual([]);
    restic(repo, ['check']);
  });

  it('never removes the lock of a restic still running: the prune waits for it and says so', async () => {
    const { repo, child } = await lockedBy('repo-live');
    child.kill('SIGSTOP'); // it keeps its lock, and its PID, while stopped
    try {
      const run = await env(repo, { config: { lockWaitMs: 0 } }).run('prune', {});
      expect(run).toMatchObject({ ok: false, failure: { code: 'REPOSITORY_LOCKED' } });
      expect(locks(repo)).toHaveLength(1);
    } finally {
      child.kill('SIGCONT');
      await kill(child, 'SIGINT');
    }
    restic(repo, ['check']);
  });

  // The dead restic's PID given to a later process, as a busy host does within minutes. restic
  // 0.14's own `unlock` would keep that lock, and send the process SIGHUP, ending it.
  if (!canChoosePid)
    console.warn('[restic] the PID reuse case is skipped: this machine does not let a test choose a PID');

  it.runIf(canChoosePid)(
    'removes a lock whose PID a later process has taken, and leaves that process alone',
    async () => {
      // Another process may take the dead restic's PID first (a small PID space, many processes
      // starting): then the case is set up again with a new restic.
      let taken: { repo: string; pid: number; stranger: ChildProcess } | undefined;
      for (let attempt = 1; !taken; attempt++) {
        const { repo, child } = await lockedBy(`repo-reused-${attempt}`);
        const pid = child.pid!;
        await kill(child);
        await sleep(PID_REUSE_SLACK_MS + 1_000);
        try {
          taken = { repo, pid, stranger: await spawnWithPid(pid) };
        } catch (err) {
          if (!(err instanceof PidTaken) || attempt === 3) throw err;
          console.warn(`[restic] ${err.message} before the test could: setting the case up again`);
        }
      }
      const { repo, pid, stranger } = taken;
      try {
        expect(locks(repo)).toHaveLength(1);
        const run = await env(repo, { config: { lockWaitMs: 0 } }).run('prune', {});
        expect(run.ok, JSON.stringify(run)).toBe(true);
        expect(locks(repo)).toEqual([]);
        // Still running (a process that had ended would be a zombie, `Z`, until reaped).
        expect(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0]).toMatch(/[RS]/);
        expect(stranger.exitCode).toBeNull();
        expect(stranger.signalCode).toBeNull();
        restic(repo, ['check']);
      } finally {
        await kill(stranger);
      }
    },
    120_000,
  );
});

describe.runIf(hasRestic)('cancelling a backup', () => {
  const data = path.join(tenant, 'cdata');
  beforeAll(() => {
    fs.mkdirSync(data);
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(data, `big-${i}.bin`), randomBytes(16 * 1024 * 1024));
  });

  it.each([
    ['restic stops on SIGINT', {}],
    ['restic is killed at once and its lock cleared after', { cancelGraceMs: 0 }],
  ])('leaves a usable repository: %s', async (_what, config) => {
    const repo = path.join(root, `repo-cancel-${Object.keys(config).length}`);
    restic(repo, ['init']);
    const e: MockTaskEnvironment = env(repo, { config, onProgress: () => e.cancel('stop it') });
    const run = await e.run('backup', { instanceId: 'c', instanceName: 'c', locator: { paths: [data] }, mode: 'FULL' });
    expect(run).toMatchObject({ ok: false, failure: { code: 'CANCELLED' }, abandoned: false });
    expect(restic(repo, ['list', 'locks']).trim()).toBe('');
    expect(JSON.parse(restic(repo, ['snapshots', '--json']))).toEqual([]);
    restic(repo, ['check']);
    const after = await env(repo).run('backup', {
      instanceId: 'c',
      instanceName: 'c',
      locator: { paths: [data] },
      mode: 'FULL',
    });
    expect(after.ok).toBe(true);
  });

  it.each([
    // A restic that does not stop on SIGINT: the cancel comes as it saves its snapshot.
    ['forgets the snapshot restic saved although the backup was cancelled', 'deaf', ''],
    // A restic interrupted between saving its snapshot and printing its summary: this one saves
    // it, its summary line is lost, and the cancel arrives after.
    [
      'finds and forgets the snapshot restic saved before it could print its summary',
      'unsaid',
      ` | grep -v '"message_type":"summary"'\nexit 0`,
    ],
  ])(
    '%s, so the cancel leaves nothing',
    async (_what, name, after) => {
      const repo = path.join(root, `repo-cancel-${name}`);
      restic(repo, ['init']);
      const binary = path.join(root, `restic-${name}`);
      fs.writeFileSync(binary, `#!/bin/sh\ntrap '' INT\n/usr/bin/restic "$@"${after}\n`, { mode: 0o755 });
      const e: MockTaskEnvironment = env(repo, {
        config: { binary, cancelGraceMs: 4_000 },
        abortGraceMs: 60_000,
        onProgress: () => e.cancel('stop it'),
      });
      const run = await e.run('backup', {
        instanceId: 'c',
        instanceName: 'c',
        locator: { paths: [data] },
        mode: 'FULL',
      });
      expect(run).toMatchObject({ ok: false, failure: { code: 'CANCELLED' }, abandoned: false });
      expect(run.events.map((ev) => ev.message)).toContainEqual(
        expect.stringMatching(/^restic: the backup was cancelled after saving snapshot \w{8}; forgot it$/),
      );
      expect(JSON.parse(restic(repo, ['snapshots', '--json']))).toEqual([]);
      expect(restic(repo, ['list', 'locks']).trim()).toBe('');
      restic(repo, ['check']);
    },
    90_000,
  );

  it('tags each backup with a run of its own, besides its instance', async () => {
    const repo = path.join(root, 'repo-run-tags');
    restic(repo, ['init']);
    for (let i = 0; i < 2; i++) {
      const run = await env(repo).run('backup', {
        instanceId: 'c',
        instanceName: 'c',
        locator: { paths: [data] },
        mode: 'FULL',
      });
      expect(run.ok).toBe(true);
    }
    const tags = (JSON.parse(restic(repo, ['snapshots', '--json'])) as { tags: string[] }[]).map((s) => s.tags);
    expect(tags).toEqual([
      ['cairn-instance=c', expect.stringMatching(/^cairn-run=[0-9a-f]{16}$/)],
      ['cairn-instance=c', expect.stringMatching(/^cairn-run=[0-9a-f]{16}$/)],
    ]);
    expect(tags[0]![1]).not.toBe(tags[1]![1]);
  }, 90_000);
});

describe('restic client helpers', () => {
  it('reads and compares versions', () => {
    expect(parseVersion('restic 0.14.0 compiled with go1.19.8 on linux/amd64')).toEqual([0, 14, 0]);
    expect(parseVersion('something else')).toBeUndefined();
    expect(
      [
        [0, 14, 0],
        [0, 16, 2],
        [1, 0, 0],
      ].every((v) => isSupported(v)),
    ).toBe(true);
    expect(
      [
        [0, 13, 9],
        [0, 9, 6],
      ].some((v) => isSupported(v)),
    ).toBe(false);
  });

  it('hides the password and URL passwords', () => {
    expect(redact('rest:https://user:hunter22@host/repo failed with hunter22', 'hunter22')).toBe(
      'rest:https://user:***@host/repo failed with ***',
    );
    expect(redact('sftp:u@host:/srv', 'x')).toBe('sftp:u@host:/srv');
  });
});
