/**
 * The template works as a plugin author receives it: its package.json is what the agent looks
 * for, and a copy outside the repository builds with its own tsconfig and passes the command.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const templateDir = path.resolve(import.meta.dirname, '../../template');
const cli = path.resolve(import.meta.dirname, '../dist/cli.js');

let copy: string;
beforeAll(async () => {
  const outside = await mkdtemp(path.join(os.tmpdir(), 'cairn-plugin-acme-'));
  copy = path.join(outside, 'cairn-plugin-acme');
  await cp(templateDir, copy, {
    recursive: true,
    filter: (src) => !['node_modules', 'dist'].includes(path.basename(src)),
  });
  // Stands in for `npm install`: the packages the template declares, from this workspace.
  await symlink(path.join(templateDir, 'node_modules'), path.join(copy, 'node_modules'));
});
afterAll(async () => {
  await rm(path.dirname(copy), { recursive: true, force: true });
});

describe('the plugin template', () => {
  it('is a package the agent would look for: name, keyword, "cairn" field, the SDK as a peer', async () => {
    const pkg = JSON.parse(await readFile(path.join(templateDir, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg).toMatchObject({
      name: 'cairn-plugin-example',
      keywords: ['cairn-plugin'],
      cairn: { kind: 'provider', id: 'example', apiVersions: [1] },
      peerDependencies: { '@cairn/plugin-sdk': expect.any(String) },
    });
    expect(pkg).not.toHaveProperty('dependencies');
  });

  it('builds outside the repository with its own tsconfig, and passes the conformance command there', async () => {
    await run(process.execPath, [path.join(copy, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
      cwd: copy,
    });
    expect((await stat(path.join(copy, 'dist/index.js'))).isFile()).toBe(true);
    const { stdout } = await run(process.execPath, [cli, '.', '--config', 'conformance.json'], { cwd: copy });
    expect(stdout).toMatch(/^PASS manifest: the agent would load cairn-plugin-example 0\.1\.0/);
    expect(stdout).toContain('PASS restore second point: ');
    expect(stdout).toMatch(/cairn-plugin-example 0\.1\.0: \d+ passed, 0 failed, \d+ skipped\n$/);
  });
});
