/**
 * F9, at the endpoint: a real control plane receives mutated frames (see the harness's
 * frame-fuzz.ts) on authenticated sessions of an enrolled agent. Every session that sends a
 * frame the protocol refuses (one that does not decode, an empty or oversized one, a second hello,
 * a frame only the server sends) is closed with the gateway's code for it (1007, 1009, 1008); one
 * whose frames decode but break a rule is closed with 1008, and one whose frames are all
 * acceptable still answers a heartbeat. Meanwhile the control plane stays up and ready, its RSS
 * stays bounded, and a real agent beside it keeps its one session and runs a backup to success.
 * 300 sessions (3,000 with `CAIRN_TEST_FAULTS=long`); `CAIRN_TEST_FAULTS_SEED=<n>` replays a run.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, FrameError } from '@cairn/proto';
import { backends } from '@cairn/test-harness/databases';
import { mutatedFrame, plausibleAgentFrame, type Mutation } from '@cairn/test-harness/frame-fuzz';
import { rssBytes } from '@cairn/test-harness/processes';
import { agentCredential, RawAgent } from '@cairn/test-harness/raw-agent';
import { protectInstance } from '@cairn/test-harness/scenario';
import { withStack } from '@cairn/test-harness/stack';
import { waitFor } from '@cairn/test-harness/wait';

const LONG = process.env['CAIRN_TEST_FAULTS'] === 'long';
const SESSIONS = LONG ? 3000 : 300;
/** Frames of the volume half: 1,000,000 with `CAIRN_TEST_FAULTS=long`, or `CAIRN_TEST_FUZZ_FRAMES`. */
const VOLUME = Number(process.env['CAIRN_TEST_FUZZ_FRAMES'] ?? (LONG ? 1_000_000 : 20_000));
/** Frames sent at once in the volume half, then a heartbeat whose answer says all were read. */
const CHUNK = 100;
/** Sessions fuzzed at once, each by an agent of its own. */
const PARALLEL = 4;
const MAX_FRAME_BYTES = 1024 * 1024;
/** What the control plane's RSS may grow by over the whole run (allocator and heap slack, not retention). */
const RSS_SLACK = 96 * 1024 * 1024;
const SERVER_ONLY = new Set(['welcome', 'assign', 'cancel', 'drain', 'credential']);

/** The close code the protocol requires for `bytes` sent after the hello, or null when the frame may be acceptable. */
function requiredClose(bytes: Uint8Array): number | null {
  try {
    const frame = decodeFrame(bytes, MAX_FRAME_BYTES);
    return SERVER_ONLY.has(frame.body) || frame.body === 'hello' ? 1008 : null;
  } catch (err) {
    if (!(err instanceof FrameError)) throw err;
    return err.code === 'FRAME_TOO_LARGE' ? 1009 : 1007;
  }
}

