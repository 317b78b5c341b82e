import net from 'node:net';

/*
 * A TCP proxy of the fault suite's own, on loopback, put between an agent and the control
 * plane's port to make the link between them bad on purpose (no toxiproxy, no netem here):
 *
 * - `latency(ms, jitterMs)`: every chunk waits `ms` plus up to `jitterMs` more, in order;
 * - `drop('reset' | 'fin')`: every connection it holds ends at once, both ways, with an RST or a FIN;
 * - `mode('half-open')`: new connections are accepted and their bytes swallowed; they are never
 *   answered, forwarded or closed (connections already up keep working);
 * - `mode('black-hole')`: nothing moves either way on any connection, and none is closed, as in a
 *   partition seen by TCP as silence. Bytes sent meanwhile are held, as TCP retransmits them, and
 *   delivered when `mode('pass')` heals it; a side that closed meanwhile is closed at the other
 *   end then too. New connections wait, unanswered, for the healing.
 */

export type LinkMode = 'pass' | 'half-open' | 'black-hole';

/** What the proxy did, for the figures. */
export interface ProxyCounts {
  accepted: number;
  swallowed: number;
  resets: number;
  fins: number;
}

/** One direction of a connection: chunks in order, each on its due time, held while the link is cut. */
class Pipe {
  private readonly queue: { due: number; chunk: Buffer | null }[] = [];
  private lastDue = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly proxy: LossyProxy,
    private readonly to: () => net.Socket | undefined,
  ) {}

  /** A chunk, or null for the end of the stream. */
  push(chunk: Buffer | null): void {
    this.lastDue = Math.max(this.lastDue, Date.now() + this.proxy.delay());
    this.queue.push({ due: this.lastDue, chunk });
    this.pump();
  }

  get empty(): boolean {
    return this.queue.length === 0;
  }

  pump(): void {
    clearTimeout(this.timer);
    const to = this.to();
    if (this.proxy.cut || !to || to.connecting) return;
    const now = Date.now();
    while (this.queue[0] && this.queue[0].due <= now) {
      const { chunk } = this.queue.shift()!;
      if (to.destroyed) continue;
      if (chunk === null) to.end();
      else to.write(chunk);
    }
    const next = this.queue[0];
    if (next) this.timer = setTimeout(() => this.pump(), next.due - now);
  }

  clear(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }
}

/** A client connection and the one the proxy opened to the target for it. */
class Pair {
  upstream: net.Socket | undefined;
  private readonly up: Pipe;
  private readonly down: Pipe;
  /** A side that went away with an error while the link was cut: the other is reset on healing. */
  private resetPending: 'client' | 'upstream' | undefined;
  private clientClosed = false;
  private upstreamClosed = false;

  constructor(
    private readonly proxy: LossyProxy,
    readonly client: net.Socket,
  ) {
    this.up = new Pipe(proxy, () => this.upstream);
    this.down = new Pipe(proxy, () => this.client);
    client.on('data', (c: Buffer) => this.up.push(c));
    client.on('end', () => this.up.push(null));
    client.on('error', () => {});
    client.on('close', (hadError) => {
      this.clientClosed = true;
      if (hadError) this.resetOther('client');
      this.settle();
    });
    this.heal();
  }

  /** Both ends are up and neither has closed. */
  get open(): boolean {
    return !!this.upstream && !this.upstream.connecting && !this.clientClosed && !this.upstreamClosed;
  }

  /** The link works again (or never stopped): connect if not yet, deliver what waited, close what closed. */
  heal(): void {
    if (this.proxy.cut) return;
    if (!this.upstream && !this.clientClosed) this.connect();
    if (this.resetPending === 'client') this.upstream?.resetAndDestroy();
    if (this.resetPending === 'upstream') this.client.resetAndDestroy();
    this.resetPending = undefined;
    this.up.pump();
    this.down.pump();
    if (this.clientClosed && !this.upstream) this.settle();
  }

  drop(how: 'reset' | 'fin'): void {
    this.up.clear();
    this.down.clear();
    for (const s of [this.client, this.upstream]) {
      if (!s || s.destroyed) continue;
      if (how === 'reset') s.resetAndDestroy();
      else s.destroy();
    }
  }

