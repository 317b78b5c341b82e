/**
 * The console's one door to the control plane: the same HTTP API every client uses, with the
 * token the user typed. The token lives in this tab's sessionStorage only (never a URL, never
 * localStorage), so closing the tab forgets it.
 */
const TOKEN_KEY = 'cairn.token';

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** An answer that was not 2xx, with the API's problem detail (RFC 9457) when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
    this.name = 'ApiError';
  }
}

/** A list page as every list of the API answers it. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Calls the API with the stored token; resolves with the JSON body, rejects with an ApiError. */
export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${storedToken() ?? ''}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!res.ok) {
    const detail = typeof json['detail'] === 'string' ? json['detail'] : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, typeof json['code'] === 'string' ? json['code'] : 'error', detail);
  }
  return json as T;
}

/** A path with its query: `undefined` values are left out. */
export function withQuery(path: string, query: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * Reads a list page after page (`limit` each) until it ends, `enough` says the items read
 * suffice, or `maxPages` were read; `partial` says the list went on beyond what was read.
 */
export async function readPages<T>(
  path: string,
  opts: { limit: number; maxPages: number; enough?: (items: T[]) => boolean },
): Promise<{ items: T[]; partial: boolean }> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < opts.maxPages; i++) {
    const p = await api<Page<T>>('GET', withQuery(path, { limit: String(opts.limit), cursor }));
    items.push(...p.items);
    if (!p.nextCursor || opts.enough?.(items)) return { items, partial: false };
    cursor = p.nextCursor;
  }
  return { items, partial: true };
}
