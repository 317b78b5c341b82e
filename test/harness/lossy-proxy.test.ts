import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LossyProxy } from './lossy-proxy.js';
import { seededRandom } from './random.js';
import { waitFor } from './wait.js';

/** A client of the proxy that keeps what it received and how its connection ended. */
class Client {
  received = '';
  ended: 'open' | 'fin' | 'reset' = 'open';
  readonly socket: net.Socket;
  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (d: string) => (this.received += d));
    this.socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') this.ended = 'reset';
    });
    this.socket.on('end', () => {
      if (this.ended === 'open') this.ended = 'fin';
    });
  }
  async connected(): Promise<this> {
    if (this.socket.connecting) await new Promise((resolve) => this.socket.once('connect', resolve));
    return this;
  }
}

describe('the lossy proxy', () => {
  // An echo server: what reaches it comes back.
  const echo = net.createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  let proxy: LossyProxy;
  const clients: Client[] = [];
  const client = async () => {
    const c = await new Client(proxy.port).connected();
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    proxy = await LossyProxy.start(
      { host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port },
      seededRandom(7),
    );
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.socket.destroy();
    proxy.mode('pass');
    proxy.latency(0);
  });
  afterAll(async () => {
    await proxy.close();
    await new Promise((resolve) => echo.close(resolve));
  });

  it('passes bytes both ways, and counts the connection open', async () => {
    const c = await client();
    c.socket.write('ping');
    await waitFor(() => c.received === 'ping', 'the echo');
    expect(proxy.open).toBe(1);
  });

  it('delays every chunk by the latency, in order', async () => {
    proxy.latency(300, 50);
    const c = await client();
    const sentAt = Date.now();
    c.socket.write('a');
    await sleep(10);
    c.socket.write('b');
    await waitFor(() => c.received === 'ab', 'both chunks, in order');
    // Each way waits at least 300 ms.
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(600);
  });

  it('drops every connection with an RST or a FIN', async () => {
    const a = await client();
    a.socket.write('x');
    await waitFor(() => a.received === 'x', 'the echo');
    expect(proxy.drop('reset')).toBe(1);
    await waitFor(() => a.ended === 'reset', 'an RST');
    const b = await client();
    b.socket.write('y');
    await waitFor(() => b.received === 'y', 'the echo');
    proxy.drop('fin');
    await waitFor(() => b.ended === 'fin', 'a FIN');
  });

  it('half-open: accepts new connections and never answers or closes them', async () => {
    proxy.mode('half-open');
    const c = await client();
    c.socket.write('hello?');
    await sleep(500);
    expect([c.received, c.ended, proxy.counts.swallowed]).toEqual(['', 'open', 1]);
  });

  it('black hole: nothing moves and nothing closes; healed, what waited is delivered', async () => {
    const c = await client();
    c.socket.write('1');
    await waitFor(() => c.received === '1', 'the echo');
    proxy.mode('black-hole');
    c.socket.write('2');
    const late = await client();
    late.socket.write('3');
    await sleep(500);
    expect([c.received, c.ended, late.received, late.ended]).toEqual(['1', 'open', '', 'open']);
    proxy.mode('pass');
    await waitFor(() => c.received === '12' && late.received === '3', 'what waited, delivered');
  });

  it('black hole: a side that closed meanwhile is closed at the other end on healing', async () => {
    const c = await client();
    c.socket.write('1');
    await waitFor(() => c.received === '1', 'the echo');
    proxy.mode('black-hole');
    c.socket.end();
    await sleep(300);
    expect(proxy.open).toBe(1);
    proxy.mode('pass');
    await waitFor(() => proxy.open === 0, 'the pair closed');
  });
});
