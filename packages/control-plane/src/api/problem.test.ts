import { Hono } from 'hono';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Role } from '../domain/access.js';
import { UpstreamError } from '../domain/errors.js';
import { Audiences } from './audience.js';
import type { Env } from './auth.js';
import { errorHandler } from './problem.js';

const ENDPOINT = 'rest:https://cairn:longpassword@repo.sp.example:8000/tenants/acme';
const SAID =
  'asking @cairn/plugin-restic for the power state failed (task tsk_1): REPOSITORY_LOCKED: restic: repository rest:https://cairn:***@repo.sp.example:8000/tenants/acme is locked';

/** A real Hono app with the one error handler, whose route fails the way a plugin failure through an agent does. */
function app() {
  const a = new Hono<Env>();
  a.onError(errorHandler(pino({ level: 'silent' }), new Audiences(() => Promise.resolve([ENDPOINT]))));
  a.get('/as/:role', (c) => {
    c.set('principal', { tokenId: 'tok_1', tenantId: 'ten_1', role: c.req.param('role') as Role });
    throw new UpstreamError(502, 'provider_failed', SAID);
  });
  return a;
}

describe('an upstream failure’s detail', () => {
  it('names no SP repository endpoint to a tenant; an sp-admin reads it whole', async () => {
    const a = app();
    const tenant = (await (await a.request('/as/tenant-user')).json()) as { status: number; detail: string };
    expect(tenant.status).toBe(502);
    expect(tenant.detail).toBe(
      'asking @cairn/plugin-restic for the power state failed (task tsk_1): REPOSITORY_LOCKED: restic: repository <repository> is locked',
    );
    const admin = (await (await a.request('/as/sp-admin')).json()) as { detail: string };
    expect(admin.detail).toBe(SAID);
  });
});
