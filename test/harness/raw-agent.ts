import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, toBytes, type DecodedFrame, type wire } from '@cairn/proto';
import type { ControlPlaneProc } from './processes.js';
import { waitFor } from './wait.js';

/** The credential of an enrolled agent's state dir (for raw sessions in its name). */
export function agentCredential(stateDir: string): { agentId: string; credential: string; zone: string } {
  return JSON.parse(fs.readFileSync(path.join(stateDir, 'agent.json'), 'utf8')) as {
    agentId: string;
    credential: string;
    zone: string;
  };
}

/** The HTTP status of an agent WebSocket upgrade with `credential` (101 when accepted). */
export function upgradeStatus(url: string, credential: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/agent`, {
      headers: { authorization: `Bearer ${credential}` },
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('upgrade', () => {
      resolve(101);
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (!String(err.message).includes('closed before')) reject(err);
    });
  });
}

export const DUMMY_PLUGIN: wire.IPluginInfo = {
  name: '@cairn/plugin-dummy',
  version: '0.0.0',
  apiVersion: 1,
  capabilities: ['backup', 'restore', 'delete-backup', 'list-offerings'],
};

/** The control plane refused the WebSocket upgrade (status, `Retry-After` in seconds, problem body). */
export class UpgradeRefused extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterS: number | undefined,
    readonly body: Record<string, unknown>,
  ) {
    super(`upgrade refused: HTTP ${status} ${JSON.stringify(body)}`);
  }
}

/**
 * A hand-driven agent session: real socket, real frames, no agent code. Tests use it to send
 * what a broken or hostile agent would.
 */
export class RawAgent {
  readonly received: DecodedFrame[] = [];
  closed: { code: number; reason: string } | undefined;
  private readonly ws: WebSocket;
  private readonly opened: Promise<void>;

  constructor(cp: ControlPlaneProc, credential: string) {
    this.ws = new WebSocket(`${cp.url.replace(/^http/, 'ws')}/v1/agent`, {
      headers: { authorization: `Bearer ${credential}` },
      maxPayload: 64 * 1024 * 1024,
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
      this.ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          const retryAfter = res.headers['retry-after'];
          let parsed: Record<string, unknown> = {};
          try {
            parsed = JSON.parse(body) as Record<string, unknown>;
          } catch {
            parsed = { text: body };
          }
          reject(new UpgradeRefused(res.statusCode ?? 0, retryAfter ? Number(retryAfter) : undefined, parsed));
          this.ws.terminate();
        });
      });
    });
    this.ws.on('error', () => undefined);
    this.ws.on('message', (data) => this.received.push(decodeFrame(toBytes(data as Buffer), 64 * 1024 * 1024)));
    this.ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
    });
  }

  /** Opens the socket and sends nothing (the caller says hello); a refused upgrade throws UpgradeRefused. */
  static async open(cp: ControlPlaneProc, credential: string): Promise<RawAgent> {
    const raw = new RawAgent(cp, credential);
    await raw.opened;
    return raw;
  }

  /**
   * Connects and says hello; resolves with the welcome. Like a real agent it waits as long as a
   * 429 refusal asks and tries again; with `retry: false` the refusal is thrown (UpgradeRefused).
   */
  static async connect(
    cp: ControlPlaneProc,
    agent: { agentId: string; credential: string },
    hello: Partial<wire.IAgentHello> = {},
    opts: { retry?: boolean } = {},
  ): Promise<RawAgent> {
    let raw: RawAgent;
    for (;;) {
      raw = new RawAgent(cp, agent.credential);
      try {
        await raw.opened;
        break;
      } catch (err) {
        if (opts.retry === false || !(err instanceof UpgradeRefused) || err.status !== 429) throw err;
        await new Promise((r) => setTimeout(r, (err.retryAfterS ?? 1) * 1000));
      }
    }
    raw.send({
      hello: { protocolVersion: 1, agentId: agent.agentId, zone: '', slots: 4, plugins: [DUMMY_PLUGIN], ...hello },
    });
    await raw.next('welcome');
    return raw;
  }

  send(body: wire.IEnvelope): void {
    this.ws.send(encodeFrame(body));
  }

  /** Sends many frames without waiting (a flood). */
  sendMany(frames: Uint8Array[]): void {
    for (const f of frames) this.ws.send(f);
  }

  /**
   * Floods the session with `frames`, `chunk` at a time without waiting for the server, but with a
   * turn of the event loop between chunks so this end reads what the server says meanwhile. A
   * sender that only writes does not read the server's close frame: the server ends the session
   * a moment later with the flood still unread on its side, the connection is reset and the
   * close frame lost. Stops once the session has closed.
   */
  async flood(frames: Uint8Array[], chunk = 500): Promise<void> {
    for (let i = 0; i < frames.length && !this.closed; i += chunk) {
      this.sendMany(frames.slice(i, i + chunk));
      await new Promise((r) => setImmediate(r));
    }
  }

  /** The first received frame of `kind` matching `match`, waiting for it (not past the session's end). */
  async next(kind: DecodedFrame['body'], match: (f: DecodedFrame) => boolean = () => true, timeoutMs = 30_000) {
    let gone = false;
    const frame = await waitFor(
      () => {
        const found = this.received.find((f) => f.body === kind && match(f));
        if (!found && this.closed) gone = true;
        return found ?? gone;
      },
      `a ${kind} frame`,
      timeoutMs,
    );
    if (frame === true)
      throw new Error(`the session closed (${this.closed?.code} ${this.closed?.reason}) before a ${kind} frame`);
    return frame;
  }

  /** Bytes queued on the socket and not yet sent. */
  get buffered(): number {
    return this.ws.bufferedAmount;
  }

  /** Waits until an Ack names `seq`. */
  async acked(seq: number, timeoutMs = 30_000): Promise<void> {
    await this.next('ack', (f) => (f.ack?.spoolSeqs ?? []).map(Number).includes(seq), timeoutMs);
  }

  async closedBy(timeoutMs = 30_000): Promise<{ code: number; reason: string }> {
    return waitFor(() => this.closed, 'the server to close the session', timeoutMs);
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }
}
