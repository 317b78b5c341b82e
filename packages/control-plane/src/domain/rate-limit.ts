/**
 * A token bucket: `capacity` tokens, refilled continuously at `perSecond`, starting full.
 * Pure arithmetic over the times it is given, so it is tested without a clock.
 *
 * A sequence of arrivals passes iff, over every interval of length d, it holds at most
 * `capacity + perSecond * d` arrivals; a sender that keeps inside a smaller bucket of its own
 * therefore never trips it.
 *
 * @example
 * const b = new TokenBucket(200, 2000, now);
 * if (!b.take(now)) closeSession();
 */
export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly perSecond: number,
    readonly capacity: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.at = now;
  }

  private refill(now: number): void {
    if (now > this.at) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.at) * this.perSecond) / 1000);
      this.at = now;
    }
  }

  /** Takes `n` tokens if there are that many; false (and nothing taken) otherwise. */
  take(now: number, n = 1): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Tokens available at `now`. */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** Milliseconds from `now` until `n` tokens are available (0: now; n must fit the capacity). */
  waitMs(now: number, n = 1): number {
    this.refill(now);
    return this.tokens >= n ? 0 : Math.ceil(((n - this.tokens) * 1000) / this.perSecond);
  }

  /** Full again: indistinguishable from a new bucket. */
  full(now: number): boolean {
    return this.available(now) >= this.capacity;
  }
}

/** What one agent may send and how often it may open a session. */
export interface AgentBudgetSettings {
  /** Frames of any kind: a bucket of `burst` frames refilled at `perSecond`. */
  frames: { perSecond: number; burst: number };
  /** Frame payload bytes (and what a report stores beyond them): `burst` bytes refilled at `perSecond`. */
  bytes: { perSecond: number; burst: number };
  /** New sessions: `burst` at once, then one per `intervalMs` (0: not paced). */
  sessions: { intervalMs: number; burst: number };
}

export type FrameVerdict = { ok: true } | { ok: false; over: 'frames' | 'bytes' };
export type SessionVerdict = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * One agent's budget. It belongs to the agent, not to a session: a session that ends (closed over
 * budget, or by the agent itself) leaves it as it was, so reconnecting buys nothing. Frames are
 * counted before they are decoded, so a flood costs as little as possible.
 *
 * @example
 * const budget = new AgentBudget(settings, now);
 * if (!budget.session(now).ok) refuseUpgrade(429);
 * const v = budget.frame(now, data.byteLength);
 * if (!v.ok) closeSession(1008, `over the ${v.over} budget`);
 */
export class AgentBudget {
  private readonly frames: TokenBucket;
  private readonly bytes: TokenBucket;
  private readonly sessions: TokenBucket | undefined;
  /** Sessions of this agent open now (a budget in use is never forgotten). */
  open = 0;

  constructor(settings: AgentBudgetSettings, now: number) {
    this.frames = new TokenBucket(settings.frames.perSecond, settings.frames.burst, now);
    this.bytes = new TokenBucket(settings.bytes.perSecond, settings.bytes.burst, now);
    const { intervalMs, burst } = settings.sessions;
    this.sessions = intervalMs > 0 ? new TokenBucket(1000 / intervalMs, burst, now) : undefined;
  }

  /** A frame of `bytes` payload bytes arrived. Nothing is taken when it does not fit. */
  frame(now: number, bytes: number): FrameVerdict {
    if (this.frames.available(now) < 1) return { ok: false, over: 'frames' };
    if (!this.bytes.take(now, bytes)) return { ok: false, over: 'bytes' };
    this.frames.take(now);
    return { ok: true };
  }

  /**
   * Bytes a report stores beyond its frame's own size (text quoted as JSON grows): charged to
   * the byte budget, so what one agent can make the store hold is bounded by that budget.
   */
  stores(now: number, extraBytes: number): boolean {
    return extraBytes <= 0 || this.bytes.take(now, extraBytes);
  }

  /** The agent asks for a new session. */
  session(now: number): SessionVerdict {
    if (!this.sessions || this.sessions.take(now)) return { ok: true };
    return { ok: false, retryAfterMs: this.sessions.waitMs(now) };
  }

  /** No session holds it and every bucket is full: a new budget would be the same. */
  idle(now: number): boolean {
    return this.open === 0 && this.frames.full(now) && this.bytes.full(now) && (this.sessions?.full(now) ?? true);
  }
}

/**
 * Budgets by key (an agent, a tenant), made on first use and forgotten once `idle` (a budget
 * that a new one would equal, which loses nothing): at each {@link sweep}, and, when
 * `sweepEvery` is given, every that many budgets made, so memory follows the keys used lately.
 */
export class KeyedBudgets<B> {
  private readonly budgets = new Map<string, B>();
  private made = 0;

  constructor(
    private readonly make: (now: number) => B,
    private readonly idle: (budget: B, now: number) => boolean,
    private readonly sweepEvery?: number,
  ) {}

  of(key: string, now: number): B {
    let b = this.budgets.get(key);
    if (!b) {
      if (this.sweepEvery !== undefined && ++this.made % this.sweepEvery === 0) this.sweep(now);
      b = this.make(now);
      this.budgets.set(key, b);
    }
    return b;
  }

  /** Forgets the budgets that are idle at `now`. */
  sweep(now: number): void {
    for (const [key, b] of this.budgets) if (this.idle(b, now)) this.budgets.delete(key);
  }

  get size(): number {
    return this.budgets.size;
  }
}

/**
 * Every agent's budget in this process, by agent id. Kept here, not in sessions, so it outlives
 * them; forgotten only once no session uses it and it is full again (swept by the dispatcher).
 */
export class AgentBudgets extends KeyedBudgets<AgentBudget> {
  constructor(readonly settings: AgentBudgetSettings) {
    super(
      (now) => new AgentBudget(settings, now),
      (b, now) => b.idle(now),
    );
  }
}

/** New buckets made between two sweeps of {@link RequestBudgets}. */
const REQUEST_SWEEP_EVERY = 1000;

/**
 * How many API requests each tenant may make on this process: a bucket of `burst` requests per
 * tenant, refilled at `perSecond`. A tenant's flood is refused before its requests reach a route
 * or the store, so it cannot take the thread and the store from the others. A bucket that is
 * full again is forgotten (a new one would be the same), every {@link REQUEST_SWEEP_EVERY} new
 * buckets, so memory follows the tenants that made requests lately, not every tenant there is.
 *
 * @example
 * const waitMs = budgets.take(tenantId, now);
 * if (waitMs > 0) refuse(429, Math.ceil(waitMs / 1000));
 */
export class RequestBudgets extends KeyedBudgets<TokenBucket> {
  constructor(readonly settings: { perSecond: number; burst: number }) {
    super(
      (now) => new TokenBucket(settings.perSecond, settings.burst, now),
      (b, now) => b.full(now),
      REQUEST_SWEEP_EVERY,
    );
  }

  /** 0 when the tenant may make one more request at `now` (it is counted); else the ms until it may. */
  take(tenantId: string, now: number): number {
    const b = this.of(tenantId, now);
    return b.take(now) ? 0 : b.waitMs(now);
  }
}