  private connect(): void {
    const { host, port } = this.proxy.target;
    const upstream = net.connect({ host, port, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.on('connect', () => this.up.pump());
    upstream.on('data', (c: Buffer) => this.down.push(c));
    upstream.on('end', () => this.down.push(null));
    upstream.on('error', () => {});
    upstream.on('close', (hadError) => {
      this.upstreamClosed = true;
      if (hadError) this.resetOther('upstream');
      this.settle();
    });
  }

  private resetOther(side: 'client' | 'upstream'): void {
    if (this.proxy.cut) this.resetPending = side;
    else if (side === 'client') this.upstream?.resetAndDestroy();
    else this.client.resetAndDestroy();
  }

  /** Once both sides are closed (or the client left before the link let it reach the target), the pair is gone. */
  private settle(): void {
    if (this.clientClosed && (this.upstreamClosed || !this.upstream)) this.proxy.forget(this);
  }
}

/**
 * A lossy link to `target` on a free loopback port; `url` is what an agent is given as its server.
 *
 * @example
 * const proxy = await LossyProxy.start({ host: '127.0.0.1', port: cp.port }, seededRandom(seed));
 * await stack.runAgent(stateDir, { args: ['--server', proxy.url] });
 * proxy.mode('black-hole'); // a partition…
 * proxy.mode('pass'); // …healed
 */
export class LossyProxy {
  readonly counts: ProxyCounts = { accepted: 0, swallowed: 0, resets: 0, fins: 0 };
  private readonly pairs = new Set<Pair>();
  private readonly swallowed = new Set<net.Socket>();
  private linkMode: LinkMode = 'pass';
  private latencyMs = 0;
  private jitterMs = 0;

  private constructor(
    private readonly server: net.Server,
    readonly target: { host: string; port: number },
    private readonly random: () => number,
  ) {}

  static async start(target: { host: string; port: number }, random: () => number): Promise<LossyProxy> {
    const server = net.createServer({ allowHalfOpen: true });
    const proxy = new LossyProxy(server, target, random);
    server.on('connection', (socket) => proxy.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Nothing moves on the link (a black hole). */
  get cut(): boolean {
    return this.linkMode === 'black-hole';
  }

  /** Connections open at both ends and forwarding (not those swallowed). */
  get open(): number {
    return [...this.pairs].filter((p) => p.open).length;
  }

  /** The delay of the next chunk, in ms. */
  delay(): number {
    return this.latencyMs + (this.jitterMs > 0 ? Math.floor(this.random() * this.jitterMs) : 0);
  }

  latency(ms: number, jitterMs = 0): void {
    if (!(ms >= 0 && jitterMs >= 0)) throw new Error(`latency must be >= 0 ms, got ${ms} (jitter ${jitterMs})`);
    this.latencyMs = ms;
    this.jitterMs = jitterMs;
  }

  mode(mode: LinkMode): void {
    this.linkMode = mode;
    if (mode !== 'black-hole') for (const p of this.pairs) p.heal();
  }

  /** Ends every connection the proxy holds, swallowed ones too; answers how many. */
  drop(how: 'reset' | 'fin'): number {
    const n = this.pairs.size + this.swallowed.size;
    for (const p of [...this.pairs]) p.drop(how);
    for (const s of this.swallowed) {
      if (how === 'reset') s.resetAndDestroy();
      else s.destroy();
    }
    this.counts[how === 'reset' ? 'resets' : 'fins'] += n;
    return n;
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    this.drop('fin');
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** @internal a pair whose both ends closed. */
  forget(pair: Pair): void {
    this.pairs.delete(pair);
  }

  private accept(socket: net.Socket): void {
    this.counts.accepted++;
    if (this.linkMode === 'half-open') {
      this.counts.swallowed++;
      this.swallowed.add(socket);
      socket.on('data', () => {});
      socket.on('error', () => {});
      socket.on('close', () => this.swallowed.delete(socket));
      return;
    }
    this.pairs.add(new Pair(this, socket));
  }
}
