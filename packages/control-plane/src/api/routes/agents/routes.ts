import { principal, spAdminOnly } from '../../auth.js';
import type { ApiDeps } from '../../context.js';
import { jsonBody, jsonResponse, resource } from '../../openapi.js';
import { IdParam, PageQuery } from '../../schemas.js';
import { pageView } from '../../views.js';
import {
  Agent,
  AgentCredential,
  AgentPage,
  EnrollExchange,
  Enrollment,
  EnrollmentCreate,
  ZonePage,
  ZonePlugins,
} from './schemas.js';
import { agentStateView, zoneView } from './views.js';

/** The exchange of a one-time enrollment token for an agent credential: no bearer token. */
export function enrollRoutes(deps: ApiDeps) {
  const api = resource('Agents');
  api.post('/agents/enroll', {
    summary: 'Spend a one-time enrollment token for the agent’s own credential (used by `cairn-agent enroll`)',
    security: [],
    request: jsonBody(EnrollExchange),
    responses: { 201: jsonResponse(AgentCredential, 'the new agent and its credential') },
    handler: async (c) => {
      const input = c.req.valid('json');
      return c.json(await deps.agents.redeemEnrollment(input.token, input.name ?? '', input.hostname ?? ''), 201);
    },
  });
  return api.app;
}

export function agentRoutes(deps: ApiDeps) {
  const api = resource('Agents');

  api.post('/agent-enrollments', {
    middleware: [spAdminOnly] as const,
    summary: 'Create a one-time enrollment token for a new agent in a zone (sp-admin)',
    request: jsonBody(EnrollmentCreate),
    responses: { 201: jsonResponse(Enrollment, 'the enrollment token') },
    handler: async (c) => {
      const input = c.req.valid('json');
      const e = await deps.agents.createEnrollment(principal(c), input.zone, input.ttlSeconds * 1000);
      return c.json({ token: e.token, zone: e.zone, expiresAt: new Date(e.expiresAt).toISOString() }, 201);
    },
  });

  api.get('/agents', {
    middleware: [spAdminOnly] as const,
    summary: 'List agents with their plugins, slots and running tasks (sp-admin)',
    request: { query: PageQuery },
    responses: { 200: jsonResponse(AgentPage, 'a page of agents') },
    handler: async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.agents.list(q));
      return c.json(pageView(page, agentStateView), 200);
    },
  });

  api.get('/agents/{id}', {
    middleware: [spAdminOnly] as const,
    summary: 'Get an agent (sp-admin)',
    request: { params: IdParam },
    responses: { 200: jsonResponse(Agent, 'the agent') },
    handler: async (c) => c.json(agentStateView(await deps.agents.get(c.req.valid('param').id)), 200),
  });

  api.delete('/agents/{id}', {
    middleware: [spAdminOnly] as const,
    summary:
      'Delete (revoke) an agent: its credential stops working and its session closes at once; its held tasks run out their lease (sp-admin)',
    request: { params: IdParam },
    responses: { 204: { description: 'revoked' } },
    handler: async (c) => {
      await deps.agents.revoke(c.req.valid('param').id);
      return c.body(null, 204);
    },
  });

  api.post('/agents/{id}/rotate-credential', {
    middleware: [spAdminOnly] as const,
    summary:
      'Rotate an agent’s credential: the agent receives the new one on its session, stores it and reconnects with it; the old one works until then (sp-admin)',
    request: { params: IdParam },
    responses: { 202: jsonResponse(Agent, 'the agent, with its rotation state') },
    handler: async (c) => c.json(agentStateView(await deps.agents.rotate(c.req.valid('param').id)), 202),
  });

  api.get('/zones', {
    tags: ['Zones'],
    summary:
      'Zones with agents, provider connections or instances, and how many of their agents are connected, disconnected or draining (a tenant: the zones where it has an offering, without the agents themselves)',
    request: { query: PageQuery },
    responses: { 200: jsonResponse(ZonePage, 'a page of zones') },
    handler: async (c) => {
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.agents.zones(principal(c), q));
      return c.json(
        pageView(page, (z) => zoneView(z.zone, z.agents?.map(agentStateView))),
        200,
      );
    },
  });

  api.get('/plugins', {
    tags: ['Plugins'],
    summary:
      'Provider plugins available per zone, as the agents reported them (a tenant: in the zones where it has an offering, without agent counts)',
    responses: { 200: jsonResponse(ZonePlugins, 'plugins per zone') },
    handler: async (c) => c.json({ items: await deps.agents.plugins(principal(c)) }, 200),
  });

  return api.app;
}