describe.each(backends)('F9: fuzzed frames at the agent endpoint (%s)', (backend) => {
  const stack = withStack(backend, {
    agents: [{}],
    env: {
      CAIRN_MAX_FRAME_BYTES: String(MAX_FRAME_BYTES),
      // The fuzzing agent reconnects hundreds of times and sends megabytes: its budgets would
      // otherwise close its sessions before the frames under test were read.
      CAIRN_AGENT_RECONNECT_MS: '0',
      CAIRN_AGENT_FRAME_RATE: '1000000',
      CAIRN_AGENT_FRAME_BURST: '1000000',
      CAIRN_AGENT_BYTE_RATE: String(1024 * 1024 * 1024),
      CAIRN_AGENT_BYTE_BURST: String(1024 * 1024 * 1024),
    },
  });

  /**
   * The control plane is up and ready, and the real agent beside the fuzzing kept its one session
   * and still runs backups. Returns the control plane's RSS now.
   */
  const unharmed = async (): Promise<number> => {
    const { cp } = stack;
    expect(cp.proc.running).toBe(true);
    expect((await fetch(`${cp.url}/readyz`)).status).toBe(200);
    const rss = rssBytes(cp.proc.child.pid!);
    const api = stack.admin;
    expect((await api.expect(200, 'GET', `/v1/agents/${stack.agent.agentId}`)).state).toBe('connected');
    expect(stack.agent.proc.logs().filter((l) => l['msg'] === 'control plane connection closed')).toEqual([]);
    const { instanceId } = await protectInstance(api, 'zone-a', { agentId: stack.agent.agentId });
    expect((await stack.backup(instanceId)).state).toBe('succeeded');
    return rss;
  };

  it(`${SESSIONS} sessions of mutated frames: each bad one closed with its code, the control plane and a real agent unharmed`, async () => {
    const { cp } = stack;
    const pid = cp.proc.child.pid!;
    const seed = Number(process.env['CAIRN_TEST_FAULTS_SEED'] ?? Date.now() % 1_000_000);
    // One enrolled agent per worker: a newer session of an agent replaces its older one (4000).
    const fuzzers: ReturnType<typeof agentCredential>[] = [];
    for (let w = 0; w < PARALLEL; w++)
      fuzzers.push(agentCredential((await stack.enroll('zone-a', `fuzzer-${w}`)).stateDir));
    const frames = fc.array(mutatedFrame(MAX_FRAME_BYTES), { minLength: 1, maxLength: 8 });

    const closes: Record<string, number> = {};
    const byMutation: Partial<Record<Mutation, number>> = {};
    let sent = 0;
    let stayedOpen = 0;
    const rssBefore = rssBytes(pid);
    let rssPeak = rssBefore;

    async function session(i: number, fuzzer: (typeof fuzzers)[number]): Promise<void> {
      const batch = fc.sample(frames, { numRuns: 1, seed: seed + i })[0]!;
      const required = batch.map((f) => requiredClose(f.bytes));
      const first = required.findIndex((c) => c !== null);
      const raw = await RawAgent.connect(cp, fuzzer, { plugins: [] });
      for (const f of batch) byMutation[f.mutation] = (byMutation[f.mutation] ?? 0) + 1;
      sent += batch.length;
      raw.sendMany(batch.map((f) => f.bytes));
      const what = `session ${i} (seed ${seed + i}): ${batch.map((f) => f.mutation).join(', ')}`;
      if (first === -1) {
        // Every frame decodes to one an agent may send: it is closed by a rule (1008) or still answers.
        const answered = raw.received.filter((f) => f.body === 'heartbeat').length;
        raw.send({ heartbeat: { sentAtMs: Date.now(), running: 0 } });
        const answer = await raw
          .next('heartbeat', () => raw.received.filter((f) => f.body === 'heartbeat').length > answered, 15_000)
          .then(
            () => true,
            () => false,
          );
        if (raw.closed) {
          expect(raw.closed.code, what).toBe(1008);
          closes['1008'] = (closes['1008'] ?? 0) + 1;
        } else {
          expect(answer, `${what}: an open session answers a heartbeat`).toBe(true);
          stayedOpen++;
          raw.close();
        }
        return;
      }
      const closed = await raw.closedBy(15_000);
      // The first frame sets the code exactly; a later one may be preceded by a frame that broke a rule (1008).
      if (first === 0) expect(closed.code, what).toBe(required[0]);
      else expect([required[first], 1008], what).toContain(closed.code);
      // ws itself ends a session whose frame is over its maxPayload, with 1009 and no reason; every other close says why.
      if (closed.code !== 1009) expect(closed.reason, what).toMatch(/\S/);
      closes[String(closed.code)] = (closes[String(closed.code)] ?? 0) + 1;
    }

    let next = 0;
    await Promise.all(
      fuzzers.map(async (fuzzer) => {
        while (next < SESSIONS) {
          const i = next++;
          await session(i, fuzzer);
          rssPeak = Math.max(rssPeak, rssBytes(pid));
          if (i % 50 === 0) expect((await fetch(`${cp.url}/readyz`)).status).toBe(200);
        }
      }),
    );

    // The control plane and the real agent are unharmed, and it holds no more than it did.
    const rssAfter = await unharmed();

    const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
    console.info(
      `F9 endpoint (${backend}): seed ${seed}, ${SESSIONS} sessions, ${sent} frames (${Object.entries(byMutation)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}); closed by code ${Object.entries(closes)
        .sort()
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')}; ${stayedOpen} acceptable and still answering; control plane RSS ${mb(rssBefore)} → ${mb(
        rssAfter,
      )} MiB (peak ${mb(rssPeak)})`,
    );
    expect(Object.values(closes).reduce((a, b) => a + b, 0) + stayedOpen).toBe(SESSIONS);
    expect(rssAfter - rssBefore).toBeLessThan(RSS_SLACK);
  }, 900_000);
  // The volume half: sessions that live, flooded with frames an agent may send, hostile in their
  // values (reports on tasks that are nobody's or another agent's, any attempt, sequence, percent,
  // text, JSON; heartbeats with any clock), one in a thousand a mutated frame that may end the
  // session. Each chunk of frames is followed by a heartbeat: its answer, in order after those of
  // the chunk's own heartbeats, says the control plane read the whole chunk and kept the session.
  // A session closed by a chunk of allowed frames only is a failure.
  it(`${VOLUME} frames through living sessions: allowed ones never end a session, a mutated one ends it with its code`, async () => {
    const { cp } = stack;
    const pid = cp.proc.child.pid!;
    const seed = Number(process.env['CAIRN_TEST_FAULTS_SEED'] ?? Date.now() % 1_000_000);
    const fuzzers: ReturnType<typeof agentCredential>[] = [];
    for (let w = 0; w < PARALLEL; w++)
      fuzzers.push(agentCredential((await stack.enroll('zone-a', `volume-${w}`)).stateDir));
    const chunkOf = fc.array(
      fc.oneof(
        { weight: 999, arbitrary: plausibleAgentFrame.map((bytes) => ({ mutation: 'plausible' as const, bytes })) },
        { weight: 1, arbitrary: mutatedFrame(MAX_FRAME_BYTES) },
      ),
      { minLength: CHUNK, maxLength: CHUNK },
    );
    const closes: Record<string, number> = {};
    let sent = 0;
    let read = 0;
    let sessions = 0;
    let chunks = 0;
    /** The longest a chunk's heartbeat answer took (the session paused while the store caught up). */
    let longestWaitMs = 0;
    const rssBefore = rssBytes(pid);
    let rssPeak = rssBefore;
    const startedAt = Date.now();

    async function worker(fuzzer: (typeof fuzzers)[number]): Promise<void> {
      let raw: RawAgent | undefined;
      // What this session was sent that may end it: a rule may be judged after the heartbeat
      // answer (a credential is checked in the store), so a close is held against any of them.
      let mutatedSent = 0;
      let firstRequired: number | null = null;
      // Heartbeat answers counted as they come (a session receives thousands of frames: acks, answers).
      let counted = 0;
      let answers = 0;
      const beats = () => {
        for (; counted < raw!.received.length; counted++) if (raw!.received[counted]!.body === 'heartbeat') answers++;
        return answers;
      };
      while (sent < VOLUME) {
        if (!raw || raw.closed) {
          raw = await RawAgent.connect(cp, fuzzer, { plugins: [] });
          sessions++;
          mutatedSent = 0;
          firstRequired = null;
          counted = 0;
          answers = 0;
        }
        const k = chunks++;
        const chunk = fc.sample(chunkOf, { numRuns: 1, seed: seed + k })[0]!;
        const what = `chunk ${k} (seed ${seed + k})`;
        for (const f of chunk)
          if (f.mutation !== 'plausible') {
            mutatedSent++;
            firstRequired ??= requiredClose(f.bytes);
          }
        const heartbeats = chunk.filter(
          (f) => f.mutation === 'plausible' && decodeFrame(f.bytes, MAX_FRAME_BYTES).body === 'heartbeat',
        ).length;
        const before = beats();
        sent += chunk.length;
        raw.sendMany([...chunk.map((f) => f.bytes), encodeFrame({ heartbeat: { sentAtMs: Date.now(), running: 0 } })]);
        const askedAt = Date.now();
        const session = raw;
        const answered = await waitFor(
          () => beats() >= before + heartbeats + 1 || session.closed,
          'the heartbeat answer',
          120_000,
        ).then(
          () => beats() >= before + heartbeats + 1,
          () => false,
        );
        if (answered && !raw.closed) {
          read += chunk.length;
          longestWaitMs = Math.max(longestWaitMs, Date.now() - askedAt);
          if (k % 1000 === 0)
            console.info(
              `F9 volume: chunk ${k}, ${sent} sent, ${sessions} sessions, ${((Date.now() - startedAt) / 1000).toFixed(0)} s, longest answer wait ${longestWaitMs} ms, control plane RSS ${(rssBytes(pid) / 1048576).toFixed(0)} MiB`,
            );
          continue;
        }
        const closed = await raw.closedBy(15_000).catch((err: Error) => {
          throw new Error(
            `${what}: neither the heartbeat answer (${beats() - before} of ${heartbeats + 1} answers) nor a close came (${err.message}); mutations sent this session: ${mutatedSent}; control plane running: ${cp.proc.running}, RSS ${(rssBytes(pid) / 1048576).toFixed(0)} MiB; its last log lines: ${JSON.stringify(cp.proc.logs().slice(-5))}`,
          );
        });
        expect(
          mutatedSent,
          `${what}: the session was closed (${closed.code} ${closed.reason}) though it was sent only frames an agent may send`,
        ).toBeGreaterThan(0);
        expect(
          firstRequired === null ? [1008] : [firstRequired, 1008],
          `${what}: ${closed.code} ${closed.reason}`,
        ).toContain(closed.code);
        closes[String(closed.code)] = (closes[String(closed.code)] ?? 0) + 1;
        if (k % 100 === 0) expect((await fetch(`${cp.url}/readyz`)).status).toBe(200);
        rssPeak = Math.max(rssPeak, rssBytes(pid));
      }
      raw?.close();
    }
    await Promise.all(fuzzers.map((f) => worker(f)));

    const rssAfter = await unharmed();
    const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
    const seconds = (Date.now() - startedAt) / 1000;
    console.info(
      `F9 endpoint volume (${backend}): seed ${seed}, ${sent} frames in ${chunks} chunks over ${sessions} sessions, ${read} read in chunks answered in full, ${seconds.toFixed(0)} s (${Math.round(sent / seconds)} frames/s), longest wait for a chunk's heartbeat answer ${longestWaitMs} ms; sessions closed by code ${Object.entries(
        closes,
      )
        .sort()
        .map(([c, n]) => `${c}: ${n}`)
        .join(', ')}; control plane RSS ${mb(rssBefore)} → ${mb(rssAfter)} MiB (peak ${mb(rssPeak)})`,
    );
    expect(sent).toBeGreaterThanOrEqual(VOLUME);
    expect(read / sent).toBeGreaterThan(0.5);
    expect(rssAfter - rssBefore).toBeLessThan(RSS_SLACK);
  }, 3_600_000);
});
