import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the metrics read from the rest of the control plane at scrape time. */
export interface MetricSources {
  /** Tasks per state and kind, from the store (so every replica reports the same totals). */
  taskCounts(): Promise<{ state: string; kind: string; n: number }[]>;
  /** Agent sessions held by this process. */
  localSessions(): number;
  /** The heartbeat interval agents of this process are told now, in ms. */
  heartbeatMs(): number;
  /** The interval agents of this process are told for while they hold no task, in ms. */
  idleHeartbeatMs(): number;
  /** Event streams held open by this process. */
  eventStreams(): number;
  /** Requests holding a place in this process's waiting room (all tenants, the service provider's too). */
  waitingRequests(): number;
  /** The oldest of the instances' newest restore points (epoch ms), or null when none has one, from the store. */
  oldestLastBackup(): Promise<number | null>;
  /** Instances in breach of their RPO, all tenants together, from the store. */
  rpoBreached(): Promise<number>;
}

/** How often each of the store's figures for `/metrics` is read at most (see {@link atMostEvery}). */
export const STORE_FIGURES_REFRESH_MS = 10_000;

export interface MetricsOptions {
  /** The store's figures are read at most this often; scrapes between are answered from the last read. */
  storeRefreshMs?: number;
  /** Milliseconds elapsed, by which that counts (real elapsed time; a test passes its own). */
  elapsed?: () => number;
}

/**
 * `read`, answered at most once per `refreshMs` (by `elapsed`) and shared meanwhile by every call,
 * a read in progress too. For the figures `/metrics` reads from the store: each is an aggregate
 * over a table that grows with the service (every task, every restore point), and read at each
 * scrape, a client asking for `/metrics` in a loop (it has no token) would hold the store for
 * every tenant. A read that failed is not kept: the next call reads again.
 */
function atMostEvery<T>(read: () => Promise<T>, refreshMs: number, elapsed: () => number): () => Promise<T> {
  let last: { at: number; value: Promise<T>; settled: boolean } | undefined;
  return () => {
    const now = elapsed();
    if (last && (!last.settled || (now >= last.at && now - last.at < refreshMs))) return last.value;
    const current = { at: now, value: read(), settled: false };
    last = current;
    current.value.then(
      () => void (current.settled = true),
      () => {
        current.settled = true;
        if (last === current) last = undefined;
      },
    );
    return current.value;
  };
}

