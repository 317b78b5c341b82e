/**
 * The idle-agents bench's baseline: a bare `ws` server holding the same sessions with nothing
 * behind them. It answers each hello with a welcome (heartbeat every 5 s, as the control plane's
 * production setting) and reads the heartbeats; no credential check, no store, no logging.
 * Prints its port on the first stdout line.
 *
 * Usage (started by idle-agents.ts): node --import tsx bench/bare-ws-server.ts
 */
import type { AddressInfo } from 'node:net';
import { decodeFrame, encodeFrame, PROTOCOL_VERSION, toBytes } from '@cairn/proto';
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
let sessions = 0;
wss.on('connection', (socket) => {
  socket.on('message', (data: Buffer) => {
    const env = decodeFrame(toBytes(data));
    if (env.body === 'hello')
      socket.send(
        encodeFrame({
          welcome: {
            protocolVersion: PROTOCOL_VERSION,
            sessionId: `ses_${++sessions}`,
            heartbeatIntervalMs: 5000,
            maxFrameBytes: 1024 * 1024,
          },
        }),
      );
  });
});
wss.on('listening', () => process.stdout.write(`${(wss.address() as AddressInfo).port}\n`));
