import { LocatorClaims } from './service/locator-claims.js';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createApp } from './api/app.js';
import { Audiences } from './api/audience.js';
import { ListCursors } from './api/paging.js';
import type { Config } from './config.js';
import { attachAgentGateway } from './dispatch/gateway.js';
import { Dispatcher } from './dispatch/dispatcher.js';
import { Reports } from './lifecycle/reports.js';
import { ReportCommitter } from './lifecycle/report-committer.js';
import type { Logger } from './logger.js';
import { Metrics } from './observability/metrics.js';
import { fileClock, systemClock, type Clock } from './clock.js';
import { ProviderRounds } from './scheduler/provider-rounds.js';
import { HistorySweep } from './scheduler/history.js';
import { JobHistorySweep } from './scheduler/job-history.js';
import { RpoWatch } from './scheduler/rpo-watch.js';
import { Duties } from './scheduler/duties.js';
import { FIRES_PER_TRANSACTION, Scheduler } from './scheduler/scheduler.js';
import { Agents, type AgentSessions } from './service/agents.js';
import { BackupJobs } from './service/backup-jobs.js';
import { EventFeed } from './service/event-feed.js';
import { WaiterQuota } from './domain/hold-quota.js';
import { MaintenanceWindows } from './service/maintenance.js';
import { Instances } from './service/instances.js';
import { Offerings } from './service/offerings.js';
import { Operations } from './service/operations.js';
import { Providers } from './service/providers.js';
import { Records } from './service/records.js';
import { pruneScheduleKey, Schedules, syncScheduleKey } from './service/schedules.js';
import { Tenants } from './service/tenants.js';
import { PrincipalCache } from './service/principal-cache.js';
import { migrate, openStore, type StatementObserver } from './store/db.js';
import { PROBED_TABLES } from './store/schedule-repository.js';
import { claimSqliteFile } from './store/sqlite-owner.js';
import { HistoryRepository } from './store/history-repository.js';
import { IdempotencyRepository } from './store/idempotency-repository.js';
import { afterCommit, scopedDb } from './store/request-scope.js';
import { SecretBox } from './store/secrets.js';
import { UsageRepository } from './store/usage-repository.js';
import { loadTlsFiles } from './tls.js';
import { reportStores, wireRepositories } from './repositories.js';

/** How long requests still running at shutdown may take before their connections are cut. */
const SHUTDOWN_GRACE_MS = 1_000;
/** How often the event feed looks for new events while someone listens. */
const EVENT_POLL_MS = 250;
/** How long an answered Idempotency-Key is replayed. */
const DAY_MS = 24 * 3600 * 1000;
const IDEMPOTENCY_REPLAY_MS = DAY_MS;
/** How often each process looks for maintenance set on any replica (drains to send, readiness). */
const MAINTENANCE_POLL_MS = 1000;
/** How often a `?wait=ready` request looks at the store again, and how many may wait at once. */
const MAINTENANCE_WAIT = { pollMs: 250 };
/** Sessions one agent may open at once before CAIRN_AGENT_RECONNECT_MS paces it: a blip and a re-hello pass at once. */
const AGENT_SESSION_BURST = 3;
/**
 * Agents' reports applied per transaction at most (docs/performance.md): SQLite runs it on the
 * event loop from start to end; on MySQL the loop is free while the server answers.
 */
const REPORTS_PER_TICK = { sqlite: 500, mysql: 2000 } as const;
/** How often Node checks requests against their timeout (its default is 30 s). */
const TIMEOUT_CHECK_MS = 1000;

export interface ControlPlane {
  url: string;
  port: number;
  /** Set when this start generated the first sp-admin token (shown once). */
  generatedAdminToken: string | undefined;
  /** With TLS: the certificate's SHA-256 fingerprint (what agents may pin) and expiry. */
  tls: { fingerprint: string; notAfter: string } | undefined;
  /** The control plane's clock (a test's file clock under CAIRN_TEST_CLOCK_FILE). */
  clock: Clock;
  close(): Promise<void>;
}

