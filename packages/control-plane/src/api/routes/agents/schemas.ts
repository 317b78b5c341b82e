import { z } from '@hono/zod-openapi';
import { Name, page, Text, Time, Zone } from '../../schemas.js';

export const EnrollmentCreate = z
  .object({
    zone: Zone,
    ttlSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 86400)
      .default(86400),
  })
  .strict()
  .openapi('EnrollmentCreate');
export const Enrollment = z.object({ token: z.string(), zone: z.string(), expiresAt: Time }).openapi('Enrollment');
export const EnrollExchange = z
  .object({ token: z.string().min(1).max(200), name: Name.optional(), hostname: Text(255).optional() })
  .strict()
  .openapi('EnrollExchange');
export const AgentCredential = z
  .object({ agentId: z.string(), credential: z.string(), zone: z.string(), name: z.string() })
  .openapi('AgentCredential');
const PluginInfo = z.object({
  name: z.string(),
  version: z.string(),
  apiVersion: z.number().int(),
  capabilities: z.array(z.string()),
});
export const Agent = z
  .object({
    id: z.string(),
    name: z.string(),
    zone: z.string(),
    hostname: z.string(),
    state: z.string().openapi({
      example: 'connected',
      description:
        '`connected`, `disconnected`, or `draining`: shutting down, finishing its running tasks and offered no new ones',
    }),
    slots: z.number().int(),
    plugins: z.array(PluginInfo),
    runningTasks: z.number().int(),
    maintenance: z.object({ enabled: z.boolean(), message: z.string(), source: z.enum(['api', 'agent']) }).openapi({
      description:
        'the agent’s own maintenance: set through the API (`source: api`, PUT /v1/agents/{id}/maintenance) or by `cairn-agent drain` on its host (`source: agent`)',
    }),
    agentVersion: z.string(),
    lastSeenAt: Time.nullable(),
    createdAt: Time,
    credential: z
      .object({
        rotation: z.enum(['none', 'pending']).openapi({
          description: '`pending`: a new credential waits for the agent to connect and authenticate with it',
        }),
        requestedAt: Time.nullable(),
        rotatedAt: Time.nullable().openapi({ description: 'when the agent last switched to a rotated credential' }),
      })
      .openapi({ description: 'the state of the agent credential (never the credential itself)' }),
  })
  .openapi('Agent');
export const AgentPage = page(Agent).openapi('AgentPage');
export const ZoneInfo = z
  .object({
    zone: z.string(),
    agentStates: z
      .object({ connected: z.number().int(), disconnected: z.number().int(), draining: z.number().int() })
      .openapi({ description: 'how many of the zone’s agents are in each state (see Agent `state`)' }),
    agents: z.array(Agent).optional().openapi({ description: 'the zone’s agents (shown to the sp-admin only)' }),
  })
  .openapi('Zone');
export const ZonePage = page(ZoneInfo).openapi('ZonePage');
export const ZonePlugins = z
  .object({
    items: z.array(
      PluginInfo.extend({
        zone: z.string(),
        agents: z
          .number()
          .int()
          .optional()
          .openapi({ description: 'live agents of the zone that run it (shown to the sp-admin only)' }),
      }),
    ),
  })
  .openapi('ZonePlugins');
