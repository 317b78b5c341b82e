// expect: clean
import type { Selectable } from 'kysely';
import { OpenAPIHono } from '@hono/zod-openapi';
import { NotFoundError } from '../../../domain/errors.js';
import type { AgentRepository } from '../../../store/agent-repository.js';
import { storeReady, type Db } from '../../../store/db.js';
import { decodeEventCursor, eventPageOf } from '../../../store/page.js';
import type { EventRow } from '../../../store/schema.js';
import type { ApiDeps } from '../../context.js';

export type Used = [Selectable<EventRow>, AgentRepository, Db];
export async function handler(deps: ApiDeps) {
  const agents = await deps.agents.list({ limit: 1 });
  return [OpenAPIHono, NotFoundError, storeReady, decodeEventCursor, eventPageOf, agents];
}
