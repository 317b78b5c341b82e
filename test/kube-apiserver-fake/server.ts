/**
 * The HTTP face of the fake: discovery, list/get/create/replace/delete, the status subresource,
 * pods' log subresource,
 * label selectors, watches and Status bodies, on loopback with a bearer token.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { exactlyOneSource, loadSnapshotSchemas, validate } from './schema.js';
import {
  apiVersion,
  RESOURCES,
  StatusError,
  type KubeObject,
  type ResourceType,
  type Store,
  type WatchEvent,
} from './store.js';

export interface ApiServerOptions {
  store: Store;
  token: string;
  now: () => Date;
  /** What a pod's container printed, for `pods/<name>/log`; undefined while it has not run. */
  podLog: (namespace: string, name: string) => string | undefined;
  /** The server's certificate and key (PEM). */
  cert: string;
  key: string;
}

const schemas = loadSnapshotSchemas();

export async function listen(opts: ApiServerOptions): Promise<{ server: Server; url: string }> {
  const server = createServer({ cert: opts.cert, key: opts.key }, (req, res) => {
    handle(opts, req, res).catch((err: unknown) => sendError(res, err));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `https://127.0.0.1:${port}` };
}

async function handle(opts: ApiServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.headers.authorization !== `Bearer ${opts.token}`) throw new StatusError(401, 'Unauthorized', 'Unauthorized');
  const url = new URL(req.url ?? '/', 'http://fake');
  const parts = url.pathname.split('/').filter(Boolean);
  const discovery = discover(parts);
  if (discovery) return send(res, 200, discovery);
  const route = routeOf(parts);
  if (!route) throw new StatusError(404, 'NotFound', `the server could not find the requested resource`);
  const { type, namespace, name, subresource } = route;
  if (type.namespaced && namespace && type.plural !== 'namespaces' && req.method === 'POST')
    opts.store.get(RESOURCES[0]!, undefined, namespace); // 404 for a namespace that does not exist
  const method = req.method ?? 'GET';
  if (subresource === 'log') {
    if (method !== 'GET') throw new StatusError(405, 'MethodNotAllowed', `${method} is not supported on pods/log`);
    opts.store.get(type, namespace, name!); // 404 for a pod that does not exist
    const log = opts.podLog(namespace!, name!);
    if (log === undefined)
      throw new StatusError(400, 'BadRequest', `container in pod "${name!}" is waiting to start: ContainerCreating`);
    res.writeHead(200, { 'content-type': 'text/plain' });
    return void res.end(log);
  }
  if (method === 'GET' && !name) {
    const selector = parseSelector(url.searchParams.get('labelSelector') ?? '');
    const matches = (o: KubeObject) => selector(o.metadata.labels ?? {});
    if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1')
      return watch(opts.store, type, namespace, url.searchParams.get('resourceVersion'), matches, req, res);
    const items = opts.store.list(type, namespace).filter(matches);
    return send(res, 200, {
      apiVersion: apiVersion(type),
      kind: `${type.kind}List`,
      metadata: { resourceVersion: String(opts.store.resourceVersion) },
      items,
    });
  }
  if (method === 'GET') return send(res, 200, opts.store.get(type, namespace, name!));
  if (method === 'DELETE' && name) return send(res, 200, opts.store.delete(type, namespace, name, opts.now()));
  if (method === 'POST' && !name) {
    const body = await readObject(req, type);
    checkBody(type, body);
    if (type.namespaced && body.metadata.namespace && body.metadata.namespace !== namespace)
      throw new StatusError(
        400,
        'BadRequest',
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    if (!body.metadata.name && !body.metadata.generateName)
      throw new StatusError(
        422,
        'Invalid',
        `${type.kind} is invalid: metadata.name: Required value: name or generateName is required`,
      );
    return send(res, 201, opts.store.create(type, namespace, body, opts.now()));
  }
  if (method === 'PUT' && name) {
    const body = await readObject(req, type);
    checkBody(type, body);
    if (body.metadata.name !== name)
      throw new StatusError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
    if (subresource && (subresource !== 'status' || !type.hasStatus))
      throw new StatusError(404, 'NotFound', `the server could not find the requested resource`);
    return send(res, 200, opts.store.update(type, namespace, body, subresource));
  }
  throw new StatusError(405, 'MethodNotAllowed', `${method} is not supported on this resource by the fake`);
}

function discover(parts: string[]): unknown {
  const resourceList = (group: string) => ({
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/v1` : 'v1',
    resources: RESOURCES.filter((r) => r.group === group).flatMap((r) => [
      {
        name: r.plural,
        singularName: r.kind.toLowerCase(),
        namespaced: r.namespaced,
        kind: r.kind,
        verbs: ['create', 'delete', 'get', 'list', 'update', 'watch'],
        ...(r.shortNames ? { shortNames: r.shortNames } : {}),
      },
      ...(r.plural === 'pods'
        ? [{ name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] }]
        : []),
      ...(r.hasStatus
        ? [
            {
              name: `${r.plural}/status`,
              singularName: '',
              namespaced: r.namespaced,
              kind: r.kind,
              verbs: ['get', 'update'],
            },
          ]
        : []),
    ]),
  });
  const joined = parts.join('/');
  if (joined === 'api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] };
  if (joined === 'api/v1') return resourceList('');
  const groups = [...new Set(RESOURCES.map((r) => r.group).filter(Boolean))];
  if (joined === 'apis')
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: groups.map((g) => ({
        name: g,
        versions: [{ groupVersion: `${g}/v1`, version: 'v1' }],
        preferredVersion: { groupVersion: `${g}/v1`, version: 'v1' },
      })),
    };
  if (joined === 'version') return { major: '1', minor: '31', gitVersion: 'v1.31.0-cairn-fake' };
  if (parts[0] === 'apis' && parts.length === 3 && groups.includes(parts[1]!) && parts[2] === 'v1')
    return resourceList(parts[1]!);
  return undefined;
}

interface Route {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: 'status' | 'log';
}

function routeOf(parts: string[]): Route | undefined {
  let group: string;
  let rest: string[];
  if (parts[0] === 'api' && parts[1] === 'v1') [group, rest] = ['', parts.slice(2)];
  else if (parts[0] === 'apis' && parts[2] === 'v1') [group, rest] = [parts[1]!, parts.slice(3)];
  else return undefined;
  const byName = (plural: string | undefined) => RESOURCES.find((r) => r.group === group && r.plural === plural);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const nested = byName(rest[2]);
    if (!nested?.namespaced) return undefined;
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const type = byName(rest[0]);
  if (!type || (type.namespaced && rest.length > 1 && !namespace)) return undefined;
  const sub = rest[2];
  if (rest.length > 3 || (sub !== undefined && sub !== 'status' && !(sub === 'log' && type.plural === 'pods')))
    return undefined;
  return {
    type,
    ...(namespace ? { namespace } : {}),
    ...(rest[1] ? { name: rest[1] } : {}),
    ...(sub ? { subresource: sub } : {}),
  };
}

/** Equality-based selectors (`a=b`, `a==b`, `a!=b`) and existence (`a`, `!a`), comma-joined. */
function parseSelector(text: string): (labels: Record<string, string>) => boolean {
  const tests = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((term) => {
      const m = /^(!?)([A-Za-z0-9._/-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*))?$/.exec(term);
      if (!m) throw new StatusError(400, 'BadRequest', `unable to parse requirement: ${term}`);
      const [, not, key, op, value] = m as unknown as [string, string, string, string | undefined, string];
      if (!op) return (l: Record<string, string>) => key in l !== (not === '!');
      if (not) throw new StatusError(400, 'BadRequest', `unable to parse requirement: ${term}`);
      return op === '!='
        ? (l: Record<string, string>) => l[key] !== value
        : (l: Record<string, string>) => l[key] === value;
    });
  return (labels) => tests.every((t) => t(labels));
}

async function readObject(req: IncomingMessage, type: ResourceType): Promise<KubeObject> {
  const type_ = req.headers['content-type'] ?? '';
  if (!type_.startsWith('application/json'))
    throw new StatusError(415, 'UnsupportedMediaType', `the fake takes application/json bodies, not ${type_}`);
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new StatusError(400, 'BadRequest', 'the body is not JSON');
  }
  if (typeof body !== 'object' || body === null || typeof (body as KubeObject).metadata !== 'object')
    throw new StatusError(422, 'Invalid', `${type.kind} is invalid: metadata: Required value`);
  return body as KubeObject;
}

function checkBody(type: ResourceType, body: KubeObject): void {
  if (body.kind !== undefined && body.kind !== type.kind)
    throw new StatusError(400, 'BadRequest', `the kind ${body.kind} does not match ${type.kind}`);
  if (body.apiVersion !== undefined && body.apiVersion !== apiVersion(type))
    throw new StatusError(400, 'BadRequest', `the apiVersion ${body.apiVersion} does not match ${apiVersion(type)}`);
  const schema = schemas.get(type.plural);
  if (!schema) return;
  const problems = [...validate(schema, body), ...exactlyOneSource(type.plural, body)];
  if (problems.length)
    throw new StatusError(
      422,
      'Invalid',
      `${type.kind}.${type.group} "${body.metadata.name}" is invalid: ${problems.join(', ')}`,
    );
}

function watch(
  store: Store,
  type: ResourceType,
  namespace: string | undefined,
  rv: string | null,
  matches: (o: KubeObject) => boolean,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const from = rv ? Number(rv) : store.resourceVersion;
  const relevant = (e: WatchEvent) =>
    e.object.kind === type.kind && (!namespace || e.object.metadata.namespace === namespace) && matches(e.object);
  const backlog = store.since(type, from).filter(relevant);
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
  const write = (e: WatchEvent) => res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
  backlog.forEach(write);
  const onChange = (e: WatchEvent) => {
    if (relevant(e)) write(e);
  };
  store.on('change', onChange);
  const stop = () => {
    store.off('change', onChange);
    res.end();
  };
  req.on('close', stop);
  res.on('close', () => store.off('change', onChange));
}

function send(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: unknown): void {
  const e = err instanceof StatusError ? err : new StatusError(500, 'InternalError', String(err));
  if (res.headersSent) return void res.end();
  send(res, e.code, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: e.message,
    reason: e.reason,
    code: e.code,
  });
}
