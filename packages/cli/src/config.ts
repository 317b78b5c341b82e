/**
 * The configuration file: named contexts (a server URL and an API token each) and the current
 * one. Where it lives, how it is read and checked, and how the server a command talks to is
 * chosen (flags, then CAIRN_URL / CAIRN_TOKEN, then the context).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { CliError, EXIT } from './exit.js';

export interface Context {
  url: string;
  token: string;
}

export interface Config {
  currentContext: string | null;
  contexts: Record<string, Context>;
}

export const EMPTY_CONFIG: Config = { currentContext: null, contexts: {} };

/** Context names: what a shell takes without quoting. */
const CONTEXT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** `$CAIRN_CONFIG`, else `$XDG_CONFIG_HOME/cairn/config.yaml`, else `~/.config/cairn/config.yaml`. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['CAIRN_CONFIG'];
  if (explicit) return path.resolve(explicit);
  const xdg = env['XDG_CONFIG_HOME'];
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.config');
  return path.join(base, 'cairn', 'config.yaml');
}

/** A server URL as stored: http(s), no query or fragment, no trailing slash. Throws a message. */
export function normaliseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new Error(`not a URL: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`must be an http:// or https:// URL, not ${url.protocol}`);
  if (url.search || url.hash) throw new Error('must not have a query or fragment');
  if (url.username || url.password) throw new Error('must not hold credentials (use the token)');
  return url.toString().replace(/\/+$/, '');
}

export function checkContextName(name: string): string {
  if (!CONTEXT_NAME.test(name))
    throw new CliError(
      EXIT.usage,
      `context name ${JSON.stringify(name)}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  return name;
}

function configError(file: string, field: string, message: string): CliError {
  return new CliError(EXIT.usage, `config file ${file}: ${field}: ${message}`);
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks a config file's text; a problem is a usage error naming the file and the field. */
export function parseConfig(text: string, file: string): Config {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}` : '(document)';
    throw configError(file, where, `not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) return { currentContext: null, contexts: {} };
  if (!isMap(raw)) throw configError(file, '(document)', 'must be a mapping with currentContext and contexts');
  for (const key of Object.keys(raw))
    if (key !== 'currentContext' && key !== 'contexts') throw configError(file, key, 'unknown field');
  const contexts: Record<string, Context> = {};
  const rawContexts = raw['contexts'] ?? {};
  if (!isMap(rawContexts)) throw configError(file, 'contexts', 'must be a mapping of context name to {url, token}');
  for (const [name, ctx] of Object.entries(rawContexts)) {
    const field = `contexts.${name}`;
    if (!CONTEXT_NAME.test(name)) throw configError(file, field, 'not a valid context name');
    if (!isMap(ctx)) throw configError(file, field, 'must be a mapping with url and token');
    for (const key of Object.keys(ctx))
      if (key !== 'url' && key !== 'token') throw configError(file, `${field}.${key}`, 'unknown field');
    const url = ctx['url'];
    if (typeof url !== 'string') throw configError(file, `${field}.url`, 'missing (a string: the server URL)');
    let normal: string;
    try {
      normal = normaliseUrl(url);
    } catch (err) {
      throw configError(file, `${field}.url`, (err as Error).message);
    }
    const token = ctx['token'];
    if (typeof token !== 'string' || token.trim() === '')
      throw configError(file, `${field}.token`, 'missing (a non-empty string: the API token)');
    contexts[name] = { url: normal, token };
  }
  const current = raw['currentContext'] ?? null;
  if (current !== null && typeof current !== 'string')
    throw configError(file, 'currentContext', 'must be a context name');
  if (current !== null && !(current in contexts))
    throw configError(file, 'currentContext', `names no context of this file (${JSON.stringify(current)})`);
  return { currentContext: current, contexts };
}

/**
 * Reads the config file; a missing file is an empty config. A file that group or others may read
 * is read, with a warning through `warn` (it holds API tokens).
 */
export function readConfig(file: string, warn: (line: string) => void): Config {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw configError(file, '(file)', 'not a regular file');
    if ((st.mode & 0o077) !== 0)
      warn(
        `warning: config file ${file} holds API tokens and is readable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${file}`,
      );
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { currentContext: null, contexts: {} };
    throw configError(file, '(file)', `cannot read: ${(err as Error).message}`);
  }
  return parseConfig(text, file);
}

/** Writes the config file with mode 0600 (its directory 0700 when made), replacing it whole. */
export function writeConfig(file: string, config: Config): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, stringify({ currentContext: config.currentContext, contexts: config.contexts }));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export interface TargetFlags {
  url?: string | undefined;
  token?: string | undefined;
  context?: string | undefined;
}

export interface Target {
  url: string;
  token: string;
  /** The context the URL or token came from, if any. */
  context: string | null;
}

/**
 * The server and token a command uses: `--url`/`--token`, else `CAIRN_URL`/`CAIRN_TOKEN`, else the
 * context named by `--context` (or `CAIRN_CONTEXT`), else the current context.
 */
export function resolveTarget(flags: TargetFlags, env: NodeJS.ProcessEnv, config: Config, file: string): Target {
  const contextName = flags.context ?? (env['CAIRN_CONTEXT'] || undefined) ?? config.currentContext;
  let ctx: Context | undefined;
  if (contextName !== null && contextName !== undefined) {
    ctx = config.contexts[contextName];
    if (!ctx && (flags.context !== undefined || env['CAIRN_CONTEXT']))
      throw new CliError(EXIT.notFound, `no context named ${JSON.stringify(contextName)} in ${file}`);
  }
  const rawUrl = flags.url ?? (env['CAIRN_URL'] || undefined) ?? ctx?.url;
  const token = flags.token ?? (env['CAIRN_TOKEN'] || undefined) ?? ctx?.token;
  if (rawUrl === undefined || token === undefined)
    throw new CliError(
      EXIT.usage,
      `no ${rawUrl === undefined ? 'server URL' : 'API token'}: run cairn login --url URL --token TOKEN, or set ${rawUrl === undefined ? 'CAIRN_URL' : 'CAIRN_TOKEN'} (config file: ${file})`,
    );
  let url: string;
  try {
    url = normaliseUrl(rawUrl);
  } catch (err) {
    const source = flags.url !== undefined ? '--url' : env['CAIRN_URL'] ? 'CAIRN_URL' : `contexts.${contextName}.url`;
    throw new CliError(EXIT.usage, `${source}: ${(err as Error).message}`);
  }
  return { url, token, context: ctx ? (contextName ?? null) : null };
}
