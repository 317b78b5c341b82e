/**
 * The client half of the idle-agents bench: holds one WebSocket per agent of a credentials file
 * slice, speaking the real protocol with the real codec: hello (with the dummy plugin), then a
 * heartbeat at the welcome's idle interval, as a real agent holding no task beats (each agent's
 * first one at a random point of it, as real agents started at different times would). Connects at most 64 at a time. Prints
 * `ready <connected>` once every session is welcomed, then `closed <agentId> <code>` for any that
 * closes. Against a bare server (no credential check), the same frames.
 *
 * Usage (started by idle-agents.ts): node --import tsx bench/idle-clients.ts <ws-url> <credentials.json> <from> <count>
 */
import fs from 'node:fs';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, toBytes } from '@cairn/proto';
import WebSocket from 'ws';

const [url, file, fromArg, countArg] = process.argv.slice(2);
const from = Number(fromArg);
const count = Number(countArg);
if (!url || !file || !Number.isInteger(from) || !Number.isInteger(count) || count < 1) {
  process.stderr.write('usage: idle-clients.ts <ws-url> <credentials.json> <from> <count>\n');
  process.exit(2);
}
const agents = (
  JSON.parse(fs.readFileSync(file, 'utf8')) as { agentId: string; credential: string; zone: string }[]
).slice(from, from + count);
const IN_FLIGHT = 64;
const sockets: WebSocket[] = [];
let stopping = false;

function connect(agent: { agentId: string; credential: string; zone: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url!, { headers: { authorization: `Bearer ${agent.credential}` } });
    sockets.push(ws);
    let welcomed = false;
    ws.on('open', () =>
      ws.send(
        encodeFrame({
          hello: {
            protocolVersion: PROTOCOL_VERSION,
            agentId: agent.agentId,
            zone: agent.zone,
            slots: 4,
            plugins: [{ name: '@cairn/plugin-dummy', version: '0.1.0', apiVersion: 1, capabilities: ['backup'] }],
            agentVersion: 'bench',
            hostname: 'bench',
          },
        }),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const beat = () => ws.send(encodeFrame({ heartbeat: { sentAtMs: Date.now(), running: 0 } }));
    /** Beats every `every` ms from now on, the first at a random point of it (as real agents spread out). */
    const pace = (every: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        beat();
        timer = setInterval(beat, every);
      }, Math.random() * every);
    };
    ws.on('close', () => clearTimeout(timer));
    // Holding no task, an agent beats at the idle interval (never shorter than the interval; 0: the interval).
    const told = { busy: 5000, idle: 0 };
    const idlePace = () => pace(Math.max(told.busy, told.idle));
    ws.on('message', (data: Buffer) => {
      const env = decodeFrame(toBytes(data));
      // A heartbeat answer may carry a new pace (the control plane's fleet grew); the rest needs no answer here.
      if (env.body === 'heartbeat' && welcomed) {
        const busy = Number(env.heartbeat!.intervalMs ?? 0);
        const idle = Number(env.heartbeat!.idleIntervalMs ?? 0);
        if (busy === 0 && idle === 0) return;
        if (busy > 0) told.busy = busy;
        if (idle > 0) told.idle = idle;
        return idlePace();
      }
      if (env.body !== 'welcome' || welcomed) return;
      welcomed = true;
      told.busy = env.welcome!.heartbeatIntervalMs || 5000;
      told.idle = env.welcome!.idleHeartbeatIntervalMs || 0;
      idlePace();
      resolve();
    });
    ws.on('unexpected-response', (_req, res) =>
      reject(new Error(`${agent.agentId}: upgrade refused ${res.statusCode}`)),
    );
    ws.on('error', (err) => {
      if (!welcomed) reject(err);
    });
    ws.on('close', (code) => {
      if (!welcomed) reject(new Error(`${agent.agentId}: closed ${code} before the welcome`));
      else if (!stopping) process.stdout.write(`closed ${agent.agentId} ${code}\n`);
    });
  });
}

let next = 0;
await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () => {
    while (next < agents.length) await connect(agents[next++]!);
  }),
).catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
process.stdout.write(`ready ${agents.length}\n`);
process.once('SIGTERM', () => {
  stopping = true;
  for (const ws of sockets) ws.terminate();
  process.exit(0);
});
