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
