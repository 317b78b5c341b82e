import { beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Api } from '@cairn/test-harness/api';
import { inProcessFixture } from '../testing/in-process.js';
import type { ControlPlane } from '../server.js';
import { createApp } from './app.js';
import type { ApiDeps } from './context.js';

describe('OpenAPI document and request validation', () => {
  const env = inProcessFixture('sqlite');
  let cp: ControlPlane;
  let api: Api;

  beforeAll(() => {
    cp = env.cp;
    api = env.admin;
  });

  it('serves an OpenAPI 3.1 document of every v1 route, generated from the validating schemas', async () => {
    const res = await fetch(`${cp.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, { required?: string[] }>; securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    for (const [path, method] of [
      ['/v1/agents/enroll', 'post'],
      ['/v1/agent-enrollments', 'post'],
      ['/v1/zones/{zone}/providers', 'post'],
      ['/v1/offerings', 'post'],
      ['/v1/instances', 'post'],
      ['/v1/instances/{id}/offering', 'put'],
      ['/v1/instances/{id}/backups', 'post'],
      ['/v1/backups/{id}/restore', 'post'],
      ['/v1/tasks/{id}', 'get'],
      ['/v1/tasks/{id}/cancel', 'post'],
    ] as const) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
    expect(doc.paths['/v1/instances/{id}/backups']!['post']!.responses['202']).toBeDefined();
    expect(doc.components.schemas['InstanceCreate']!.required).toEqual(expect.arrayContaining(['name', 'zone']));
    expect(doc.components.schemas['Problem']).toBeDefined();
    expect(doc.components.securitySchemes['bearer']).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect((await fetch(`${cp.url}/docs`)).status).toBe(200);
  });

  it('documents every route of the route table, with every answer it may give', async () => {
    // The route table itself: built from the same routes, its handlers never called.
    const app = createApp({ config: { maxBodyBytes: 1024 } } as unknown as ApiDeps, pino({ level: 'silent' }));
    const doc = (await (await fetch(`${cp.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown>; requestBody?: unknown }>>;
    };
    const routes = new Set(
      app.routes
        .filter((r) => r.method !== 'ALL' && r.path !== '/openapi.json')
        .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
    );
    expect(routes.size).toBeGreaterThan(60);
    for (const route of routes) {
      const [method, path] = route.split(' ') as [string, string];
      expect(doc.paths[path]?.[method], route).toBeDefined();
    }
    for (const path of ['/healthz', '/livez', '/readyz', '/metrics'])
      expect(routes.has(`get ${path}`), path).toBe(true);
    expect(Object.keys(doc.paths['/readyz']!['get']!.responses)).toEqual(['200', '503']);
    // Whatever a route may answer: a body over the limit and a busy store on every /v1 route…
    for (const [path, methods] of Object.entries(doc.paths)) {
      if (!path.startsWith('/v1/')) continue;
      for (const [method, op] of Object.entries(methods)) {
        expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(['400', '413', '503']));
      }
    }
    // …a maintenance window where backups start, and a plugin's failure or silence where a route waits for it.
    const answers = (path: string, method = 'post') =>
      doc.paths[path]![method]!.responses as Record<string, { description: string }>;
    for (const path of ['/v1/instances/{id}/backups', '/v1/backup-jobs/{id}/run', '/v1/backup-jobs/{id}/retry'])
      expect(answers(path)['503']!.description, path).toContain('maintenance');
    expect(answers('/v1/backup-jobs/{id}/cancel')['503']!.description).not.toContain('maintenance');
    expect(Object.keys(answers('/v1/backups/{id}/restore'))).toEqual(expect.arrayContaining(['429', '502', '504']));
    expect(Object.keys(answers('/v1/zones/{zone}/providers/{id}/preflight'))).toEqual(
      expect.arrayContaining(['502', '503']),
    );
    expect(Object.keys(answers('/v1/zones/{zone}/providers/{id}/offerings', 'get'))).toEqual(
      expect.arrayContaining(['502', '504']),
    );
  });

  it('refuses a body that is not JSON with 400 unsupported_media_type', async () => {
    const res = await api.call('POST', '/v1/tenants', 'name=acme', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('unsupported_media_type');
  });

  it('takes a request without Content-Type and without a body as no body, and refuses one with a body', async () => {
    // A route whose JSON body is optional (an ad-hoc backup), of an instance that does not exist:
    // a request let through reaches the handler and hears 404.
    const send = (body?: Uint8Array) =>
      fetch(`${cp.url}/v1/instances/ins_00000000000000000000000000/backups`, {
        method: 'POST',
        headers: { authorization: `Bearer ${api.token}` },
        ...(body ? { body } : {}),
      });
    const none = await send();
    expect(none.status).toBe(404);
    expect(((await none.json()) as { code: string }).code).toBe('not_found');
    const some = await send(new TextEncoder().encode('{"mode":"FULL"}'));
    expect(some.status).toBe(400);
    expect(((await some.json()) as { code: string }).code).toBe('unsupported_media_type');
  });

  it('names every bad field and where it is', async () => {
    const res = await api.post('/v1/offerings', {
      name: '',
      zone: 'z',
      providerId: 'nope',
      allowAdhoc: 'yes',
      bogus: 1,
    });
    expect(res.status).toBe(400);
    const paths = res.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['name', 'providerId', 'allowAdhoc', 'allowUserSchedules']));
    const query = await api.get('/v1/tasks?state=sleeping');
    expect(query.status).toBe(400);
    expect(query.body.errors[0].path).toBe('query.state');
  });
});
