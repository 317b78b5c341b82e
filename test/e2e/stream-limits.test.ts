import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '@cairn/control-plane';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import { eventRows } from '@cairn/test-harness/events';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { FROZEN_MEDIAN_MS, latencyFigures, probe } from '@cairn/test-harness/latency';
import { SseClient, StalledStream } from '@cairn/test-harness/sse';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

/** This file's control plane ends a stream whose client took nothing for this long. */
const STALL_MS = 3000;
const PER_TOKEN = 5;
const PER_TENANT = 20;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

async function metric(cp: ControlPlaneProc, line: RegExp): Promise<number> {
  // Over a connection of its own: hundreds of connections are being cut around it.
  return Number(line.exec((await probe(`${cp.url}/metrics`)).body)?.[1] ?? 0);
}

describe.each(backends)('event streams are capped and a stream that is not read is ended (%s)', (backend) => {
  const stack = withStack(backend, { env: { CAIRN_STREAM_STALL_MS: String(STALL_MS) } });
  let cp: ControlPlaneProc;
  let admin: Api;
  let store: Store;
  let spTenant: string;
  const open: { close(): void }[] = [];
  let n = 0;

  async function tenant(tokens: number): Promise<{ id: string; tokens: string[] }> {
    const t = await admin.expect(201, 'POST', '/v1/tenants', { name: `s${++n}` });
    const minted: string[] = [];
    for (let i = 0; i < tokens; i++)
      minted.push(
        (await admin.expect(201, 'POST', `/v1/tenants/${t.id}/tokens`, { role: 'tenant-user', name: `u${i}` }))
          .token as string,
      );
    return { id: t.id as string, tokens: minted };
  }

  /** `count` events of each tenant, each about `bytes` long, written straight into the log. */
  async function produce(tenantIds: string[], count: number, bytes: number): Promise<void> {
    const data = JSON.stringify({ pad: 'p'.repeat(bytes) });
    const rows = tenantIds.flatMap((tenantId) => eventRows(tenantId, 'stream.test', count, data));
    for (let i = 0; i < rows.length; i += 100)
      await store.db
        .insertInto('events')
        .values(rows.slice(i, i + 100))
        .execute();
  }

  async function stalled(token: string): Promise<StalledStream> {
    const s = await StalledStream.open(cp.url, token);
    open.push(s);
    return s;
  }

  beforeAll(async () => {
    cp = stack.cp;
    admin = stack.admin;
    store = await stack.store();
    const tenants = await admin.expect(200, 'GET', '/v1/tenants?limit=100');
    spTenant = (tenants.items as { id: string; name: string }[]).find((t) => t.name === 'service-provider')!.id;
  });

  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });

  /** Waits until the control plane holds no stream of the ones a test opened (they were released). */
  async function streamsHeld(count: number): Promise<void> {
    await waitFor(
      async () => (await metric(cp, /^cairn_event_streams (\d+)/m)) === count,
      `the control plane to hold ${count} streams`,
    );
  }

  it('caps the streams of one token: one more gets 429 with Retry-After and a code; a closed one frees its place', async () => {
    const t = await tenant(1);
    const held = [];
    for (let i = 0; i < PER_TOKEN; i++) held.push(await stalled(t.tokens[0]!));
    expect(held.map((s) => s.status)).toEqual(Array(PER_TOKEN).fill(200));
    const refused = await stalled(t.tokens[0]!);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(JSON.parse(refused.body)).toMatchObject({
      status: 429,
      code: 'too_many_streams',
      quota: 'streamsPerToken',
      detail: expect.stringMatching(/5 event streams .* per token/) as unknown,
    });
    held[0]!.close();
    await streamsHeld(PER_TOKEN - 1);
    expect((await stalled(t.tokens[0]!)).status).toBe(200);
  });

  it("caps a tenant's streams across its tokens, the service provider's admins included", async () => {
    const t = await tenant(5);
    for (const token of t.tokens.slice(0, 4))
      for (let i = 0; i < PER_TOKEN; i++) expect((await stalled(token)).status).toBe(200);
    const refused = await stalled(t.tokens[4]!);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.body)).toMatchObject({
      code: 'too_many_streams',
      quota: 'streamsPerTenant',
      detail: expect.stringMatching(/20 event streams .* per tenant/) as unknown,
    });
    // Another tenant is not affected.
    expect((await stalled((await tenant(1)).tokens[0]!)).status).toBe(200);

    const admins: string[] = [cp.adminToken];
    for (let i = 0; i < 4; i++)
      admins.push(
        (await admin.expect(201, 'POST', `/v1/tenants/${spTenant}/tokens`, { role: 'sp-admin', name: `a${i}` }))
          .token as string,
      );
    for (const token of admins.slice(0, 4))
      for (let i = 0; i < PER_TOKEN; i++) expect((await stalled(token)).status).toBe(200);
    const adminRefused = await stalled(admins[4]!);
    expect(adminRefused.status).toBe(429);
    expect(JSON.parse(adminRefused.body)).toMatchObject({ code: 'too_many_streams', quota: 'streamsPerTenant' });
  });

  it('does not cut a client that reads, at once or in bursts with pauses shorter than the stall limit, while events keep coming', async () => {
    const t = await tenant(2);
    const fast = await SseClient.open(cp.url, t.tokens[0]!, { light: true });
    open.push(fast);
    await fast.positioned();
    // A bursty reader: reads for a moment, then takes nothing for two thirds of the stall limit.
    const slow = await StalledStream.open(cp.url, t.tokens[1]!);
    open.push(slow);
    let slowBytes = 0;
    slow.socket.on('data', (chunk: Buffer) => (slowBytes += chunk.length));
    slow.socket.pause();
    let reading = true;
    const bursts = (async () => {
      while (reading) {
        slow.socket.resume();
        await sleep(300);
        slow.socket.pause();
        await sleep((2 * STALL_MS) / 3);
      }
    })();
    const stalledBefore = await metric(cp, /^cairn_event_streams_stalled_total (\d+)/m);
    try {
      const until = Date.now() + 4 * STALL_MS;
      let produced = 0;
      while (Date.now() < until) {
        await produce([t.id], 5, 16 * 1024);
        produced += 5;
        await sleep(100);
      }
      await fast.waitForCount(produced);
      expect(fast.ended).toBe(false);
      expect(slow.closed).toBe(false);
      expect(slowBytes).toBeGreaterThan(0);
      expect(fast.outOfOrder).toBe(false);
    } finally {
      reading = false;
      await bursts;
    }
    expect(await metric(cp, /^cairn_event_streams_stalled_total (\d+)/m)).toBe(stalledBefore);
  });

  it('600 streams that never read, while events are produced: each is refused (429) or ended, and /healthz keeps answering', async () => {
    const pid = cp.proc.child.pid!;
    // 24 tenants with 5 tokens each, 5 streams per token: 25 per tenant, 5 over its cap.
    const tenants = await Promise.all(Array.from({ length: 24 }, () => tenant(5)));
    const latencies: number[] = [];
    const rssBefore = rssBytes(pid);
    let rssPeak = rssBefore;
    let done = false;
    const probing = (async () => {
      while (!done) {
        const res = await probe(`${cp.url}/healthz`);
        expect(res.status).toBe(200);
        latencies.push(res.ms);
        rssPeak = Math.max(rssPeak, rssBytes(pid));
        await sleep(50);
      }
    })();
    let streams: StalledStream[] = [];
    try {
      streams = await Promise.all(
        tenants.flatMap((t) => t.tokens.flatMap((token) => Array.from({ length: 5 }, () => stalled(token)))),
      );
      expect(streams).toHaveLength(600);
      const admitted = streams.filter((s) => s.status === 200);
      const refused = streams.filter((s) => s.status === 429);
      expect(admitted.length + refused.length).toBe(600);
      expect(admitted).toHaveLength(24 * PER_TENANT);
      // Events of every tenant keep coming (four of about 40 KB a second each) until every
      // admitted stream has been ended.
      const ids = tenants.map((t) => t.id);
      let producing = true;
      const producer = (async () => {
        while (producing) {
          await produce(ids, 1, 40 * 1024);
          await sleep(250);
        }
      })();
      try {
        // Looked at once a second: a scrape costs the control plane something too.
        const deadline = Date.now() + 240_000;
        while ((await metric(cp, /^cairn_event_streams (\d+)/m)) > 0) {
          if (Date.now() > deadline) throw new Error('streams that are not read were not ended');
          await sleep(1000);
        }
      } finally {
        producing = false;
        await producer;
      }
      expect(await metric(cp, /^cairn_event_streams_stalled_total (\d+)/m)).toBeGreaterThanOrEqual(admitted.length);
      // Their connections were cut: read again, each one ends.
      await Promise.all(admitted.map((s) => s.drain()));
    } finally {
      done = true;
      await probing;
    }
    const figures = latencyFigures(latencies);
    console.log(
      `[${backend}] 600 never-reading streams (${streams.filter((s) => s.status === 200).length} admitted, ${streams.filter((s) => s.status === 429).length} refused): ` +
        `/healthz (ms) ${JSON.stringify(figures)}; ` +
        `RSS ${Math.round(rssBefore / 2 ** 20)} MiB before, peak ${Math.round(rssPeak / 2 ** 20)} MiB`,
    );
    // Every probe answered (each within 30 s, above). Before, the process froze: every probe took
    // 2-10 s, which the median shows; the tail is a printed figure (it measures the machine).
    expect(figures.count).toBeGreaterThan(0);
    expect(figures.p50).toBeLessThan(FROZEN_MEDIAN_MS);
  }, 300_000);
});
