import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configPath, parseConfig, readConfig, resolveTarget, writeConfig, type Config } from './config.js';
import { CliError, EXIT } from './exit.js';

const FILE = '/home/u/.config/cairn/config.yaml';

function refusal(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CliError) return err;
    throw err;
  }
  throw new Error('expected a CliError');
}

describe('configPath', () => {
  it('takes CAIRN_CONFIG, else XDG_CONFIG_HOME, else ~/.config', () => {
    expect(configPath({ CAIRN_CONFIG: '/etc/c.yaml', XDG_CONFIG_HOME: '/x' })).toBe('/etc/c.yaml');
    expect(configPath({ XDG_CONFIG_HOME: '/x' })).toBe('/x/cairn/config.yaml');
    // A relative XDG_CONFIG_HOME is invalid by the spec and ignored.
    expect(configPath({ XDG_CONFIG_HOME: 'rel' })).toBe(path.join(os.homedir(), '.config/cairn/config.yaml'));
    expect(configPath({})).toBe(path.join(os.homedir(), '.config/cairn/config.yaml'));
  });
});

describe('parseConfig', () => {
  it('reads contexts and the current one, normalising URLs', () => {
    const c = parseConfig('currentContext: a\ncontexts:\n  a: {url: "https://cp.example/", token: t1}\n', FILE);
    expect(c).toEqual({ currentContext: 'a', contexts: { a: { url: 'https://cp.example', token: 't1' } } });
    expect(parseConfig('', FILE)).toEqual({ currentContext: null, contexts: {} });
  });

  it.each([
    ['currentContext: [1', 'line 1: not valid YAML'],
    ['- a\n- b\n', '(document): must be a mapping'],
    ['currentContxt: a\n', 'currentContxt: unknown field'],
    ['contexts: [a]\n', 'contexts: must be a mapping'],
    ['contexts:\n  a: {token: t}\n', 'contexts.a.url: missing'],
    ['contexts:\n  a: {url: "file:///x", token: t}\n', 'contexts.a.url: must be an http:// or https:// URL'],
    ['contexts:\n  a: {url: "http://h", token: ""}\n', 'contexts.a.token: missing'],
    ['contexts:\n  a: {url: "http://h", token: t, extra: 1}\n', 'contexts.a.extra: unknown field'],
    ['contexts:\n  "a b": {url: "http://h", token: t}\n', 'contexts.a b: not a valid context name'],
    ['currentContext: b\ncontexts:\n  a: {url: "http://h", token: t}\n', 'currentContext: names no context'],
  ])('refuses %j naming the file and the field', (text, message) => {
    const err = refusal(() => parseConfig(text, FILE));
    expect(err.code).toBe(EXIT.usage);
    expect(err.message).toContain(`config file ${FILE}: ${message}`);
  });
});

describe('resolveTarget', () => {
  const config: Config = {
    currentContext: 'a',
    contexts: { a: { url: 'http://a', token: 'ta' }, b: { url: 'http://b', token: 'tb' } },
  };
  it('flags win over the environment, which wins over the context', () => {
    expect(resolveTarget({}, {}, config, FILE)).toEqual({ url: 'http://a', token: 'ta', context: 'a' });
    expect(resolveTarget({ context: 'b' }, {}, config, FILE)).toMatchObject({ url: 'http://b', token: 'tb' });
    expect(resolveTarget({}, { CAIRN_CONTEXT: 'b' }, config, FILE)).toMatchObject({ url: 'http://b' });
    expect(resolveTarget({}, { CAIRN_URL: 'http://env', CAIRN_TOKEN: 'te' }, config, FILE)).toMatchObject({
      url: 'http://env',
      token: 'te',
    });
    expect(
      resolveTarget({ url: 'http://flag/', token: 'tf' }, { CAIRN_URL: 'http://env' }, config, FILE),
    ).toMatchObject({ url: 'http://flag', token: 'tf' });
  });
  it('an unknown context is not found; nothing to talk to is a usage error', () => {
    expect(refusal(() => resolveTarget({ context: 'zz' }, {}, config, FILE)).code).toBe(EXIT.notFound);
    const none = refusal(() => resolveTarget({}, {}, { currentContext: null, contexts: {} }, FILE));
    expect(none.code).toBe(EXIT.usage);
    expect(none.message).toContain('cairn login');
    expect(refusal(() => resolveTarget({ url: 'nope', token: 't' }, {}, config, FILE)).message).toMatch(/^--url: /);
  });
});

describe('readConfig and writeConfig', () => {
  it('write a 0600 file in a 0700 directory and read it back; a file others can read is read with a warning', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-cli-config-'));
    const file = path.join(dir, 'deep', 'cairn', 'config.yaml');
    const warnings: string[] = [];
    expect(readConfig(file, (l) => warnings.push(l))).toEqual({ currentContext: null, contexts: {} });
    const config: Config = { currentContext: 'a', contexts: { a: { url: 'http://a', token: 'secret' } } };
    writeConfig(file, config);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(readConfig(file, (l) => warnings.push(l))).toEqual(config);
    expect(warnings).toEqual([]);
    fs.chmodSync(file, 0o640);
    expect(readConfig(file, (l) => warnings.push(l))).toEqual(config);
    expect(warnings).toEqual([
      expect.stringContaining(`config file ${file} holds API tokens and is readable by others (mode 0640)`),
    ]);
    // Writing again puts the mode back.
    writeConfig(file, config);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['config.yaml']);
  });
});
