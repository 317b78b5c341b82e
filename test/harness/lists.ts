import { expect } from 'vitest';
import { Api } from './api.js';

/** List routes every role may read. */
const TENANT_LISTS = [
  '/v1/instances',
  '/v1/tasks',
  '/v1/backups',
  '/v1/events',
  '/v1/offerings',
  '/v1/plugins',
  '/v1/zones',
  '/v1/usage',
];
/** List routes only an sp-admin reads. */
const ADMIN_LISTS = ['/v1/tenants', '/v1/agents'];

/**
 * After something hostile happened, every list route still answers 200 for every role: nothing
 * stored meanwhile poisons a read. `zones` adds each zone's provider list (sp-admin).
 */
export async function everyListAnswers(
  url: string,
  tokens: { spAdmin: string; tenantAdmin?: string; tenantUser?: string },
  zones: string[] = [],
): Promise<void> {
  const admin = new Api(url, tokens.spAdmin);
  const adminRoutes = [...TENANT_LISTS, ...ADMIN_LISTS, ...zones.map((z) => `/v1/zones/${z}/providers`)];
  for (const route of adminRoutes) {
    const r = await admin.get(route);
    expect(r.status, `sp-admin GET ${route}: ${JSON.stringify(r.body)}`).toBe(200);
  }
  const tasks = (await admin.get<{ items: { id: string }[] }>('/v1/tasks?limit=20')).body.items;
  for (const t of tasks) {
    for (const route of [`/v1/tasks/${t.id}`, `/v1/tasks/${t.id}/progress`]) {
      const r = await admin.get(route);
      expect(r.status, `sp-admin GET ${route}: ${JSON.stringify(r.body)}`).toBe(200);
    }
  }
  for (const [role, token] of Object.entries(tokens)) {
    if (role === 'spAdmin' || token === undefined) continue;
    const api = new Api(url, token);
    for (const route of TENANT_LISTS) {
      const r = await api.get(route);
      expect(r.status, `${role} GET ${route}: ${JSON.stringify(r.body)}`).toBe(200);
    }
  }
}

/** Every item of a paged list route, page after page (500 at a time) until `nextCursor` is null. */
export async function allPages<T>(api: Api, route: string): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const sep = route.includes('?') ? '&' : '?';
    const page = (await api.expect(
      200,
      'GET',
      `${route}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    )) as { items: T[]; nextCursor: string | null };
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}
