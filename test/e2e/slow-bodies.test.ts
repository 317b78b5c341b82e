import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { FROZEN_MEDIAN_MS, latencyFigures, probe } from '@cairn/test-harness/latency';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

/** Long enough that no slow client below is cut off while the reads are measured. */
const REQUEST_TIMEOUT_MS = 12_000;

interface SlowClient {
  /** What the server answered so far. */
  answer(): string;
  /** Resolves when the server closed the connection: what it answered (if anything) and when. */
  closed: Promise<{ answer: string; afterMs: number }>;
  stop(): void;
}

/**
 * A raw connection that sends a mutating request's line and headers, then `body` one byte every
 * `everyMs` (an empty `body` with a non-zero `declaredLength`: headers, then nothing at all).
 */
function slowClient(port: number, head: string, body: string, everyMs: number): SlowClient {
  const socket = net.connect(port, '127.0.0.1');
  const started = Date.now();
  let answer = '';
  let i = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (answer += chunk));
  socket.on('connect', () => {
    socket.write(head);
    timer = setInterval(() => {
      if (i < body.length) socket.write(body[i++]!);
    }, everyMs);
  });
  const closed = new Promise<{ answer: string; afterMs: number }>((resolve) => {
    const done = () => {
      clearInterval(timer);
      resolve({ answer, afterMs: Date.now() - started });
    };
    socket.on('close', done);
    socket.on('error', () => undefined);
  });
  return {
    answer: () => answer,
    closed,
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

function head(method: string, path: string, token: string, length: number): string {
  return (
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`
  );
}

describe.each(backends)('slow request bodies (%s)', (backend) => {
  const stack = withStack(backend, { env: { CAIRN_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) } });
  let cp: ControlPlaneProc;
  let admin: Api;
  let slowToken: string;
  let reader: Api;

  beforeAll(async () => {
    ({ cp, admin } = stack);
    const user = { role: 'tenant-user', tokenName: 'tenant-user' };
    slowToken = (await stack.tenant('slow-tenant', user)).token;
    reader = (await stack.tenant('reading-tenant', user)).api;
  });

  const tenantNames = async () =>
    ((await admin.expect(200, 'GET', '/v1/tenants?limit=500')).items as { name: string }[]).map((t) => t.name);

  it('keeps another tenant reading while 20 clients send a body slowly, then cuts them off with nothing written', async () => {
    const clients: SlowClient[] = [];
    for (let i = 0; i < 10; i++) {
      const body = JSON.stringify({ name: `slow-${i}`, zone: 'z1', locator: { i } });
      // A byte a second: none of these bodies arrives before the request timeout.
      clients.push(slowClient(cp.port, head('POST', '/v1/instances', slowToken, body.length), body, 1000));
      // Headers that announce a body, then nothing.
      clients.push(slowClient(cp.port, head('POST', '/v1/instances', slowToken, 64), '', 1000));
    }
    try {
      // Every slow client has sent its headers (and started its body) before the reads begin.
      await sleep(1500);
      const latencies: number[] = [];
      const deadline = Date.now() + 6000;
      const readLoop = async (route: string, api: Api | undefined) => {
        while (Date.now() < deadline) {
          const started = performance.now();
          const res = api ? await api.get(route) : await probe(`${cp.url}${route}`);
          latencies.push(performance.now() - started);
          expect(res.status, route).toBe(200);
        }
      };
      await Promise.all([readLoop('/v1/instances', reader), readLoop('/readyz', undefined)]);
      const figures = { backend, ...latencyFigures(latencies) };
      console.log(`[slow-bodies] reads while 20 clients trickle request bodies (ms): ${JSON.stringify(figures)}`);
      // Every read answered 200 (above). Before, every read waited out the request timeout (12 s
      // here), which the median shows; the tail is a printed figure (it measures the machine).
      expect(figures.p50).toBeLessThan(FROZEN_MEDIAN_MS);

      // The server, not the client, ends every one of them, at the request timeout.
      const ends = await Promise.all(clients.map((c) => c.closed));
      for (const end of ends) {
        expect(end.afterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 1000);
        expect(end.answer).not.toMatch(/^HTTP\/1\.1 2\d\d/);
      }
    } finally {
      for (const c of clients) c.stop();
    }
    const mine = await stack.api(slowToken).expect(200, 'GET', '/v1/instances?limit=500');
    expect(mine.items).toEqual([]);
  }, 60_000);

  it('takes a body that arrives slowly but whole, within the request timeout', async () => {
    const body = JSON.stringify({ name: 'arrived-slowly' });
    const client = slowClient(cp.port, head('POST', '/v1/tenants', cp.adminToken, body.length), body, 200);
    try {
      await waitFor(() => /\r\n\r\n/.test(client.answer()), 'an answer to the slow body', REQUEST_TIMEOUT_MS);
      expect(client.answer()).toMatch(/^HTTP\/1\.1 201 /);
      expect(await tenantNames()).toContain('arrived-slowly');
    } finally {
      client.stop();
    }
  });

  it('cuts off a body that never finishes at the request timeout, with nothing written', async () => {
    const body = JSON.stringify({ name: 'never-finished' });
    // All of it but the closing brace.
    const client = slowClient(cp.port, head('POST', '/v1/tenants', cp.adminToken, body.length), body.slice(0, -1), 1);
    const end = await client.closed;
    expect(end.afterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 1000);
    expect(end.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(await tenantNames()).not.toContain('never-finished');
  }, 60_000);
});

/** Sends one request on a raw connection (chunked when `chunks` is given) and returns the status line's code. */
function rawRequest(port: number, head: string, chunks: string[]): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('connect', () => {
      socket.write(head);
      for (const c of chunks) socket.write(`${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`);
      socket.write('0\r\n\r\n');
    });
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), text }));
    socket.on('error', reject);
  });
}

describe('the request body limit (sqlite)', () => {
  const stack = withStack('sqlite', { env: { CAIRN_MAX_BODY_BYTES: '1024' } });
  let cp: ControlPlaneProc;
  let admin: Api;
  beforeAll(() => {
    ({ cp, admin } = stack);
  });

  const names = async () =>
    ((await admin.expect(200, 'GET', '/v1/tenants?limit=500')).items as { name: string }[]).map((t) => t.name);

  it('refuses a body over the limit with 413, whether its length is declared or it comes in chunks', async () => {
    const big = JSON.stringify({ name: 'too-big', pad: 'x'.repeat(2000) });
    const declared = await admin.post('/v1/tenants', big);
    expect(declared.status).toBe(413);
    expect(declared.body.code).toBe('payload_too_large');
    const chunkedHead =
      `POST /v1/tenants HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${cp.adminToken}\r\n` +
      `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const chunked = await rawRequest(cp.port, chunkedHead, [big.slice(0, 900), big.slice(900)]);
    expect(chunked.status).toBe(413);
    expect(chunked.text).toContain('payload_too_large');
    expect(await names()).not.toContain('too-big');

    // A chunked body within the limit is read whole and taken.
    const small = JSON.stringify({ name: 'chunked-ok' });
    const ok = await rawRequest(cp.port, chunkedHead, [small.slice(0, 5), small.slice(5)]);
    expect(ok.status).toBe(201);
    expect(await names()).toContain('chunked-ok');
  });
});
