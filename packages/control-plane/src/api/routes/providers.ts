import { Hono } from 'hono';
import { z } from 'zod';
import { InputError, NotFoundError } from '../../domain/errors.js';
import { requireSpAdmin, type Env } from '../auth.js';
import type { ApiDeps } from '../context.js';
import { idSchema, nameSchema, zoneSchema } from '../ids.js';
import { body } from '../problem.js';
import { providerView } from '../views.js';

const pluginName = z
  .string()
  .regex(/^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/, 'must be an npm package name, e.g. @cairn/plugin-dummy')
  .max(214);
const object = z.record(z.string(), z.unknown());

export function providerRoutes(deps: ApiDeps) {
  const app = new Hono<Env>();

  const zoneOf = (raw: string) => {
    const zone = zoneSchema.safeParse(raw);
    if (!zone.success)
      throw new InputError(`zone "${raw}" is not valid`, [{ path: 'zone', message: zone.error.issues[0]!.message }]);
    return zone.data;
  };
  const providerIn = async (zone: string, id: string) => {
    const row = idSchema.safeParse(id).success ? await deps.catalog.getProvider(id) : undefined;
    if (!row || row.zone !== zone) throw new NotFoundError('provider connection', id);
    return row;
  };

  app.post('/zones/:zone/providers', async (c) => {
    requireSpAdmin(c);
    const zone = zoneOf(c.req.param('zone'));
    const input = await body(
      c,
      z
        .object({
          name: nameSchema,
          plugin: pluginName,
          endpoint: z.string().max(2000).nullable().optional(),
          config: object.optional(),
          credentials: object.nullable().optional(),
        })
        .strict(),
    );
    const row = await deps.catalog.createProvider({
      zone,
      name: input.name,
      plugin: input.plugin,
      endpoint: input.endpoint ?? null,
      config: input.config ?? {},
      credentials: input.credentials ?? null,
    });
    return c.json(providerView(row), 201, { Location: `/v1/zones/${zone}/providers/${row.id}` });
  });

  app.get('/zones/:zone/providers', async (c) => {
    requireSpAdmin(c);
    const zone = zoneOf(c.req.param('zone'));
    return c.json({ items: (await deps.catalog.listProviders(zone)).map(providerView), nextCursor: null });
  });

  app.get('/zones/:zone/providers/:id', async (c) => {
    requireSpAdmin(c);
    return c.json(providerView(await providerIn(zoneOf(c.req.param('zone')), c.req.param('id'))));
  });

  app.patch('/zones/:zone/providers/:id', async (c) => {
    requireSpAdmin(c);
    const row = await providerIn(zoneOf(c.req.param('zone')), c.req.param('id'));
    const input = await body(
      c,
      z
        .object({
          name: nameSchema.optional(),
          endpoint: z.string().max(2000).nullable().optional(),
          config: object.optional(),
          credentials: object.nullable().optional(),
          plugin: z.never({ error: 'the plugin of a provider connection cannot change' }).optional(),
        })
        .strict(),
    );
    await deps.catalog.updateProvider(row.id, input);
    return c.json(providerView((await deps.catalog.getProvider(row.id))!));
  });

  app.delete('/zones/:zone/providers/:id', async (c) => {
    requireSpAdmin(c);
    const row = await providerIn(zoneOf(c.req.param('zone')), c.req.param('id'));
    await deps.catalog.deleteProvider(row.id);
    return c.body(null, 204);
  });

  return app;
}
