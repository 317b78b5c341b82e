import { Hono } from 'hono';
import { z } from 'zod';
import { NotFoundError } from '../../domain/errors.js';
import { principal, requireSpAdmin, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { idSchema, nameSchema, zoneSchema } from '../ids.js';
import { body } from '../problem.js';
import { agentView } from '../views.js';

/** The exchange of a one-time enrollment token for an agent credential: no bearer token. */
export function enrollRoutes(deps: ApiDeps) {
  const app = new Hono();
  app.post('/agents/enroll', async (c) => {
    const input = await body(
      c,
      z
        .object({
          token: z.string().min(1),
          name: nameSchema.optional(),
          hostname: z.string().max(255).optional(),
        })
        .strict(),
    );
    const agent = await deps.agents.redeemEnrollment(input.token, input.name ?? '', input.hostname ?? '');
    return c.json(agent, 201);
  });
  return app;
}

export function agentRoutes(deps: ApiDeps) {
  const app = new Hono<Env>();

  app.post('/agent-enrollments', async (c) => {
    const p = requireSpAdmin(c);
    const input = await body(
      c,
      z
        .object({
          zone: zoneSchema,
          ttlSeconds: z
            .number()
            .int()
            .min(60)
            .max(30 * 86400)
            .default(86400),
        })
        .strict(),
    );
    const e = await deps.agents.createEnrollment(input.zone, p.tokenId, input.ttlSeconds * 1000);
    return c.json({ token: e.token, zone: e.zone, expiresAt: new Date(e.expiresAt).toISOString() }, 201);
  });

  app.get('/agents', async (c) => {
    requireSpAdmin(c);
    const items = (await deps.agents.list()).map(agentView);
    return c.json({ items, nextCursor: null });
  });

  app.get('/agents/:id', async (c) => {
    requireSpAdmin(c);
    const id = c.req.param('id');
    const agent = idSchema.safeParse(id).success ? await deps.agents.get(id) : undefined;
    if (!agent) throw new NotFoundError('agent', id);
    return c.json(agentView(agent));
  });

  app.get('/plugins', async (c) => {
    principal(c);
    return c.json({ items: await deps.agents.pluginsByZone() });
  });

  return app;
}
