import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from './client.js';

/**
 * A filtered list reads a bounded stretch of rows a page, so a page may be short, or empty, and
 * still have a cursor: `--all` follows cursors, not page sizes, to the end.
 */
describe('Client.list', () => {
  const pages: Record<string, { items: string[]; nextCursor: string | null }> = {
    first: { items: ['a'], nextCursor: 'c1' },
    c1: { items: [], nextCursor: 'c2' },
    c2: { items: ['b'], nextCursor: null },
  };
  const asked: string[] = [];
  const server = createServer((req, res) => {
    const cursor = new URL(req.url!, 'http://x').searchParams.get('cursor') ?? 'first';
    asked.push(cursor);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(pages[cursor]));
  });
  let client: Client;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = new Client({
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      token: 't',
      context: null,
    });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('with all, follows every cursor, past an empty page, to the end', async () => {
    expect(await client.list<string>('/v1/tasks', { state: 'running' }, { all: true })).toEqual({
      items: ['a', 'b'],
      nextCursor: null,
    });
    expect(asked).toEqual(['first', 'c1', 'c2']);
  });
});

/**
 * A request refused for its tenant's request rate (`429 too_many_requests`, nothing done) is sent
 * again after the Retry-After it was given, up to five times, each wait said on stderr; any other
 * refusal is the command's error at once.
 */
describe('Client.request under a request rate', () => {
  /** What the server answers each request to a path, in turn; the last one from then on. */
  let answers: Record<string, { status: number; code?: string; retryAfter?: string }[]>;
  const asked: string[] = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname;
    asked.push(`${req.method} ${path}`);
    const queue = answers[path]!;
    const a = queue.length > 1 ? queue.shift()! : queue[0]!;
    if (a.retryAfter !== undefined) res.setHeader('retry-after', a.retryAfter);
    res.statusCode = a.status;
    res.setHeader('content-type', a.status < 300 ? 'application/json' : 'application/problem+json');
    res.end(JSON.stringify(a.status < 300 ? { ok: true } : { status: a.status, code: a.code, detail: 'no' }));
  });
  const notes: string[] = [];
  let client: Client;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = new Client({ url, token: 't', context: null }, (line) => notes.push(line));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('sends a refused request again after Retry-After, and answers what the server then answers', async () => {
    answers = {
      '/v1/instances': [
        { status: 429, code: 'too_many_requests', retryAfter: '1' },
        { status: 429, code: 'too_many_requests', retryAfter: '0' },
        { status: 201 },
      ],
    };
    asked.length = 0;
    notes.length = 0;
    const started = performance.now();
    expect(await client.request('POST', '/v1/instances', { body: { name: 'vm' } })).toEqual({ ok: true });
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
    expect(asked).toEqual(Array(3).fill('POST /v1/instances'));
    expect(notes).toEqual([
      "POST /v1/instances: the server's request rate for this tenant is used up; sending again in 1 s",
      "POST /v1/instances: the server's request rate for this tenant is used up; sending again in 0 s",
    ]);
  });

  it('gives up after five more sends, and never sends again for another refusal', async () => {
    answers = { '/v1/tasks': [{ status: 429, code: 'too_many_requests', retryAfter: '0' }] };
    asked.length = 0;
    await expect(client.get('/v1/tasks')).rejects.toThrow(/too_many_requests, HTTP 429/);
    expect(asked).toHaveLength(6);
    answers = { '/v1/events/stream': [{ status: 429, code: 'too_many_streams', retryAfter: '0' }] };
    asked.length = 0;
    await expect(client.get('/v1/events/stream')).rejects.toThrow(/too_many_streams, HTTP 429/);
    expect(asked).toHaveLength(1);
  });
});
