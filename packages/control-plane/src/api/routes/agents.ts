import { createRoute } from '@hono/zod-openapi';
import { principal, spAdminOnly } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { errorResponses, jsonBody, jsonResponse, router } from '../openapi.js';
import {
  Agent,
  AgentCredential,
  AgentPage,
  EnrollExchange,
  Enrollment,
  EnrollmentCreate,
  IdParam,
  PageQuery,
  ZonePage,
  ZonePlugins,
} from '../schemas.js';
import { agentStateView, zoneView } from '../views.js';

const tags = ['Agents'];

/** The exchange of a one-time enrollment token for an agent credential: no bearer token. */
export function enrollRoutes(deps: ApiDeps) {
  const app = router();
  app.openapi(
    createRoute({
      method: 'post',
      path: '/agents/enroll',
      tags,
      summary: 'Spend a one-time enrollment token for the agent’s own credential (used by `cairn-agent enroll`)',
      security: [],
      request: jsonBody(EnrollExchange),
      responses: { 201: jsonResponse(AgentCredential, 'the new agent and its credential'), ...errorResponses },
    }),
    async (c) => {
      const input = c.req.valid('json');
      return c.json(await deps.agents.redeemEnrollment(input.token, input.name ?? '', input.hostname ?? ''), 201);
    },
  );
  return app;
}

export function agentRoutes(deps: ApiDeps) {
  const app = router();

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'post',
      path: '/agent-enrollments',
      tags,
      summary: 'Create a one-time enrollment token for a new agent in a zone (sp-admin)',
      request: jsonBody(EnrollmentCreate),
      responses: { 201: jsonResponse(Enrollment, 'the enrollment token'), ...errorResponses },
    }),
    async (c) => {
      const input = c.req.valid('json');
      const e = await deps.agents.createEnrollment(principal(c), input.zone, input.ttlSeconds * 1000);
      return c.json({ token: e.token, zone: e.zone, expiresAt: new Date(e.expiresAt).toISOString() }, 201);
    },
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'get',
      path: '/agents',
      tags,
      summary: 'List agents with their plugins, slots and running tasks (sp-admin)',
      request: { query: PageQuery },
      responses: { 200: jsonResponse(AgentPage, 'a page of agents'), ...errorResponses },
    }),
    async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.agents.list(q));
      return c.json({ items: page.items.map(agentStateView), nextCursor: page.nextCursor }, 200);
    },
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'get',
      path: '/agents/{id}',
      tags,
      summary: 'Get an agent (sp-admin)',
      request: { params: IdParam },
      responses: { 200: jsonResponse(Agent, 'the agent'), ...errorResponses },
    }),
    async (c) => {
      return c.json(agentStateView(await deps.agents.get(c.req.valid('param').id)), 200);
    },
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'delete',
      path: '/agents/{id}',
      tags,
      summary:
        'Delete (revoke) an agent: its credential stops working and its session closes at once; its held tasks run out their lease (sp-admin)',
      request: { params: IdParam },
      responses: { 204: { description: 'revoked' }, ...errorResponses },
    }),
    async (c) => {
      await deps.agents.revoke(c.req.valid('param').id);
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      middleware: [spAdminOnly] as const,
      method: 'post',
      path: '/agents/{id}/rotate-credential',
      tags,
      summary:
        'Rotate an agent’s credential: the agent receives the new one on its session, stores it and reconnects with it; the old one works until then (sp-admin)',
      request: { params: IdParam },
      responses: { 202: jsonResponse(Agent, 'the agent, with its rotation state'), ...errorResponses },
    }),
    async (c) => {
      return c.json(agentStateView(await deps.agents.rotate(c.req.valid('param').id)), 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/zones',
      tags: ['Zones'],
      summary:
        'Zones with agents, provider connections or instances, and how many of their agents are connected, disconnected or draining (a tenant: the zones where it has an offering, without the agents themselves)',
      request: { query: PageQuery },
      responses: { 200: jsonResponse(ZonePage, 'a page of zones'), ...errorResponses },
    }),
    async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.agents.zones(principal(c), q));
      return c.json(
        {
          items: page.items.map((z) => zoneView(z.zone, z.agents?.map(agentStateView))),
          nextCursor: page.nextCursor,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/plugins',
      tags: ['Plugins'],
      summary:
        'Provider plugins available per zone, as the agents reported them (a tenant: in the zones where it has an offering, without agent counts)',
      responses: { 200: jsonResponse(ZonePlugins, 'plugins per zone'), ...errorResponses },
    }),
    async (c) => {
      return c.json({ items: await deps.agents.plugins(principal(c)) }, 200);
    },
  );

  return app;
}
