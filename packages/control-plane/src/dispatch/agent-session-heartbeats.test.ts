// How a session answers heartbeats: every one at a short interval, every second one from 10 s up,
// and always one that carries a new pace. A real WebSocket pair on loopback.
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeFrame, toBytes, type wire } from '@cairn/proto';
import { quietHost, sessionPair, until } from '../testing/session-pair.js';

const AGENT = 'agt_00000000000000000000000002';

describe('heartbeat answers', () => {
  const closers: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A session on a host telling `pace`; returns a way to beat and the frames received. */
  async function session(pace: { heartbeatMs: number; idleHeartbeatMs: number }) {
    let beats = 0;
    const host = quietHost({
      get heartbeatMs() {
        return pace.heartbeatMs;
      },
      get idleHeartbeatMs() {
        return pace.idleHeartbeatMs;
      },
      onHeartbeat: async () => void beats++,
    });
    const { client, send } = await sessionPair(AGENT, host, { submit: async () => undefined }, closers);
    const frames: wire.IEnvelope[] = [];
    client.on('message', (data) => frames.push(decodeFrame(toBytes(data as Buffer))));
    await until('the welcome', () => frames.some((f) => f.welcome));
    /** Sends `n` heartbeats, each after the session took the one before; returns the answers to them. */
    const beat = async (n: number) => {
      const from = frames.length;
      for (let i = 0; i < n; i++) {
        const want = beats + 1;
        send({ heartbeat: { sentAtMs: Date.now(), running: 0 } });
        await until('the heartbeat taken', () => beats >= want);
      }
      // Every answer is written before the session takes its heartbeat; a ping's pong comes after
      // them on the same stream, so once it is here every answer is too.
      const pong = once(client, 'pong');
      client.ping();
      await pong;
      return frames.slice(from).map((f) => f.heartbeat!);
    };
    return { beat, frames };
  }

  it('answers every heartbeat below 10 s', async () => {
    const s = await session({ heartbeatMs: 5000, idleHeartbeatMs: 5000 });
    expect((await s.beat(6)).length).toBe(6);
  });

  it('answers every second heartbeat from 10 s up, and always one that carries a new pace', async () => {
    const pace = { heartbeatMs: 20_000, idleHeartbeatMs: 40_000 };
    const s = await session(pace);
    const welcome = s.frames.find((f) => f.welcome)!.welcome!;
    expect([welcome.heartbeatIntervalMs, welcome.idleHeartbeatIntervalMs]).toEqual([20_000, 40_000]);
    expect((await s.beat(6)).length).toBe(3);
    // The fleet's idle pace moved by more than a quarter: the next heartbeat is answered with it,
    // whatever its turn, and the alternation goes on from there.
    pace.idleHeartbeatMs = 60_000;
    const answers = await s.beat(3);
    expect(answers.map((a) => [Number(a.intervalMs), Number(a.idleIntervalMs)])).toEqual([
      [20_000, 60_000],
      [0, 0],
    ]);
  });
});
