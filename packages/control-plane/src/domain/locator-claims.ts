/*
 * An instance's locator and a restore target are claims on the service provider's
 * infrastructure, never facts. Who may make them, per provider connection:
 *
 * - `sp-only` (the default): only an sp-admin sets a locator the connection will use, or a
 *   restore target other than the instance's own (a path, a namespace).
 * - `granted-roots`: a tenant may also name host paths (`{paths: [...]}`, a target `path`), each
 *   below one of the roots the SP granted that tenant on the connection; never a namespace.
 * - `any`: a tenant names any locator (for providers whose locators name nothing of the SP's,
 *   such as the dummy simulator, or whose plugin proves ownership itself). Refused on a
 *   connection whose plugin declares `sp-locators` (its locators name the SP's namespaces):
 *   there it is judged as `sp-only`.
 *
 * The agent judges every host path again against its own configuration, after resolving links.
 */

export const TENANT_LOCATORS = ['sp-only', 'granted-roots', 'any'] as const;
export type TenantLocators = (typeof TENANT_LOCATORS)[number];

/** The plugin trait saying its locators name the service provider's resources. */
export const SP_LOCATORS = 'sp-locators';

/**
 * The policy a claim is judged by: `any` on a connection whose plugin declares `sp-locators`
 * counts as `sp-only`, whatever was stored (an agent may declare it after the policy was set).
 */
export function effectivePolicy(policy: TenantLocators, spLocators: boolean): TenantLocators {
  return spLocators && policy === 'any' ? 'sp-only' : policy;
}

/** Why `tenantLocators: any` is refused on a connection of `plugin`, which declares `sp-locators`. */
export function anyRefusal(plugin: string): { path: string; message: string } {
  return {
    path: 'tenantLocators',
    message: `must not be any: ${plugin} declares sp-locators (its locators name the service provider's resources, so only sp-admins name them)`,
  };
}

/** Who made an instance's locator claim: an sp-admin (`sp`) or the tenant itself (`tenant`). */
export type LocatorClaim = 'sp' | 'tenant';

export type Judgement = { ok: true } | { ok: false; path: string; message: string };

const OK: Judgement = { ok: true };

/** The refusal of a connection that leaves `what` to sp-admins. */
const spOnly = (field: string, what: string): Judgement => ({
  ok: false,
  path: field,
  message: `only a service-provider admin may ${what} on this provider connection`,
});

/** A POSIX path without `.` segments, repeated or trailing slashes; undefined when not absolute. */
function normalAbsolute(p: string): string | undefined {
  if (!p.startsWith('/') || p.includes('\0')) return undefined;
  return (
    '/' +
    p
      .split('/')
      .filter((seg) => seg !== '' && seg !== '.')
      .join('/')
  );
}

/** At most this many roots per tenant on one connection, each at most 4,096 characters. */
export const MAX_TENANT_ROOTS = 20;

/**
 * A root as the SP grants it: absolute, POSIX, without `.`/`..` segments, normalized (no trailing
 * slash), and not `/`. Returns the problem, or the normalized root.
 *
 * @example normalizeRoot('/srv/tenants/acme/') // → { ok: true, root: '/srv/tenants/acme' }
 */
export function normalizeRoot(raw: string): { ok: true; root: string } | { ok: false; message: string } {
  const root = normalAbsolute(raw);
  if (root === undefined) return { ok: false, message: 'must be an absolute path on the agent host' };
  if (raw.split('/').some((seg) => seg === '..' || seg === '.'))
    return { ok: false, message: 'must not contain . or .. segments' };
  if (root === '/') return { ok: false, message: 'must not grant the whole file system' };
  return { ok: true, root };
}

/** `p` (normalized) is `root` or lies below it. */
function within(p: string, root: string): boolean {
  return p === root || p.startsWith(`${root}/`);
}

/**
 * Judges one host path a tenant names against its granted roots, lexically: `..` segments are
 * refused outright (the agent resolves links later; the control plane cannot see them).
 */
export function judgeTenantPath(p: unknown, roots: readonly string[], field: string): Judgement {
  const normal = typeof p === 'string' ? normalAbsolute(p) : undefined;
  if (typeof p !== 'string' || normal === undefined)
    return { ok: false, path: field, message: 'must be an absolute path on the agent host' };
  if (p.split('/').some((seg) => seg === '..'))
    return { ok: false, path: field, message: 'must not contain .. segments' };
  if (!roots.some((r) => within(normal, r)))
    return {
      ok: false,
      path: field,
      message:
        roots.length === 0
          ? 'no host path is granted to this tenant on the provider connection'
          : `${normal} is outside the roots granted to this tenant on the provider connection (${roots.join(', ')})`,
    };
  return OK;
}

/**
 * May a tenant's locator be used through a connection with `policy` and the tenant's `roots`
 * there? `field` names the locator in the answer (`locator`, or the instance's).
 *
 * @example judgeTenantLocator('granted-roots', ['/srv/t/a'], { paths: ['/etc'] }, 'locator') // → { ok: false, path: 'locator.paths[0]', ... }
 */
export function judgeTenantLocator(
  policy: TenantLocators,
  roots: readonly string[],
  locator: unknown,
  field: string,
): Judgement {
  if (policy === 'any') return OK;
  if (policy === 'sp-only') return spOnly(field, 'set locators');
  const paths = (locator as { paths?: unknown } | null)?.paths;
  if (typeof locator !== 'object' || locator === null || !Array.isArray(paths) || paths.length === 0)
    return { ok: false, path: field, message: 'must be {"paths": [...]}, absolute paths below the granted roots' };
  for (const [i, p] of paths.entries()) {
    const j = judgeTenantPath(p, roots, `${field}.paths[${i}]`);
    if (!j.ok) return j;
  }
  return OK;
}

/** A restore's target other than the instance's own place, as the API takes it. */
export interface RestoreTarget {
  targetPath?: string | undefined;
  targetNamespace?: string | undefined;
}

/**
 * May a tenant restore into another Kubernetes namespace through this connection? Only where
 * tenants name any locator: no namespace is ever granted (`granted-roots` grants host paths).
 */
export function judgeTenantNamespace(policy: TenantLocators, field = 'targetNamespace'): Judgement {
  if (policy === 'any') return OK;
  return spOnly(field, 'restore into another namespace');
}

/** May a tenant restore to `targetPath` (not the instance's own place) through this connection? */
export function judgeTenantTarget(
  policy: TenantLocators,
  roots: readonly string[],
  targetPath: string,
  field = 'targetPath',
): Judgement {
  if (policy === 'any') return OK;
  if (policy === 'sp-only') return spOnly(field, 'restore to another path');
  return judgeTenantPath(targetPath, roots, field);
}
