import fs from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '@cairn/proto';
import type { Store } from '@cairn/control-plane';
import type { Api } from '@cairn/test-harness/api';
import { backends } from '@cairn/test-harness/databases';
import type { ControlPlaneProc } from '@cairn/test-harness/processes';
import { agentCredential, DUMMY_PLUGIN, RawAgent, UpgradeRefused } from '@cairn/test-harness/raw-agent';
import { protectInstance } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { unacknowledgedSeqs } from '@cairn/test-harness/agent-log';
import { waitFor } from '@cairn/test-harness/wait';

/** This file's control plane: small budgets, so a flood of a few seconds is far over them. */
const FRAME_RATE = 100;
const FRAME_BURST = 200;
const MAX_FRAME = 64 * 1024;
const BYTE_RATE = 64 * 1024;
const BYTE_BURST = 4 * MAX_FRAME;
const FLOOD_MS = 8_000;

async function metric(cp: ControlPlaneProc, line: RegExp): Promise<number> {
  const text = await (await fetch(`${cp.url}/metrics`)).text();
  return Number(line.exec(text)?.[1] ?? 0);
}

describe.each(backends)("one agent's budget holds across its reconnects (%s)", (backend) => {
  const stack = withStack(backend, {
    env: {
      CAIRN_AGENT_FRAME_RATE: String(FRAME_RATE),
      CAIRN_AGENT_FRAME_BURST: String(FRAME_BURST),
      CAIRN_MAX_FRAME_BYTES: String(MAX_FRAME),
      CAIRN_AGENT_BYTE_RATE: String(BYTE_RATE),
      CAIRN_AGENT_BYTE_BURST: String(BYTE_BURST),
      // The flood's refusals are many: they are counted, not logged one by one.
      CAIRN_LOG_LEVEL: 'info',
    },
  });
  let cp: ControlPlaneProc;
  let admin: Api;
  let store: Store;

  beforeAll(async () => {
    cp = stack.cp;
    admin = stack.admin;
    store = await stack.store();
  });

  /** Events an agent made the store keep under `type`, and the bytes of their text. */
  async function stored(agentId: string, type: string): Promise<{ events: number; bytes: number }> {
    const row = await store.db
      .selectFrom('events')
      .select((eb) => [
        eb.fn.countAll<number>().as('n'),
        eb.fn.sum<number>(eb.fn('length', ['message'])).as('m'),
        eb.fn.sum<number>(eb.fn('coalesce', [eb.fn('length', ['data']), eb.lit(0)])).as('d'),
      ])
      .where('sourceAgentId', '=', agentId)
      .where('type', '=', type)
      .executeTakeFirstOrThrow();
    return { events: Number(row.n), bytes: Number(row.m ?? 0) + Number(row.d ?? 0) };
  }

  it('a raw agent reconnecting as fast as it can and sending events flat out stores no more than its budget', async () => {
    const raw = agentCredential((await stack.enroll('zone-flood', 'flood-host')).stateDir);
    const p = await protectInstance(admin, 'zone-flood');
    const task = await admin.expect(202, 'POST', `/v1/instances/${p.instanceId}/backups`);
    const first = await RawAgent.connect(cp, raw);
    const assign = (await first.next('assign')).assign!;
    first.terminate();
    const running = [{ taskId: assign.taskId, attempt: assign.attempt }];
    expect(assign.taskId).toBe(task.id);
    let seq = 0;

    /** Floods events of `type` for FLOOD_MS over as many sessions as the server lets it open. */
    async function flood(type: string, message: string, dataJson: string) {
      const started = Date.now();
      const refusedBefore = await metric(cp, /^cairn_agent_reconnects_refused_total (\d+)/m);
      let sessions = 0;
      let refused = 0;
      let sent = 0;
      while (Date.now() - started < FLOOD_MS) {
        let s: RawAgent;
        try {
          s = await RawAgent.open(cp, raw.credential);
        } catch (err) {
          if (!(err instanceof UpgradeRefused) || err.status !== 429) throw err;
          refused++;
          continue; // no waiting: as fast as it can
        }
        sessions++;
        s.send({
          hello: { protocolVersion: 1, agentId: raw.agentId, slots: 4, plugins: [DUMMY_PLUGIN], running },
        });
        while (!s.closed && Date.now() - started < FLOOD_MS) {
          if (s.buffered < 1024 * 1024) {
            const frames = Array.from({ length: 20 }, () => {
              seq++;
              return encodeFrame({
                event: { spoolSeq: seq, taskId: assign.taskId, attempt: assign.attempt, type, message, dataJson },
              });
            });
            s.sendMany(frames);
            sent += frames.length;
          }
          await nextTurn();
        }
        s.terminate();
      }
      // Whatever was still on its way has been stored (or refused) once the count stops moving.
      let last = -1;
      for (;;) {
        await sleep(500);
        const now = (await stored(raw.agentId, type)).events;
        if (now === last) break;
        last = now;
      }
      const windowS = (Date.now() - started) / 1000;
      const got = await stored(raw.agentId, type);
      const maxEvents = FRAME_RATE * windowS + FRAME_BURST;
      const maxBytes = BYTE_RATE * windowS + BYTE_BURST;
      console.log(
        `[${backend}] ${type}: window ${windowS.toFixed(1)} s, ${sessions} sessions, ${refused} upgrades refused (429; metric +${(await metric(cp, /^cairn_agent_reconnects_refused_total (\d+)/m)) - refusedBefore}), ${sent} frames sent; ` +
          `stored ${got.events} events (${(got.events / windowS).toFixed(1)}/s, bound ${Math.floor(maxEvents)}) and ${got.bytes} bytes (${Math.round(got.bytes / windowS)} B/s, bound ${Math.floor(maxBytes)})`,
      );
      expect(sessions).toBeGreaterThan(1);
      expect(got.events).toBeGreaterThan(0);
      expect(got.events).toBeLessThanOrEqual(maxEvents);
      expect(got.bytes).toBeLessThanOrEqual(maxBytes);
      return got;
    }

    // Small events: the frame budget binds.
    await flood('flood.small', 'x'.repeat(20), '{"i":1}');
    // Events just under the stored size limits (8 KiB of text, ~50 KB of data): the byte budget binds.
    const big = await flood('flood.big', 'm'.repeat(8000), JSON.stringify({ b: 'd'.repeat(50_000) }));
    expect(big.bytes / big.events).toBeGreaterThan(50_000);
    // The agent's sessions were closed for going over its budget, naming it.
    await cp.proc.waitForLog(
      (l) => /closing agent session: over the byte rate limit/.test(String(l['msg'])),
      'a log line naming the byte budget',
    );
  }, 120_000);

  it('refuses a session opened too soon after the last ones: 429, Retry-After, a code; it is let in after that', async () => {
    const raw = agentCredential((await stack.enroll('zone-pace', 'pace-host')).stateDir);
    const before = await metric(cp, /^cairn_agent_reconnects_refused_total (\d+)/m);
    // A few sessions at once pass (a blip and a re-hello must not wait)...
    for (let i = 0; i < 3; i++) (await RawAgent.connect(cp, raw, {}, { retry: false })).terminate();
    // ...the next one so soon is refused before any frame.
    const refused = await RawAgent.connect(cp, raw, {}, { retry: false }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(UpgradeRefused);
    const r = refused as UpgradeRefused;
    expect(r.status).toBe(429);
    expect(r.retryAfterS).toBeGreaterThanOrEqual(1);
    expect(r.body).toMatchObject({ status: 429, code: 'agent_reconnect_too_soon' });
    expect(String(r.body['detail'])).toMatch(/opens sessions too often; retry after \d+ s/);
    expect(await metric(cp, /^cairn_agent_reconnects_refused_total (\d+)/m)).toBe(before + 1);
    // Waiting as asked is enough.
    await sleep(r.retryAfterS! * 1000);
    (await RawAgent.connect(cp, raw, {}, { retry: false })).terminate();
  });

  it('a real agent reconnects at once after a blip, and waits as long as a 429 asks', async () => {
    const { stateDir } = await stack.enroll('zone-real', 'real-host');
    const cred = agentCredential(stateDir);
    const agent = await stack.runAgent(stateDir);
    const connected = () => agent.logs().filter((l) => l['msg'] === 'agent connected').length;
    const refusals = () => agent.logs().filter((l) => /HTTP 429/.test(String(l['msg'])));
    // A blip: its session ends (another session in its name replaces it); it is back at once.
    const blip = await RawAgent.connect(cp, cred, {}, { retry: false });
    await blip.closedBy();
    await waitFor(() => connected() === 2, 'the agent to reconnect after the blip');
    expect(refusals()).toHaveLength(0);
    await agent.stop();

    // Something keeps taking every session the agent could open: the agent meets 429s.
    let hammering = true;
    const hammered = { opened: 0, refused: 0 };
    const hammer = (async () => {
      while (hammering) {
        try {
          (await RawAgent.open(cp, cred.credential)).terminate();
          hammered.opened++;
        } catch (err) {
          if (!(err instanceof UpgradeRefused)) throw err;
          hammered.refused++;
          await nextTurn();
        }
      }
    })();
    const again = await stack.runAgent(stateDir, { waitConnected: false });
    try {
      await again.waitForLog((l) => /HTTP 429/.test(String(l['msg'])), 'the agent to be refused');
    } catch (err) {
      throw new Error(
        `${(err as Error).message}\n--- meanwhile the test opened ${hammered.opened} sessions and was refused ${hammered.refused} times`,
        { cause: err },
      );
    } finally {
      hammering = false;
      await hammer;
    }
    await again.waitForLog((l) => l['msg'] === 'agent connected', 'the agent to connect after waiting');
    // Every refusal was followed by a wait at least as long as it asked, never by a sooner retry.
    const lines = again.logs();
    const asked = lines.filter((l) => /HTTP 429/.test(String(l['msg'])));
    expect(asked.length).toBeGreaterThan(0);
    for (const refusal of asked) {
      const next = lines.slice(lines.indexOf(refusal)).find((l) => l['msg'] === 'control plane connection closed');
      expect(Number(refusal['retryAfterMs'])).toBeGreaterThanOrEqual(1000);
      expect(Number(next?.['retryInMs'])).toBeGreaterThanOrEqual(Number(refusal['retryAfterMs']));
    }
    console.log(
      `[${backend}] real agent: ${asked.length} refusal(s), waited ${asked.map((_, i) => lines.filter((l) => l['msg'] === 'control plane connection closed')[i]?.['retryInMs']).join(', ')} ms`,
    );
  });

  it('a real agent replaying a spool of large reports many times the byte burst is never cut off', async () => {
    const { stateDir } = await stack.enroll('zone-big', 'big-host');
    const before = await metric(cp, /^cairn_agent_sessions_rate_limited_total (\d+)/m);
    const spool = path.join(stateDir, 'spool');
    fs.mkdirSync(spool, { recursive: true });
    const count = 12;
    const at = Date.now() - 60_000;
    for (let seq = 1; seq <= count; seq++) {
      const body = {
        taskId: 'tsk_gone',
        attempt: 1,
        type: 'provider.note',
        message: 'n'.repeat(8000),
        dataJson: JSON.stringify({ blob: 'b'.repeat(32_000) }),
        atMs: at,
        spoolSeq: seq,
      };
      fs.writeFileSync(
        path.join(spool, `${String(seq).padStart(16, '0')}.json`),
        JSON.stringify({ seq, kind: 'event', body }),
      );
    }
    fs.writeFileSync(path.join(spool, 'ceiling'), String(count));
    expect(count * 40_000).toBeGreaterThan(BYTE_BURST);
    const agent = await stack.runAgent(stateDir);
    // The agent moves the old files into its log on start, then sends them from there.
    await waitFor(() => !fs.existsSync(spool), 'the old spool files to be migrated');
    await waitFor(() => unacknowledgedSeqs(stateDir).length === 0, 'the whole backlog to be acknowledged', 120_000);
    expect(agent.logs().filter((l) => l['msg'] === 'agent connected')).toHaveLength(1);
    expect(agent.logs().filter((l) => l['msg'] === 'control plane connection closed')).toHaveLength(0);
    expect(await metric(cp, /^cairn_agent_sessions_rate_limited_total (\d+)/m)).toBe(before);
  }, 180_000);
});
