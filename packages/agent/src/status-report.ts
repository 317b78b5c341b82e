/**
 * `cairn-agent status`: what an operator on the host needs to know, read from the state
 * directory without touching it (the agent may be running): the drain state (the operator's and
 * the control plane's), the tasks the journal calls running, and the control plane the agent last
 * reached.
 */
import type { AgentCredential } from './state/credential.js';
import { drainMessage, effectiveDrain, readDrain, readServerDrain, type DrainRecord } from './state/drain.js';
import { TaskJournal } from './state/journal.js';
import { processStart, readStatus, type AgentStatus } from './state/status.js';

export interface StatusReport {
  agentId: string;
  name: string;
  zone: string;
  process: { running: boolean; pid: number | null; startedAt: string | null; stoppedAt: string | null };
  controlPlane: {
    url: string;
    /** `connected`: a session holds now; `disconnected`: one held earlier; `never`: none yet. */
    state: 'connected' | 'disconnected' | 'never';
    lastConnectedAt: string | null;
    lostAt: string | null;
  };
  drain: {
    /** Whether new backups are refused, and the message they are refused with. */
    refusesBackups: boolean;
    message: string | null;
    local: DrainView;
    controlPlane: DrainView;
  };
  /** Tasks the journal calls running; when the process is gone they are reported as interrupted on its next start. */
  running: { taskId: string; attempt: number; operation: string; plugin: string; startedAt: string }[];
}

interface DrainView {
  enabled: boolean;
  message: string | null;
  since: string | null;
}

const view = (d: DrainRecord): DrainView => ({
  enabled: d.enabled,
  message: d.enabled ? drainMessage(d) : null,
  since: d.updatedAt || null,
});

/**
 * Is the agent process that wrote the status still running? Its PID must name a live process
 * (EPERM: alive, but someone else's), and, where the status recorded when it started, one that
 * started then: after a crash, a busy host gives the PID to another process within minutes.
 */
function alive(pid: number, procStart?: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = procStart === undefined ? undefined : processStart(pid);
  return now === undefined || now === procStart;
}

export function statusReport(
  stateDir: string,
  credential: AgentCredential,
  isAlive: (pid: number, procStart?: number) => boolean = alive,
): StatusReport {
  const status: AgentStatus | undefined = readStatus(stateDir);
  const running = status !== undefined && status.stoppedAt === undefined && isAlive(status.pid, status.procStart);
  const local = readDrain(stateDir);
  const server = readServerDrain(stateDir);
  const applies = effectiveDrain(local, server);
  const connected = running && status?.connectedAt !== undefined && status.lostAt === undefined;
  return {
    agentId: credential.agentId,
    name: credential.name,
    zone: credential.zone,
    process: {
      running,
      pid: status?.pid ?? null,
      startedAt: status?.startedAt ?? null,
      stoppedAt: status?.stoppedAt ?? null,
    },
    controlPlane: {
      url: status?.server ?? credential.server,
      state: connected ? 'connected' : status?.connectedAt ? 'disconnected' : 'never',
      lastConnectedAt: status?.connectedAt ?? null,
      lostAt: connected ? null : (status?.lostAt ?? null),
    },
    drain: {
      refusesBackups: applies.enabled,
      message: applies.enabled ? drainMessage(applies) : null,
      local: view(local),
      controlPlane: view(server),
    },
    running: TaskJournal.read(stateDir)
      .running()
      .sort((a, b) => a.startedAt - b.startedAt)
      .map((e) => ({
        taskId: e.taskId,
        attempt: e.attempt,
        operation: e.operation,
        plugin: e.plugin,
        startedAt: new Date(e.startedAt).toISOString(),
      })),
  };
}

const drainLine = (d: DrainView) => (d.enabled ? `on: ${d.message}${d.since ? ` (since ${d.since})` : ''}` : 'off');

/** The report as lines for a terminal. */
export function formatStatus(r: StatusReport): string[] {
  const cp = r.controlPlane;
  const lines = [
    `agent          ${r.agentId} (${r.name}), zone ${r.zone}`,
    `process        ${
      r.process.running
        ? `running (pid ${r.process.pid}, since ${r.process.startedAt})`
        : r.process.pid === null
          ? 'not running (never started here)'
          : `not running (pid ${r.process.pid} ${r.process.stoppedAt ? `stopped at ${r.process.stoppedAt}` : 'is gone'})`
    }`,
    `control plane  ${cp.url}: ${
      cp.state === 'connected'
        ? `connected since ${cp.lastConnectedAt}`
        : cp.state === 'disconnected'
          ? `last reached ${cp.lastConnectedAt}${cp.lostAt ? `, lost at ${cp.lostAt}` : ''}`
          : 'never reached'
    }`,
    `backups        ${r.drain.refusesBackups ? `refused: ${r.drain.message}` : 'accepted'}`,
    `  local drain          ${drainLine(r.drain.local)}`,
    `  control plane drain  ${drainLine(r.drain.controlPlane)}`,
    `running tasks  ${r.running.length}${r.running.length > 0 && !r.process.running ? ' (interrupted: reported when the agent starts again)' : ''}`,
  ];
  for (const t of r.running)
    lines.push(`  ${t.taskId}  ${t.operation}  ${t.plugin || '-'}  attempt ${t.attempt}  since ${t.startedAt}`);
  return lines;
}
