import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fill, optionsFromConfig, readConfigFile } from './config.js';
import { ConformanceUsageError } from './run.js';

const dirs = { data: '/w/data', scratch: '/w/scratch' };

describe('optionsFromConfig', () => {
  it('fills {dir}, {scratch} and {target} in for each run', () => {
    const options = optionsFromConfig({
      connection: { endpoint: null, config: { repository: '{scratch}/repo', n: 3 }, credentials: { password: 'pw' } },
      locator: { paths: ['{dir}'], tags: ['x'] },
      restoreTarget: { path: '{target}', within: '{scratch}' },
      restoredDir: '{target}{dir}',
      instance: { id: 'i-1', name: 'web' },
      cancelGraceMs: 300,
    });
    expect(options.locatorFor(dirs.data, dirs)).toEqual({ paths: ['/w/data'], tags: ['x'] });
    const connection = typeof options.connection === 'function' ? options.connection(dirs) : undefined;
    expect(connection).toEqual({
      endpoint: null,
      config: { repository: '/w/scratch/repo', n: 3 },
      credentials: { password: 'pw' },
    });
    expect(options.restoreTargetFor!('/w/r1', dirs)).toEqual({ path: '/w/r1', within: '/w/scratch' });
    expect(options.restoredDirFor!('/w/r1', dirs)).toBe('/w/r1/w/data');
    expect(options).toMatchObject({ instance: { id: 'i-1', name: 'web' }, cancelGraceMs: 300 });
    expect(options).not.toHaveProperty('timeoutMs');
  });

  it("leaves the restore target and the restored copy to the kit's defaults ({path: target}, the target itself)", () => {
    // Given, both would let the kit read restores back from a plugin without restore-to-path.
    const options = optionsFromConfig({ locator: { path: '{dir}' } });
    expect(options).not.toHaveProperty('restoreTargetFor');
    expect(options).not.toHaveProperty('restoredDirFor');
    expect(typeof options.connection === 'function' && options.connection(dirs)).toEqual({});
  });

  it.each([
    ['no locator', {}, 'locator: required: the instance locator of the sample data, e.g. {"paths": ["{dir}"]}'],
    [
      'a locator without {dir}',
      { locator: { paths: ['/srv'] } },
      'locator: must name the sample data directory as {dir}',
    ],
    ['an unknown field', { locator: '{dir}', extra: 1 }, 'unknown field extra'],
    [
      'an unknown connection field',
      { locator: '{dir}', connection: { config: {}, secret: 'x' } },
      'connection: unknown field secret',
    ],
    ['a config that is not an object', { locator: '{dir}', connection: { config: 3 } }, 'connection.config: '],
    ['a negative grace', { locator: '{dir}', cancelGraceMs: -1 }, 'cancelGraceMs: '],
    ['a timeout that is text', { locator: '{dir}', timeoutMs: '10' }, 'timeoutMs: '],
    ['an instance without a name', { locator: '{dir}', instance: { id: 'i' } }, 'instance.name: '],
    ['not an object at all', [1], '(top): '],
  ])('refuses %s, naming the field', (_what, raw, message) => {
    expect(() => optionsFromConfig(raw)).toThrow(ConformanceUsageError);
    expect(() => optionsFromConfig(raw)).toThrow(message);
  });
});

describe('readConfigFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'conformance-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a good file, and names the file in every problem', async () => {
    const good = path.join(dir, 'good.json');
    await writeFile(good, JSON.stringify({ locator: { path: '{dir}' } }));
    expect((await readConfigFile(good)).locatorFor('/d', dirs)).toEqual({ path: '/d' });

    const missing = path.join(dir, 'missing.json');
    await expect(readConfigFile(missing)).rejects.toThrow(`${missing}: cannot be read (ENOENT)`);
    const broken = path.join(dir, 'broken.json');
    await writeFile(broken, '{"locator": ');
    await expect(readConfigFile(broken)).rejects.toThrow(`${broken}: is not JSON`);
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ locator: '{dir}', timeoutMs: 0 }));
    await expect(readConfigFile(bad)).rejects.toThrow(`${bad}: timeoutMs: `);
  });
});

describe('fill', () => {
  it('replaces every placeholder in every string, leaving other values and unknown placeholders', () => {
    expect(fill({ a: ['{x}-{x}', 1, null, { b: '{y}' }], c: true, d: '{z}' }, { x: 'X', y: 'Y' })).toEqual({
      a: ['X-X', 1, null, { b: 'Y' }],
      c: true,
      d: '{z}',
    });
  });
});