/**
 * Prometheus metrics of one control-plane process, served at `GET /metrics`.
 * Counters are per process; the task gauges come from the shared store.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'cairn_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpBusyRuns = new Counter({
    name: 'cairn_http_busy_reruns_total',
    help: 'Mutating requests run again by the control plane because the store refused them as busy (a deadlock victim, a lock wait timeout, SQLite busy)',
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'cairn_http_request_duration_seconds',
    help: 'HTTP request duration, by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly reports = new Counter({
    name: 'cairn_agent_reports_total',
    help: 'Reports received from agents (accepted, rejected, progress, event, result)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly tasksEnded = new Counter({
    name: 'cairn_tasks_ended_total',
    help: 'Tasks this process saw end, by final state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  readonly frameErrors = new Counter({
    name: 'cairn_agent_session_errors_total',
    help: 'Agent sessions closed for a protocol violation, by close code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'cairn_agent_sessions_rate_limited_total',
    help: "Agent sessions closed for sending more than their agent's frame or byte budget allows",
    registers: [this.registry],
  });

  readonly reconnectsRefused = new Counter({
    name: 'cairn_agent_reconnects_refused_total',
    help: 'Agent connections refused (429) because the agent opens sessions too often',
    registers: [this.registry],
  });

  readonly heartbeats = new Counter({
    name: 'cairn_agent_heartbeats_total',
    help: 'Agent heartbeats this process stored (a burst on one session counts once; the rate follows cairn_agent_heartbeat_interval_seconds)',
    registers: [this.registry],
  });

  readonly streamsStalled = new Counter({
    name: 'cairn_event_streams_stalled_total',
    help: 'Event streams ended because their client took nothing for CAIRN_STREAM_STALL_MS',
    registers: [this.registry],
  });

  readonly schedulesEvaluated = new Counter({
    name: 'cairn_schedules_evaluated_total',
    help: 'Schedules the scheduler evaluated (their next fire time had passed or was not computed yet)',
    registers: [this.registry],
  });

  readonly historyForgotten = new Counter({
    name: 'cairn_history_forgotten_total',
    help: 'Rows of the history this process forgot past their limits: ended tasks, progress reports of ended tasks, events',
    labelNames: ['what'] as const,
    registers: [this.registry],
  });

  readonly dutyPasses = new Counter({
    name: 'cairn_duty_passes_total',
    help: 'Passes of a periodic duty (rpo-watch, provider-rounds, job-history, history) this process ran while it held its lease',
    labelNames: ['duty'],
    registers: [this.registry],
  });

  readonly dutyHeld = new Gauge({
    name: 'cairn_duty_held',
    help: 'Whether this process holds the lease of a periodic duty (1) or another replica does (0)',
    labelNames: ['duty'],
    registers: [this.registry],
  });

  readonly schedulerTick = new Gauge({
    name: 'cairn_scheduler_tick_clock_seconds',
    help: "The scheduler clock's time at this process's last completed scheduler tick",
    registers: [this.registry],
  });

  readonly schedulerTickDuration = new Histogram({
    name: 'cairn_scheduler_tick_duration_seconds',
    help: 'How long each completed scheduler tick took (fires, provider rounds, job history, the RPO watch)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly schedulerProbes = new Histogram({
    name: 'cairn_scheduler_probe_duration_seconds',
    help: 'How long each ask of the store by a scheduler tick took (is anything due, the earliest fire time); ticks that did not ask are not counted: nothing committed here since, no known fire time come, and the last ask younger than CAIRN_SCHEDULER_REFRESH_MS',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  /**
   * Statements run and seconds taken, by verb: tallied in plain numbers (a statement is counted
   * on every store call, and a labelled counter's increment costs more than a short SQLite read)
   * and handed to the two counters below when they are scraped.
   */
  private readonly statementTally = new Map<string, { n: number; seconds: number }>();

  readonly storeStatements: Counter<'verb'> = new Counter({
    name: 'cairn_store_statements_total',
    help: "Statements this process ran on the store, transactions' begin and commit included, by verb (select, insert, update, delete, begin, commit, rollback, other)",
    labelNames: ['verb'] as const,
    registers: [this.registry],
    collect: () => this.publishTally(this.storeStatements, 'n'),
  });

  readonly storeStatementSeconds: Counter<'verb'> = new Counter({
    name: 'cairn_store_statement_seconds_total',
    help: "Time the store took to answer this process's statements, by verb (SQLite: running them, on the event loop; MySQL: each round trip)",
    labelNames: ['verb'] as const,
    registers: [this.registry],
    collect: () => this.publishTally(this.storeStatementSeconds, 'seconds'),
  });

  /** Counts one statement the store ran (see `openStore`'s observer): its SQL and its time in ms. */
  storeStatement(sql: string, ms: number): void {
    const verb = statementVerb(sql);
    let tally = this.statementTally.get(verb);
    if (!tally) this.statementTally.set(verb, (tally = { n: 0, seconds: 0 }));
    tally.n += 1;
    tally.seconds += ms / 1000;
  }

  private publishTally(counter: Counter<'verb'>, field: 'n' | 'seconds'): void {
    counter.reset();
    for (const [verb, tally] of this.statementTally) counter.inc({ verb }, tally[field]);
  }

  constructor(sources: MetricSources, opts: MetricsOptions = {}) {
    collectDefaultMetrics({ register: this.registry, prefix: 'cairn_process_' });
    const refreshMs = opts.storeRefreshMs ?? STORE_FIGURES_REFRESH_MS;
    const elapsed = opts.elapsed ?? (() => performance.now());
    const taskCounts = atMostEvery(() => sources.taskCounts(), refreshMs, elapsed);
    const oldestLastBackup = atMostEvery(() => sources.oldestLastBackup(), refreshMs, elapsed);
    const rpoBreached = atMostEvery(() => sources.rpoBreached(), refreshMs, elapsed);
    new Gauge({
      name: 'cairn_tasks',
      help: 'Tasks in the store, by state and kind',
      labelNames: ['state', 'kind'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const row of await taskCounts()) this.set({ state: row.state, kind: row.kind }, row.n);
      },
    });
    // Read from the store (at most every STORE_FIGURES_REFRESH_MS). Aggregates only: /metrics has
    // no token, so it names no tenant or instance (which ones are behind: the rpo.breached events).
    new Gauge({
      name: 'cairn_oldest_last_backup_timestamp_seconds',
      help: 'When the newest restore point of the instance furthest behind was made (epoch seconds); NaN while no instance has one',
      registers: [this.registry],
      async collect() {
        // An unlabelled gauge is always exported: NaN says "none" (comparisons with it are false, so no alert fires).
        const at = await oldestLastBackup();
        this.set(at === null ? NaN : at / 1000);
      },
    });
    new Gauge({
      name: 'cairn_rpo_breached_instances',
      help: 'Instances whose newest restore point is older than their offering allows (rpoMinutes), all tenants together',
      registers: [this.registry],
      async collect() {
        this.set(await rpoBreached());
      },
    });
    new Gauge({
      name: 'cairn_agent_sessions',
      help: 'Agent WebSocket sessions held by this process',
      registers: [this.registry],
      collect() {
        this.set(sources.localSessions());
      },
    });
    new Gauge({
      name: 'cairn_agent_heartbeat_interval_seconds',
      help: 'The heartbeat interval this process tells its agents now: CAIRN_HEARTBEAT_MS, longer while its fleet is larger than CAIRN_HEARTBEATS_PER_S allows at that pace',
      registers: [this.registry],
      collect() {
        this.set(sources.heartbeatMs() / 1000);
      },
    });
    new Gauge({
      name: 'cairn_agent_idle_heartbeat_interval_seconds',
      help: 'The heartbeat interval this process tells its agents for while they hold no task: the pace CAIRN_HEARTBEATS_PER_S allows its fleet, at most one task lease, never shorter than cairn_agent_heartbeat_interval_seconds',
      registers: [this.registry],
      collect() {
        this.set(sources.idleHeartbeatMs() / 1000);
      },
    });
    new Gauge({
      name: 'cairn_event_streams',
      help: 'Event streams (GET /v1/events/stream) held open by this process',
      registers: [this.registry],
      collect() {
        this.set(sources.eventStreams());
      },
    });
    new Gauge({
      name: 'cairn_waiting_requests',
      help: 'Requests waiting on this process (?wait=ready, the power-state wait of an in-place restore), all tenants together',
      registers: [this.registry],
      collect() {
        this.set(sources.waitingRequests());
      },
    });
  }
}

const VERBS = new Set(['select', 'insert', 'update', 'delete', 'begin', 'commit', 'rollback']);

/** A statement's first word, lower case, if it is one of {@link VERBS}; else `other`. */
export function statementVerb(sql: string): string {
  let verb = verbOfText.get(sql);
  if (verb !== undefined) return verb;
  const word = /^\s*([a-z]+)/i.exec(sql)?.[1]?.toLowerCase();
  verb = word !== undefined && VERBS.has(word) ? word : 'other';
  // The texts of compiled queries recur; long ones (a list of every length) are not kept.
  if (verbOfText.size < VERB_TEXTS && sql.length <= VERB_TEXT_LENGTH) verbOfText.set(sql, verb);
  return verb;
}

/** Statement texts whose verb is remembered. */
const VERB_TEXTS = 1000;
const VERB_TEXT_LENGTH = 2000;
const verbOfText = new Map<string, string>();
