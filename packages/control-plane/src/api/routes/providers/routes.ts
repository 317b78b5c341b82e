import { InputError } from '../../../domain/errors.js';
import { principal, spAdminOnly } from '../../auth.js';
import type { ApiDeps } from '../../context.js';
import { commitsItself } from '../../idempotency.js';
import { jsonBody, jsonResponse, problemResponse, resource, upstreamResponses } from '../../openapi.js';
import { NoQuery, PageQuery, Zone, ZoneParam } from '../../schemas.js';
import { pageView } from '../../views.js';
import { Task } from '../tasks/schemas.js';
import { taskLocation, taskView } from '../tasks/views.js';
import {
  DriftReport,
  OfferingsWait,
  PreflightAnswer,
  PreflightBody,
  PreflightPending,
  Provider,
  ProviderCreate,
  ProviderCreated,
  ProviderOfferings,
  ProviderPage,
  ProviderPatch,
  ProviderTenantParams,
  SyncQuery,
  TenantRoots,
  TenantRootsPut,
  ZoneIdParams,
} from './schemas.js';
import { driftView, providerView } from './views.js';

export function providerRoutes(deps: ApiDeps) {
  const api = resource('Provider connections');

  const zoneOf = (raw: string) => {
    const zone = Zone.safeParse(raw);
    if (!zone.success) {
      throw new InputError(`zone "${raw}" is not valid`, [
        { path: 'path.zone', message: zone.error.issues[0]!.message },
      ]);
    }
    return zone.data;
  };
  /** The connection the path names: its zone checked (400), the rest the service's to find (404). */
  const at = (params: { zone: string; id: string }) => ({ zone: zoneOf(params.zone), id: params.id });

  api.post('/zones/{zone}/providers', {
    middleware: [spAdminOnly] as const,
    summary: 'Create a provider connection (sp-admin); credentials are write-only',
    request: { params: ZoneParam, ...jsonBody(ProviderCreate) },
    responses: {
      201: jsonResponse(
        ProviderCreated,
        'the provider connection, with warnings when no agent of the zone can take its tasks yet',
      ),
    },
    handler: async (c) => {
      const zone = zoneOf(c.req.valid('param').zone);
      const input = c.req.valid('json');
      const { provider: row, warnings } = await deps.providers.create({
        zone,
        name: input.name,
        plugin: input.plugin,
        endpoint: input.endpoint ?? null,
        config: input.config ?? {},
        credentials: input.credentials ?? null,
        ...(input.tenantLocators ? { tenantLocators: input.tenantLocators } : {}),
        ...(input.exportTo !== undefined ? { exportTo: input.exportTo } : {}),
      });
      return c.json({ ...providerView(row), warnings }, 201, { Location: `/v1/zones/${zone}/providers/${row.id}` });
    },
  });

  api.get('/zones/{zone}/providers', {
    middleware: [spAdminOnly] as const,
    summary: 'List the provider connections of a zone (sp-admin)',
    request: { params: ZoneParam, query: PageQuery },
    responses: { 200: jsonResponse(ProviderPage, 'a page of provider connections') },
    handler: async (c) => {
      const zone = zoneOf(c.req.valid('param').zone);
      const page = await deps.cursors.page(c, c.req.valid('query'), (q) => deps.providers.list(zone, q));
      return c.json(pageView(page, providerView), 200);
    },
  });

  api.get('/zones/{zone}/providers/{id}', {
    middleware: [spAdminOnly] as const,
    summary: 'Get a provider connection (sp-admin)',
    request: { params: ZoneIdParams },
    responses: { 200: jsonResponse(Provider, 'the provider connection') },
    handler: async (c) => c.json(providerView(await deps.providers.get(at(c.req.valid('param')))), 200),
  });

  api.patch('/zones/{zone}/providers/{id}', {
    middleware: [spAdminOnly] as const,
    summary: 'Edit a provider connection (sp-admin); the plugin cannot change; applies to future tasks',
    request: { params: ZoneIdParams, ...jsonBody(ProviderPatch) },
    responses: { 200: jsonResponse(Provider, 'the provider connection after the edit') },
    handler: async (c) => {
      const { plugin: _never, ...patch } = c.req.valid('json');
      return c.json(providerView(await deps.providers.update(at(c.req.valid('param')), patch)), 200);
    },
  });

  api.delete('/zones/{zone}/providers/{id}', {
    middleware: [spAdminOnly] as const,
    summary: 'Delete a provider connection no offering uses and no connection exports into (sp-admin)',
    request: { params: ZoneIdParams },
    responses: { 204: { description: 'deleted' } },
    handler: async (c) => {
      await deps.providers.delete(at(c.req.valid('param')));
      return c.body(null, 204);
    },
  });

  api.get('/zones/{zone}/providers/{id}/offerings', {
    middleware: [spAdminOnly] as const,
    summary: 'List the offerings the provider exposes, live through its plugin on an agent of the zone (sp-admin)',
    request: { params: ZoneIdParams, query: OfferingsWait },
    responses: {
      200: jsonResponse(ProviderOfferings, 'the provider offerings'),
      502: problemResponse('the plugin failed'),
      504: problemResponse('no agent answered in time'),
    },
    handler: async (c) => {
      const out = await deps.providers.offerings(principal(c), at(c.req.valid('param')), c.req.valid('query').waitMs);
      return c.json({ items: out.items as { externalId: string; name: string }[], taskId: out.task.id }, 200);
    },
  });

  api.post('/zones/{zone}/providers/{id}/sync', {
    middleware: [spAdminOnly] as const,
    summary:
      'Sync the records with the restore points the provider lists, through its plugin on an agent of the zone (sp-admin); a sync queued or running is answered again',
    request: { params: ZoneIdParams, query: SyncQuery },
    responses: { 202: jsonResponse(Task, 'the sync task') },
    handler: async (c) => {
      const confirm = c.req.valid('query').confirm === 'true';
      const task = await deps.providers.sync(principal(c), at(c.req.valid('param')), confirm);
      return c.json(taskView(task, await deps.audiences.of(principal(c))), 202, taskLocation(task));
    },
  });

  api.post('/zones/{zone}/providers/{id}/prune', {
    middleware: [spAdminOnly] as const,
    summary:
      "Prune the connection's repository now, through its plugin on an agent of the zone (sp-admin): what deletes forgot is freed. It also runs every CAIRN_PRUNE_INTERVAL_S, and waits while maintenance covers the zone; a prune queued or running is answered again",
    request: { params: ZoneIdParams, query: NoQuery },
    responses: { 202: jsonResponse(Task, 'the prune task') },
    handler: async (c) => {
      const task = await deps.providers.prune(principal(c), at(c.req.valid('param')));
      return c.json(taskView(task, await deps.audiences.of(principal(c))), 202, taskLocation(task));
    },
  });

  api.post('/zones/{zone}/providers/{id}/preflight', {
    // It waits for an agent: its one write commits before the wait.
    middleware: [spAdminOnly, commitsItself] as const,
    summary:
      'Check the connection (and, given a locator, that instance) through its plugin on a live agent of the zone, and wait for the checks (sp-admin); with initialise, a repository that does not exist yet is created; the body is optional',
    request: { params: ZoneIdParams, query: NoQuery, ...jsonBody(PreflightBody, false) },
    responses: {
      200: jsonResponse(PreflightAnswer, 'the checks, whether they passed or not'),
      202: jsonResponse(PreflightPending, 'still running after CAIRN_PREFLIGHT_WAIT_MS'),
      502: upstreamResponses[502],
      503: problemResponse(
        'no live agent of the zone runs the plugin (no_agent), or the store is busy (store_busy); nothing was queued',
      ),
    },
    handler: async (c) => {
      // Without a JSON body the validator leaves nothing to read: the connection alone.
      const body = c.req.valid('json') as { locator?: unknown; initialise?: boolean } | undefined;
      const out = await deps.providers.preflight(
        principal(c),
        at(c.req.valid('param')),
        body ?? {},
        deps.config.preflightWaitMs,
      );
      const task = taskView(out.task, await deps.audiences.of(principal(c)));
      if (!out.report) return c.json({ task }, 202, taskLocation(out.task));
      return c.json({ ...out.report, task }, 200);
    },
  });

  api.get('/zones/{zone}/providers/{id}/drift', {
    middleware: [spAdminOnly] as const,
    summary: "The drift report of the provider's last completed sync (sp-admin)",
    request: { params: ZoneIdParams, query: NoQuery },
    responses: { 200: jsonResponse(DriftReport, 'the drift report') },
    handler: async (c) => {
      const { providerId, drift } = await deps.providers.drift(at(c.req.valid('param')));
      return c.json(driftView(providerId, drift), 200);
    },
  });

  api.get('/zones/{zone}/providers/{id}/tenant-roots/{tenantId}', {
    middleware: [spAdminOnly] as const,
    summary: 'The host roots a tenant may name in its locators and restore targets on this connection (sp-admin)',
    request: { params: ProviderTenantParams },
    responses: { 200: jsonResponse(TenantRoots, 'the roots (empty: none granted)') },
    handler: async (c) => {
      const params = c.req.valid('param');
      return c.json(await deps.providers.tenantRoots(at(params), params.tenantId), 200);
    },
  });

  api.put('/zones/{zone}/providers/{id}/tenant-roots/{tenantId}', {
    middleware: [spAdminOnly] as const,
    summary:
      "Grant a tenant host roots on this connection (sp-admin): with tenantLocators granted-roots, the tenant may name paths below them; an empty list withdraws the grant. Refused (409 locator_claims_in_use) while the tenant's instances use paths the change would take away",
    request: { params: ProviderTenantParams, ...jsonBody(TenantRootsPut) },
    responses: { 200: jsonResponse(TenantRoots, 'the roots now granted') },
    handler: async (c) => {
      const params = c.req.valid('param');
      return c.json(await deps.providers.setTenantRoots(at(params), params.tenantId, c.req.valid('json').roots), 200);
    },
  });

  return api.app;
}
