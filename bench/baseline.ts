/**
 * The baseline of the dispatch benchmark: the same protocol frames over the same kind of
 * sockets, with nothing behind them. A bare `ws` server in this process hands out N tasks to K
 * bare clients (bench/baseline-agents.ts, one child process, so that like the real path the
 * work is spread over two processes and both cores), keeps at most `slots` tasks in flight per
 * client, and acknowledges every report. No store, no HTTP, no spool, no plugin: what the real
 * path costs beyond this is what Cairn itself adds.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, toBytes, type DecodedFrame, type wire } from '@cairn/proto';
import { WebSocketServer, type WebSocket } from 'ws';
import { Proc, root } from '@cairn/test-harness/processes';
import { cpuWindow, type CpuUse } from './cpu.js';

export interface BaselineOptions {
  tasks: number;
  agents: number;
  slots: number;
  /** Give up (and fail) after this long. */
  timeoutMs: number;
}

export interface BaselineRun {
  /** From the first assign sent to the last result received. */
  elapsedMs: number;
  /** Per task: assign sent → result received. */
  latenciesMs: number[];
  /** Over the timed part; tells whether something else was using the machine meanwhile. */
  cpu: CpuUse | null;
}

const CLIENTS = fileURLToPath(new URL('./baseline-agents.ts', import.meta.url));

// What the control plane would send for a dummy provider with the bench's config, so the
// assign frames have the real size.
const PROVIDER_CONFIG_JSON = JSON.stringify({
  endpoint: null,
  config: { durationMs: 0, steps: 1, sizeBytes: 1 },
  credentials: {},
});

interface Client {
  socket: WebSocket;
  free: number;
}

export async function runBaseline(opts: BaselineOptions): Promise<BaselineRun> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const sentAt = new Float64Array(opts.tasks);
  const latenciesMs: number[] = [];
  let next = 0;
  let t0 = 0;
  let cpu: () => CpuUse | null = () => null;
  const clients: Client[] = [];

  const run = new Promise<number>((resolve, reject) => {
    const assign = (client: Client) => {
      const i = next++;
      client.free--;
      const body: wire.IEnvelope = {
        assign: {
          taskId: `tsk_${i}`,
          attempt: 1,
          operation: 'backup',
          plugin: '@cairn/plugin-dummy',
          providerConfigJson: PROVIDER_CONFIG_JSON,
          paramsJson: JSON.stringify({
            instanceId: `ins_${i % 200}`,
            instanceName: `bench-${i % 200}`,
            locator: {},
            mode: 'FULL',
          }),
        },
      };
      sentAt[i] = performance.now();
      client.socket.send(encodeFrame(body));
    };
    const fill = (client: Client) => {
      while (client.free > 0 && next < opts.tasks) assign(client);
    };

    const onFrame = (client: Client | undefined, socket: WebSocket, env: DecodedFrame) => {
      if (env.body === 'hello') {
        const hello = env.hello!;
        socket.send(
          encodeFrame({
            welcome: {
              protocolVersion: PROTOCOL_VERSION,
              sessionId: `ses_${clients.length}`,
              heartbeatIntervalMs: 5000,
              maxFrameBytes: 1024 * 1024,
            },
          }),
        );
        const c: Client = { socket, free: hello.slots };
        clients.push(c);
        // Time only the steady state: start once every client has said hello.
        if (clients.length === opts.agents) {
          cpu = cpuWindow({ bench: [process.pid], clients: [child.child.pid] });
          t0 = performance.now();
          for (const each of clients) fill(each);
        }
        return c;
      }
      const report = env.accepted ?? env.event ?? env.progress ?? env.result;
      if (!client || !report) {
        reject(new Error(`baseline: unexpected ${env.body} frame`));
        return client;
      }
      // The real control plane acknowledges only after storing; here there is nothing to store.
      socket.send(encodeFrame({ ack: { spoolSeqs: [report.spoolSeq] } }));
      if (env.result) {
        if (!env.result.ok) {
          reject(new Error(`baseline: task ${env.result.taskId} reported an error`));
          return client;
        }
        const i = Number(env.result.taskId.slice('tsk_'.length));
        latenciesMs.push(performance.now() - sentAt[i]!);
        client.free++;
        if (latenciesMs.length === opts.tasks) resolve(performance.now() - t0);
        else fill(client);
      }
      return client;
    };

    wss.on('connection', (socket) => {
      let client: Client | undefined;
      socket.on('message', (data: Buffer) => {
        try {
          client = onFrame(client, socket, decodeFrame(toBytes(data)));
        } catch (err) {
          reject(err as Error);
        }
      });
    });
  });

  const child = new Proc(
    spawn(process.execPath, ['--import', 'tsx', CLIENTS, url, String(opts.agents), String(opts.slots)], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  try {
    const elapsedMs = await Promise.race([
      run,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `baseline: ${latenciesMs.length}/${opts.tasks} results after ${opts.timeoutMs} ms; ` +
                  `clients connected: ${clients.length}/${opts.agents}; client stderr:\n${child.stderr.join('\n')}`,
              ),
            ),
          opts.timeoutMs,
        );
      }),
      child.exit().then(() => {
        throw new Error(`baseline clients exited early (${child.exitCode}): ${child.stderr.join('\n')}`);
      }),
    ]);
    return { elapsedMs, latenciesMs, cpu: cpu() };
  } finally {
    clearTimeout(timer);
    for (const c of wss.clients) c.close(1001, 'bench over');
    await child.stop();
    wss.close();
  }
}
