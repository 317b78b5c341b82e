/** The command as a real process: exit codes, the lines it prints, bad usage and config. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const packageDir = path.resolve(import.meta.dirname, '..');
const cli = path.join(packageDir, 'dist/cli.js');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'conformance-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function command(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cli, ...args],
      { cwd: packageDir, env: { ...process.env, TMPDIR: dir } },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

async function config(name: string, content: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('cairn-plugin-conformance', () => {
  it('exits 0 on the dummy, printing every check and a summary', async () => {
    const file = await config('dummy.json', {
      connection: { config: { storeDir: '{scratch}/store', durationMs: 200, steps: 4 } },
      locator: { paths: ['{dir}'] },
    });
    const run = await command('@cairn/plugin-dummy', '--config', file);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^PASS manifest: the agent would load @cairn\/plugin-dummy 0\.1\.0/);
    expect(lines).toContain('SKIP capability incremental: not declared in capabilities');
    expect(lines.some((l) => /^PASS cancel: stopped \d+ ms after the cancel/.test(l))).toBe(true);
    expect(lines).toContain('SKIP locator outside roots: the plugin does not declare host-paths');
    expect(lines.at(-1)).toMatch(/^@cairn\/plugin-dummy 0\.1\.0: \d+ passed, 0 failed, 15 skipped$/);
  });

  it('exits 0 on the template given by path, and prints JSON with --json', async () => {
    const file = await config('template.json', {
      connection: { config: { storeDir: '{scratch}/store' } },
      locator: { paths: ['{dir}'] },
    });
    const run = await command('../template', '--config', file, '--json');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { ok: boolean; checks: { name: string; status: string }[] };
    expect(report.ok).toBe(true);
    const status = (name: string) => report.checks.find((c) => c.name === name)?.status;
    for (const name of ['restore second point', 'locator outside roots', 'links planted before restore'])
      expect(status(name), name).toBe('pass');
  });

  it('exits 1 when a check fails, saying which and why', async () => {
    const file = await config('backwards.json', { locator: { path: '{dir}' } });
    const run = await command('./test-fixtures/backwards', '-c', file);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('FAIL backup: the backup: progress went backwards: 20 % after 50 %\n');
    expect(run.stdout).toContain('SKIP restore first point: the plugin does not declare restore\n');
    expect(run.stdout).toMatch(/cairn-plugin-backwards 0\.0\.1: \d+ passed, [1-9]\d* failed, \d+ skipped\n$/);
  });

  it('exits 1 for a package the agent cannot load, with its message', async () => {
    const file = await config('any.json', { locator: { path: '{dir}' } });
    const run = await command('cairn-plugin-not-installed', '--config', file);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^FAIL manifest: plugin cairn-plugin-not-installed: cannot be found/);
  });

  it.each([
    ['a config file with an unknown field', { locator: { path: '{dir}' }, conection: {} }, 'unknown field conection'],
    ['a locator without {dir}', { locator: { path: '/srv' } }, 'locator: must name the sample data directory as {dir}'],
    ['a config file that is not JSON', '{"locator":', 'is not JSON'],
  ])('exits 2 on %s, naming the problem', async (_what, content, message) => {
    const file = await config('bad.json', content);
    const run = await command('@cairn/plugin-dummy', '--config', file);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`cairn-plugin-conformance: ${file}: `);
    expect(run.stderr).toContain(message);
  });

  it('exits 2 without --config or a package, or with a config file that is missing', async () => {
    const noConfig = await command('@cairn/plugin-dummy');
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toContain("required option '-c, --config <file>' not specified");
    const noPackage = await command('--config', 'x.json');
    expect(noPackage.code).toBe(2);
    expect(noPackage.stderr).toContain("missing required argument 'package'");
    const missing = await command('@cairn/plugin-dummy', '--config', path.join(dir, 'nowhere.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${path.join(dir, 'nowhere.json')}: cannot be read (ENOENT)`);
  });
});