/** The composition root: opens the store, wires repositories, API, dispatcher and gateway. */
export async function startControlPlane(config: Config, log: Logger): Promise<ControlPlane> {
  // Before the store: a bad certificate must not leave a migrated database behind a dead start.
  const tls = config.tls ? loadTlsFiles(config.tls) : undefined;
  // The one clock: everything that asks what time it is asks it (timers stay real).
  const clock: Clock = config.testClockFile ? fileClock(config.testClockFile) : systemClock;
  // The real time hosts keep: what agents send is judged by it, and the leases they renew every
  // heartbeat count by it, so a test's clock jumping a day ahead loses no running task. The one
  // place a clock other than `clock` is handed on.
  const wireClock: Clock = systemClock;
  if (config.testClockFile) log.warn({ file: config.testClockFile }, 'the control plane runs on a TEST clock file');
  // Every statement is counted in the metrics, which are made further down (their sources need
  // the store): until then a statement (the migrations) is not counted.
  let statementRan: StatementObserver = () => {};
  const store = openStore(config.databaseUrl, (sql, ms) => statementRan(sql, ms));
  store.checkpoints?.onFailure((err) =>
    log.warn({ err }, 'SQLite checkpoints went back to the writer: the worker thread that made them stopped'),
  );
  // SQLite serves this process alone: a second control plane on the file refuses to start.
  let owner: { release(): void } | undefined;
  try {
    owner = store.file === undefined ? undefined : claimSqliteFile(store.file);
  } catch (err) {
    await store.close();
    throw err;
  }
  await migrate(store.db, clock);
  const secrets = SecretBox.load(config.secretKey, config.dataDir);
  // Endpoints stored in clear by an earlier version have their passwords sealed now.
  const { repos, providerTenant } = await wireRepositories({ store, config, secrets, clock });
  await repos.catalog.sealEndpointSecrets();
  const { tenants, quotas, agents, catalog, events, backups, tasks, queue, jobs } = repos;
  const { jobRuns, retention, providerSchedules, sync, rpo, schedules: scheduleRepo } = repos;
  const { maintenanceScopes, maintenanceGate, maintenance } = repos;
  // Inside a mutating request every repository joins that request's transaction.
  const db = scopedDb(store.db);
  let generatedAdminToken: string | undefined;
  if (config.adminToken) {
    await tenants.ensureAdminToken(providerTenant, config.adminToken);
  } else if (!(await tenants.hasSpAdminToken())) {
    generatedAdminToken = (await tenants.createToken(providerTenant, 'sp-admin', 'initial admin')).token;
  }

  // This process's name in the duty leases: host, pid and a random part, unique per start.
  const replicaId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  log.info({ replicaId }, 'replica named');
  // One waiting room for every request that waits (maintenance readiness, power state), per tenant.
  const waiters = new WaiterQuota(config.waiterLimits);
  const metrics = new Metrics(
    {
      taskCounts: () => tasks.countsByStateAndKind(),
      localSessions: () => dispatcher.localSessions,
      heartbeatMs: () => dispatcher.heartbeatMs,
      idleHeartbeatMs: () => dispatcher.idleHeartbeatMs,
      eventStreams: () => feed.held,
      waitingRequests: () => waiters.held(),
      oldestLastBackup: () => rpo.oldestLastBackup(),
      rpoBreached: () => rpo.breached(),
    },
    { storeRefreshMs: config.metricsStoreRefreshMs },
  );
  statementRan = (sql, ms) => metrics.storeStatement(sql, ms);
  // Agents' reports go from their sessions straight to the task lifecycle; the dispatcher is
  // woken when they ended tasks (their slots are free).
  const reports = new Reports(reportStores(db, repos), {
    clock,
    wireClock,
    leaseMs: config.taskLeaseMs,
    tasksEnded: () => dispatcher.poke(),
    log: log.child({ component: 'reports' }),
    metrics,
  });
  // Every session's reports of one tick go in one transaction, acknowledged after it commits.
  const committer = new ReportCommitter({
    reports,
    maxReports: REPORTS_PER_TICK[store.dialect],
    log: log.child({ component: 'reports' }),
  });
  const dispatcher: Dispatcher = new Dispatcher({
    queue,
    agents,
    catalog,
    maintenance,
    maintenanceGate,
    quotas,
    clock,
    wireClock,
    opts: {
      heartbeatMs: config.heartbeatMs,
      heartbeatsPerSecond: config.heartbeatsPerSecond,
      taskLeaseMs: config.taskLeaseMs,
      pollMs: config.dispatchPollMs,
      maxConcurrentTasks: config.maxConcurrentTasks,
      maxFrameBytes: config.maxFrameBytes,
      frameRate: config.agentFrameRate,
      byteRate: config.agentByteRate,
      sessionPacing: { intervalMs: config.agentReconnectMs, burst: AGENT_SESSION_BURST },
      maxDeliveries: config.assignMaxSends,
      maintenancePollMs: MAINTENANCE_POLL_MS,
    },
    log: log.child({ component: 'dispatcher' }),
    metrics,
  });
  let accepting = true;
  const feed = new EventFeed(events, EVENT_POLL_MS, { streams: config.streamLimits });
  // The dispatcher is woken once the request that queued work has committed it.
  const operations = new Operations({
    catalog,
    tasks,
    backups,
    retention,
    sync,
    providerSyncs: repos.providerSyncs,
    agents,
    providerSchedules,
    maintenanceGate,
    quotas,
    wake: () => afterCommit(() => dispatcher.wake()),
    waiters,
    clock,
  });
  const backupJobs = new BackupJobs({
    jobs,
    runs: jobRuns,
    catalog,
    tenants,
    quotas,
    tasks,
    schedules: scheduleRepo,
    clock,
    wake: () => afterCommit(() => dispatcher.wake()),
  });
  const scheduler = new Scheduler({
    root: store.db,
    schedules: scheduleRepo,
    catalog,
    tasks,
    events,
    operations,
    rpo: new RpoWatch({ root: store.db, rpo, events, log: log.child({ component: 'rpo-watch' }) }),
    duties: new Duties({
      leases: repos.dutyLeases,
      holder: replicaId,
      leaseMs: config.dutyLeaseMs,
      log: log.child({ component: 'duties' }),
      changed: (duty, held) => metrics.dutyHeld.set({ duty }, held ? 1 : 0),
    }),
    dutyRan: (duty) => metrics.dutyPasses.inc({ duty }),
    clock,
    tickMs: config.schedulerTickMs,
    log: log.child({ component: 'scheduler' }),
    changes: () => store.writes.version(PROBED_TABLES),
    probeRefreshMs: config.schedulerRefreshMs,
    ticked: (now, tookMs, askedMs) => {
      metrics.schedulerTick.set(now / 1000);
      metrics.schedulerTickDuration.observe(tookMs / 1000);
      if (askedMs !== undefined) metrics.schedulerProbes.observe(askedMs / 1000);
    },
    providerRounds: new ProviderRounds({
      root: store.db,
      schedules: scheduleRepo,
      catalog,
      providerTenant,
      rounds: [
        {
          what: 'sync',
          key: syncScheduleKey,
          intervalMs: config.syncIntervalS * 1000,
          queue: (provider, tenantId, priority) => operations.syncProvider(provider, tenantId, priority),
        },
        {
          // Deletes only forget; the repository's exclusive lock is taken here, on the SP's clock.
          what: 'prune',
          key: pruneScheduleKey,
          intervalMs: config.pruneIntervalS * 1000,
          applies: (provider) => agents.declares(provider.zone, provider.plugin, 'prune'),
          queue: (provider, tenantId, priority) => operations.pruneProvider(provider, tenantId, priority),
        },
      ],
      log: log.child({ component: 'provider-rounds' }),
    }),
    jobs: {
      service: backupJobs,
      history: new JobHistorySweep({
        root: store.db,
        schedules: scheduleRepo,
        jobs,
        limits: { keep: config.jobRunsKeep, maxAgeMs: config.jobRunsMaxAgeDays * DAY_MS },
        log: log.child({ component: 'job-history' }),
      }),
    },
    history: new HistorySweep({
      history: new HistoryRepository(store.db),
      limits: {
        taskMs: config.history.taskDays * DAY_MS,
        progressMs: config.history.progressDays * DAY_MS,
        eventMs: config.history.eventDays * DAY_MS,
      },
      log: log.child({ component: 'history' }),
      forgot: (what, rows) => metrics.historyForgotten.inc({ what }, rows),
    }),
    evaluated: () => metrics.schedulesEvaluated.inc(),
    firesPerTransaction: FIRES_PER_TRANSACTION[store.dialect],
  });
  const claims = new LocatorClaims(catalog, (zone, plugin, capability) => agents.declares(zone, plugin, capability));
  const maintenanceWindows = new MaintenanceWindows({
    scopes: maintenanceScopes,
    windows: maintenance,
    agents,
    catalog,
    opts: MAINTENANCE_WAIT,
    waiters,
    changed: () => afterCommit(() => dispatcher.maintenanceChanged()),
    clock,
  });
  // This process's agent sessions are told of credential changes once the request has committed
  // (a session must not act on a change that may yet roll back).
  const agentSessions: AgentSessions = {
    agentRevoked: (id) => afterCommit(() => dispatcher.agentRevoked(id)),
    rotationRequested: (id) =>
      afterCommit(() => {
        dispatcher
          .rotationRequested(id)
          .catch((err: unknown) => log.warn({ err, agentId: id }, 'credential offer failed'));
      }),
  };
  const schedules = new Schedules(catalog, scheduleRepo, quotas, clock);
  const idempotency = new IdempotencyRepository(db, clock, secrets, {
    replayMs: IDEMPOTENCY_REPLAY_MS,
    leaseMs: config.idempotencyLeaseMs,
  });
  const app = createApp(
    {
      config,
      db,
      tenants: new Tenants(tenants, quotas, new PrincipalCache({ tokens: tenants, boundMs: config.authCacheMs })),
      agents: new Agents(agents, catalog, maintenanceWindows, agentSessions),
      idempotency,
      records: new Records({
        tasks,
        eventLog: events,
        backups,
        jobs,
        usage: new UsageRepository(db),
        idempotency,
        operations,
      }),
      cursors: new ListCursors(secrets.derive('list cursors')),
      audiences: new Audiences(() => catalog.allEndpoints()),
      operations,
      schedules,
      instances: new Instances({
        tenants,
        catalog,
        agents,
        quotas,
        tasks,
        claims,
        operations,
        schedules,
        clock,
      }),
      offerings: new Offerings(tenants, catalog, operations, clock),
      providers: new Providers({ tenants, catalog, agents, claims, operations }),
      backupJobs,
      maintenance: maintenanceWindows,
      feed,
      metrics,
      isAccepting: () => accepting,
    },
    log,
  );

  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve(
      {
        fetch: app.fetch,
        port: config.port,
        hostname: config.host,
        // With TLS the one listener speaks only TLS: the API and the agent WebSocket (wss://) alike.
        ...(tls ? { createServer: createHttpsServer } : {}),
        // A client trickling its headers or body is cut off: Node's defaults let it hold a
        // connection for 300 s and only look every 30 s. Streams are not affected (they are
        // long answers, not long requests), nor are upgraded agent sockets.
        serverOptions: {
          requestTimeout: config.requestTimeoutMs,
          headersTimeout: config.requestTimeoutMs,
          connectionsCheckingInterval: TIMEOUT_CHECK_MS,
          ...(tls ? { cert: tls.cert, key: tls.key } : {}),
        },
      },
      () => resolve(s as Server),
    );
    (s as Server).once('error', reject);
  });
  const wss = attachAgentGateway(server, {
    agents,
    dispatcher,
    reports: committer,
    wireClock,
    log: log.child({ component: 'gateway' }),
  });
  dispatcher.start();
  scheduler.start();
  const port = (server.address() as AddressInfo).port;
  const url = `${tls ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

  return {
    url,
    port,
    generatedAdminToken,
    tls: tls ? { fingerprint: tls.fingerprint, notAfter: tls.notAfter } : undefined,
    clock,
    async close() {
      accepting = false;
      // Readiness fails first: load balancers stop sending work while the listener still
      // answers (a probe meets 503, not a refused connection).
      if (config.shutdownDrainMs > 0) await new Promise((resolve) => setTimeout(resolve, config.shutdownDrainMs));
      feed.close();
      scheduler.stop();
      await scheduler.releaseDuties();
      dispatcher.stop();
      dispatcher.closeAll();
      wss.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive sockets go at once; requests still running (event streams above all)
        // get a moment to finish before their connections are cut.
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
      });
      await store.close();
      owner?.release();
    },
  };
}
