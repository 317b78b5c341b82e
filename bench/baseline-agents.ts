/**
 * The client half of the baseline (see baseline.ts): K bare WebSocket "agents" in one process.
 * Each answers an assignment at once with the frames a real agent running the dummy plugin
 * with `steps: 1` sends (accepted, one event, one progress, result), but keeps no spool, runs
 * no plugin and writes nothing to disk. That is the floor the real agent is compared against.
 *
 * Usage (started by baseline.ts): node --import tsx bench/baseline-agents.ts <ws-url> <agents> <slots>
 */
import { randomUUID } from 'node:crypto';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, toBytes, type wire } from '@cairn/proto';
import WebSocket from 'ws';

const [url, agentsArg, slotsArg] = process.argv.slice(2);
const agents = Number(agentsArg);
const slots = Number(slotsArg);
if (!url || !Number.isInteger(agents) || agents < 1 || !Number.isInteger(slots) || slots < 1) {
  process.stderr.write('usage: baseline-agents.ts <ws-url> <agents> <slots>\n');
  process.exit(2);
}

let open = agents;

function connect(n: number): void {
  const agentId = `agt_bench${n}`;
  const socket = new WebSocket(url!);
  // Per-agent and increasing, as the protocol requires of spool_seq.
  let seq = 0;
  const send = (body: wire.IEnvelope) => socket.send(encodeFrame(body));

  socket.on('open', () =>
    send({
      hello: {
        protocolVersion: PROTOCOL_VERSION,
        agentId,
        zone: 'bench',
        slots,
        plugins: [{ name: '@cairn/plugin-dummy', version: '0.1.0', apiVersion: 1, capabilities: ['backup'] }],
        agentVersion: 'bench',
        hostname: 'bench',
      },
    }),
  );
  socket.on('message', (data: Buffer) => {
    const env = decodeFrame(toBytes(data));
    if (env.body !== 'assign' || !env.assign) return; // welcome and acks need no answer here
    const { taskId, attempt } = env.assign;
    const ref = () => ({ spoolSeq: ++seq, taskId, attempt, atMs: Date.now() });
    send({ accepted: ref() });
    send({ event: { ...ref(), type: 'provider.message', message: 'dummy backup started', dataJson: '' } });
    send({ progress: { ...ref(), percent: 100, bytesDone: 1, bytesTotal: 1, message: 'backup step 1/1' } });
    send({
      result: {
        ...ref(),
        ok: { backup: { externalId: `dummy-${randomUUID()}`, sizeBytes: 1, addedBytes: 1, mode: 'FULL' } },
      },
    });
  });
  socket.on('error', (err) => process.stderr.write(`baseline agent ${n}: ${err.message}\n`));
  // The server closes every socket when the run is over; then this process has nothing to do.
  socket.on('close', () => {
    if (--open === 0) process.exit(0);
  });
}

for (let i = 0; i < agents; i++) connect(i);
