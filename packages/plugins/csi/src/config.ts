/**
 * What the plugin is given, checked before anything touches the cluster: the connection
 * (`credentials.kubeconfig`, a path, or `credentials.inCluster`: the pod's service account;
 * `config.pollIntervalMs`, `config.readyTimeoutS`, `config.primer`, `config.export`, and the
 * restic connection it names as `exportTo`), the offering a backup is for, the locator
 * `{namespace, selector?}` and a restore target `{namespace}`. Every error names the field.
 */
import { existsSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { isAbsolute, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { MAX_REPOSITORY_IDENTITY, PluginError, type ProviderConnection } from '@cairn/plugin-sdk';

export interface CsiSettings {
  kubeconfig: KubeConfig;
  pollIntervalMs: number;
  readyTimeoutMs: number;
  /** The preflight's primer: a claim of this StorageClass written, snapshotted, restored, compared. */
  primer?: PrimerSettings;
  /**
   * Where volumes are exported to and restored from: the restic repository of the connection's
   * `exportTo`, through a data mover pod. Set whenever the connection has one; a backup exports
   * only for the offering that asks for it (`exportFor`).
   */
  export?: ExportSettings;
}

export interface ExportSettings {
  /** The restic repository, as the data mover pod reaches it (the export target's endpoint). */
  repository: string;
  /** The export target's `credentials.password`. */
  password: string;
  /** A restic image (`restic` as its command): `config.export.image`. */
  image: string;
  /**
   * Where the data mover pods that list and forget exports run when no namespace of the backup is
   * at hand (a sync, a delete after the backup's namespace went): it must exist.
   */
  namespace: string;
  /**
   * The identity (restic repository id) the export target's connection recorded, if it has: the
   * data mover checks the repository it reaches is that one before it writes, lists or restores
   * (`checkExportRepository`).
   */
  identity?: string;
}

export const DEFAULT_EXPORT_IMAGE = 'restic/restic:0.14.0';
/** The plugin an export target must be: the export is a restic repository. */
export const EXPORT_PLUGIN = '@cairn/plugin-restic';

/** The offerings of a CSI connection: snapshots alone, or snapshots each exported into restic too. */
export const OFFERINGS = [
  {
    externalId: 'snapshots',
    name: 'CSI snapshots',
    description: "each backup is a CSI volume snapshot of every claim, kept on the cluster's storage",
  },
  {
    externalId: 'snapshots+export',
    name: 'CSI snapshots, exported',
    description:
      "each backup is a CSI volume snapshot of every claim, and each volume's data is also exported into the restic repository of the connection's exportTo",
  },
] as const;
const EXPORTING_OFFERING = 'snapshots+export';

const USE_EXPORT_TO = `name a ${EXPORT_PLUGIN} connection of the zone as this connection's exportTo: its endpoint is the repository and its credentials.password the password`;

function readExport(
  value: unknown,
  credentials: Record<string, unknown>,
  target: ProviderConnection['exportTo'],
): ExportSettings | undefined {
  if (credentials['exportPassword'] !== undefined)
    throw bad('credentials.exportPassword', `is not read any more: ${USE_EXPORT_TO}`);
  let image: unknown = DEFAULT_EXPORT_IMAGE;
  let namespace: unknown = 'default';
  if (value !== undefined) {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw bad('config.export', 'must be an object {image?, namespace?}');
    const obj = value as Record<string, unknown>;
    if (obj['repository'] !== undefined)
      throw bad('config.export.repository', `is not read any more: ${USE_EXPORT_TO}`);
    onlyKeys(obj, ['image', 'namespace'], 'config.export', bad);
    image = obj['image'] ?? DEFAULT_EXPORT_IMAGE;
    namespace = obj['namespace'] ?? 'default';
  }
  if (typeof image !== 'string' || image.length > 512 || !IMAGE.test(image))
    throw bad(
      'config.export.image',
      `must be an image reference such as ${DEFAULT_EXPORT_IMAGE}, not ${JSON.stringify(image)}`,
    );
  if (typeof namespace !== 'string' || namespace.length > 63 || !DNS_LABEL.test(namespace))
    throw bad('config.export.namespace', `must be a namespace name (a DNS label), not ${JSON.stringify(namespace)}`);
  if (target === undefined) return undefined;
  if (target.plugin !== EXPORT_PLUGIN)
    throw bad(
      'exportTo.plugin',
      `must be ${EXPORT_PLUGIN} (the export is a restic repository), not ${JSON.stringify(target.plugin)}`,
    );
  const repository = target.endpoint;
  if (typeof repository !== 'string' || !repository.trim() || repository.length > 1024)
    throw bad('exportTo.endpoint', `must be a restic repository (a path or URL), not ${JSON.stringify(repository)}`);
  const password = target.credentials?.['password'];
  if (typeof password !== 'string' || !password)
    throw bad('exportTo.credentials.password', "required: the restic repository's password");
  const identity = target.identity;
  if (
    identity !== undefined &&
    identity !== null &&
    (typeof identity !== 'string' || identity.length > MAX_REPOSITORY_IDENTITY)
  )
    throw bad('exportTo.identity', `must be a repository id, not ${JSON.stringify(identity)}`);
  return { repository, password, image, namespace, ...(identity ? { identity } : {}) };
}

/**
 * What a backup for the offering `offeringExternalId` exports into: the export settings for
 * `snapshots+export` (INVALID_CONFIG naming exportTo when the connection has none), nothing for
 * `snapshots` or no offering id, and INVALID_CONFIG naming offeringExternalId for any other (a
 * misspelt export offering must not quietly skip the export). Decided before anything is made.
 */
export function exportFor(settings: CsiSettings, offeringExternalId: string | undefined): ExportSettings | undefined {
  if (offeringExternalId === undefined || offeringExternalId === 'snapshots') return undefined;
  if (offeringExternalId !== EXPORTING_OFFERING)
    throw bad(
      'offeringExternalId',
      `${JSON.stringify(offeringExternalId)} is not an offering of this plugin (${OFFERINGS.map((o) => o.externalId).join(', ')})`,
    );
  if (!settings.export)
    throw bad(
      'exportTo',
      `the offering ${EXPORTING_OFFERING} exports each backup, and this connection has no exportTo: ${USE_EXPORT_TO}`,
    );
  return settings.export;
}

export interface PrimerSettings {
  storageClass: string;
  namespace: string;
  /** The image of the primer's pods: a busybox (`sh`, `printf`, `sha256sum`). */
  image: string;
}

export const DEFAULT_PRIMER_IMAGE = 'busybox:1.36';
// A StorageClass name is a DNS subdomain; an image reference is checked only for what breaks a pod spec.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const IMAGE = /^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/;

function readPrimer(value: unknown): PrimerSettings | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad('config.primer', 'must be an object {storageClass, namespace, image?}');
  const obj = value as Record<string, unknown>;
  onlyKeys(obj, ['storageClass', 'namespace', 'image'], 'config.primer', bad);
  const { storageClass, namespace, image = DEFAULT_PRIMER_IMAGE } = obj;
  if (typeof storageClass !== 'string' || storageClass.length > 253 || !DNS_SUBDOMAIN.test(storageClass))
    throw bad('config.primer.storageClass', `must be a StorageClass name, not ${JSON.stringify(storageClass)}`);
  if (typeof namespace !== 'string' || namespace.length > 63 || !DNS_LABEL.test(namespace))
    throw bad('config.primer.namespace', `must be a namespace name (a DNS label), not ${JSON.stringify(namespace)}`);
  if (typeof image !== 'string' || image.length > 512 || !IMAGE.test(image))
    throw bad(
      'config.primer.image',
      `must be an image reference such as ${DEFAULT_PRIMER_IMAGE}, not ${JSON.stringify(image)}`,
    );
  return { storageClass, namespace, image };
}

export interface Locator {
  namespace: string;
  selector?: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// Equality (`a=b`, `a==b`, `a!=b`) and existence (`a`, `!a`) requirements, comma-joined.
const KEY = '(?:[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?';
const VALUE = '(?:[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?';
const REQUIREMENT = new RegExp(`^(?:!?${KEY}|${KEY}\\s*(?:==|=|!=)\\s*${VALUE})$`);

function bad(field: string, problem: string): PluginError {
  return new PluginError('INVALID_CONFIG', `${field}: ${problem}`);
}

function badLocator(field: string, problem: string): PluginError {
  return new PluginError('INVALID_LOCATOR', `${field}: ${problem}`);
}

function onlyKeys(obj: Record<string, unknown>, allowed: readonly string[], field: string, err: typeof bad): void {
  for (const key of Object.keys(obj))
    if (!allowed.includes(key)) throw err(`${field}.${key}`, `unknown field (allowed: ${allowed.join(', ')})`);
}

function positiveInt(value: unknown, field: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
    throw bad(field, `must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}`);
  return value as number;
}

/** Where a pod finds its service account's token and the cluster's CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The configuration of an agent running in a pod: the API server from `KUBERNETES_SERVICE_HOST`
 * and `KUBERNETES_SERVICE_PORT`, the CA from `<dir>/ca.crt`, the service account's token from
 * `<dir>/token` (read again when it changes: bound tokens rotate).
 */
function inCluster(credentials: Record<string, unknown>): KubeConfig {
  if (credentials['inCluster'] !== true)
    throw bad('credentials.inCluster', 'must be true (or left out, with credentials.kubeconfig)');
  if (credentials['kubeconfig'] !== undefined)
    throw bad('credentials.kubeconfig', 'give kubeconfig or inCluster, not both');
  const dir = credentials['serviceAccountDir'] ?? SERVICE_ACCOUNT_DIR;
  if (typeof dir !== 'string' || !isAbsolute(dir))
    throw bad('credentials.serviceAccountDir', 'must be the absolute path of a directory on the agent host');
  const host = process.env['KUBERNETES_SERVICE_HOST'];
  const port = process.env['KUBERNETES_SERVICE_PORT'];
  if (!host || !port)
    throw bad(
      'credentials.inCluster',
      "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set in the agent's environment (is it running in a pod?)",
    );
  const [caFile, tokenFile] = [join(dir, 'ca.crt'), join(dir, 'token')];
  for (const file of [caFile, tokenFile])
    if (!existsSync(file)) throw bad('credentials.serviceAccountDir', `no file at ${file}`);
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromClusterAndUser(
    {
      name: 'in-cluster',
      server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
      caFile,
      skipTLSVerify: false,
    },
    { name: 'service-account', authProvider: { name: 'tokenFile', config: { tokenFile } } },
  );
  return kubeconfig;
}

/** The connection's settings, the kubeconfig loaded. */
export function readConnection(connection: ProviderConnection): CsiSettings {
  const config = connection.config ?? {};
  const credentials = connection.credentials ?? {};
  onlyKeys(config, ['pollIntervalMs', 'readyTimeoutS', 'primer', 'export'], 'config', bad);
  const exporting = readExport(config['export'], credentials, connection.exportTo);
  onlyKeys(credentials, ['kubeconfig', 'inCluster', 'serviceAccountDir'], 'credentials', bad);
  const primer = readPrimer(config['primer']);
  const timing: Omit<CsiSettings, 'kubeconfig'> = {
    ...(primer ? { primer } : {}),
    ...(exporting ? { export: exporting } : {}),
    pollIntervalMs: positiveInt(config['pollIntervalMs'], 'config.pollIntervalMs', 1000, 10, 60_000),
    readyTimeoutMs: positiveInt(config['readyTimeoutS'], 'config.readyTimeoutS', 600, 1, 86_400) * 1000,
  };
  if (credentials['inCluster'] !== undefined) return { kubeconfig: inCluster(credentials), ...timing };
  if (credentials['serviceAccountDir'] !== undefined)
    throw bad('credentials.serviceAccountDir', 'only with credentials.inCluster: true');
  const path = credentials['kubeconfig'];
  if (typeof path !== 'string' || !isAbsolute(path))
    throw bad('credentials.kubeconfig', 'required: the absolute path of a kubeconfig file on the agent host');
  if (!existsSync(path)) throw bad('credentials.kubeconfig', `no file at ${path}`);
  const kubeconfig = new KubeConfig();
  try {
    kubeconfig.loadFromFile(path);
  } catch (err) {
    throw bad('credentials.kubeconfig', `${path} is not a kubeconfig: ${(err as Error).message}`);
  }
  const context = kubeconfig.getCurrentContext();
  if (!context || !kubeconfig.getCurrentCluster())
    throw bad('credentials.kubeconfig', `${path} has no current context with a cluster`);
  return { kubeconfig, ...timing };
}

/** The instance's locator: `{namespace, selector?}`. */
export function readLocator(value: unknown, field = 'locator'): Locator {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw badLocator(field, 'must be an object {namespace, selector?}');
  const obj = value as Record<string, unknown>;
  onlyKeys(obj, ['namespace', 'selector'], field, badLocator);
  const namespace = readNamespace(obj['namespace'], `${field}.namespace`);
  const selector = obj['selector'];
  if (selector === undefined) return { namespace };
  if (typeof selector !== 'string' || !selector.trim())
    throw badLocator(`${field}.selector`, 'must be a non-empty label selector such as "app=web,tier!=cache"');
  for (const term of selector.split(','))
    if (!REQUIREMENT.test(term.trim()))
      throw badLocator(`${field}.selector`, `"${term.trim()}" is not a requirement (key, !key, key=value, key!=value)`);
  return { namespace, selector };
}

/** A restore's target, `{namespace}`, or the locator's namespace without one. */
export function readTargetNamespace(target: unknown, locator: Locator): string {
  if (target === undefined || target === null) return locator.namespace;
  if (typeof target !== 'object' || Array.isArray(target)) throw badLocator('target', 'must be an object {namespace}');
  const obj = target as Record<string, unknown>;
  onlyKeys(obj, ['namespace'], 'target', badLocator);
  return readNamespace(obj['namespace'], 'target.namespace');
}

function readNamespace(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length > 63 || !DNS_LABEL.test(value))
    throw badLocator(
      field,
      `must be a namespace name (a DNS label: lowercase letters, digits and -, at most 63), not ${JSON.stringify(value)}`,
    );
  return value;
}
