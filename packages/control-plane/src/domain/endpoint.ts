/**
 * A provider connection's endpoint names the service provider's infrastructure (a repository's
 * host, user, path) and may hold a secret: restic takes a rest-server's credentials only inside
 * its URL (`rest:https://user:pass@host/repo`). These rules say what of it is secret and which of
 * its pieces a tenant must never read.
 */

/** What the API shows in place of an endpoint's password, and of a whole endpoint to a tenant. */
export const MASK = '***';
export const REPOSITORY_WORD = '<repository>';

interface Authority {
  /** Where the authority (`user:pass@host:port`) starts and ends in the endpoint. */
  start: number;
  end: number;
  user: string | undefined;
  password: string | undefined;
  host: string;
}

/** The authority of a `scheme://` endpoint (after an optional restic backend prefix such as `rest:`). */
function authorityOf(endpoint: string): Authority | undefined {
  const slashes = endpoint.indexOf('://');
  if (slashes < 0) return undefined;
  const start = slashes + 3;
  const rest = endpoint.slice(start);
  const len = rest.search(/[/?#]/);
  const end = len < 0 ? endpoint.length : start + len;
  const authority = endpoint.slice(start, end);
  // The last `@` ends the user info: a password may hold an `@` of its own.
  const at = authority.lastIndexOf('@');
  const host = authority.slice(at + 1);
  if (at < 0) return { start, end, user: undefined, password: undefined, host };
  const info = authority.slice(0, at);
  const colon = info.indexOf(':');
  return colon < 0
    ? { start, end, user: info, password: undefined, host }
    : { start, end, user: info.slice(0, colon), password: info.slice(colon + 1), host };
}

/**
 * The endpoint as the API shows it (its password, if any, replaced by `***`), and whether it held
 * one (then the full endpoint is kept sealed, as credentials are).
 *
 * @example maskEndpoint('rest:https://u:pw@host/repo') // {shown: 'rest:https://u:***@host/repo', secret: 'pw'}
 */
export function maskEndpoint(endpoint: string): { shown: string; secret: string | undefined } {
  const a = authorityOf(endpoint);
  if (!a || a.password === undefined || a.password === '') return { shown: endpoint, secret: undefined };
  const shown = `${endpoint.slice(0, a.start)}${a.user}:${MASK}@${a.host}${endpoint.slice(a.end)}`;
  return { shown, secret: a.password };
}

/** Long and specific enough to be the SP's (a path, a host name, user@host), not an everyday word. */
const distinctive = (part: string) => part.length >= 4 && /[/.@:]/.test(part);

/**
 * The pieces of an endpoint that identify the SP's infrastructure, longest first: the endpoint
 * itself (with and without its password, with and without the backend prefix), and of a URL its
 * user@host, host and path; of `sftp:user@host:/path` the same; of a path, the path. A piece is
 * kept only when it is distinctive (at least 4 characters with one of `/ . @ :`), so a short host
 * name such as `backup` alone is not taken for one in a message; the password itself (8+
 * characters) is always one.
 *
 * @example endpointParts('/srv/backup/repo/') // ['/srv/backup/repo']
 */
export function endpointParts(endpoint: string): string[] {
  const parts = new Set<string>();
  const add = (p: string | undefined) => {
    if (p === undefined) return;
    // Without a trailing slash: `/srv/repo/` must also hide `/srv/repo`, and `/srv/repo/locks`
    // becomes `<repository>/locks`.
    parts.add(p.length > 1 ? p.replace(/\/+$/, '') : p);
  };
  const { shown, secret } = maskEndpoint(endpoint);
  add(endpoint);
  add(shown);
  // A restic backend prefix (`rest:`, `sftp:`, `s3:`): what follows is named without it too.
  const prefix = /^[a-z][a-z0-9]*:(?!\/\/)/i.exec(endpoint)?.[0] ?? '';
  const rest = endpoint.slice(prefix.length);
  add(rest);
  add(shown.slice(prefix.length));
  const a = authorityOf(rest);
  if (a) {
    const path = rest.slice(a.end).replace(/[?#].*$/, '');
    const hostname = a.host.replace(/:\d+$/, '');
    const userinfos =
      a.user === undefined
        ? []
        : a.password === undefined
          ? [a.user]
          : [a.user, `${a.user}:${MASK}`, `${a.user}:${a.password}`];
    for (const userinfo of userinfos) {
      add(`${userinfo}@${a.host}`);
      add(`${userinfo}@${hostname}`);
      add(`${userinfo}@${a.host}${path}`);
    }
    add(`${a.host}${path}`);
    add(a.host);
    add(hostname);
    if (path !== '/') add(path);
  } else {
    // `user@host:/path` (sftp), `bucket:path` (b2, gs, azure), `host/bucket/path` (s3), or a path.
    const m = /^(?:([^@/:]+)@)?([^:/]+):(.*)$/.exec(rest);
    if (m) {
      const [, user, host, path] = m as unknown as [string, string | undefined, string, string];
      if (user !== undefined) add(`${user}@${host}`);
      add(host);
      if (path !== '/') add(path);
    } else if (!rest.startsWith('/')) {
      const slash = rest.indexOf('/');
      if (slash > 0) {
        add(rest.slice(0, slash));
        add(rest.slice(slash));
      }
    }
  }
  const out = [...parts].filter(distinctive);
  if (secret !== undefined && secret.length >= 8) out.push(secret);
  return out.sort((x, y) => y.length - x.length);
}

/**
 * `text` with every occurrence of `parts` (longest first, as {@link endpointParts} gives them)
 * replaced by `<repository>`.
 *
 * @example redactText('repository /srv/r is locked', ['/srv/r']) // 'repository <repository> is locked'
 */
export function redactText(text: string, parts: readonly string[]): string {
  let out = text;
  for (const part of parts) if (out.includes(part)) out = out.split(part).join(REPOSITORY_WORD);
  return out;
}
