import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { readJsonSync, writeFileAtomicSync } from './atomic.js';

/** Name of the status file inside the state directory, read by `cairn-agent status`. */
export const STATUS_FILE = 'status.json';

const statusSchema = z.object({
  pid: z.int().positive(),
  /**
   * When the process started, in clock ticks after boot (Linux): with `pid`, it names one process.
   * A PID is reused once its process is gone; a process that has it later started later. Absent
   * where there is no `/proc`, and in files written before it was kept.
   */
  procStart: z.int().nonnegative().optional(),
  startedAt: z.string(),
  /** The control plane this process connects to. */
  server: z.string(),
  /** When a session with the control plane last became ready; absent: never, in this process. */
  connectedAt: z.string().optional(),
  sessionId: z.string().optional(),
  /** When that session was lost; absent while it holds. */
  lostAt: z.string().optional(),
  /** When the process stopped cleanly; absent while it runs (or after a crash). */
  stoppedAt: z.string().optional(),
});

/** What a running agent process says about itself, for `cairn-agent status` (another process). */
export type AgentStatus = z.infer<typeof statusSchema>;

export function statusPath(stateDir: string): string {
  return path.join(stateDir, STATUS_FILE);
}

/**
 * When the process with this PID started, in clock ticks after boot (`/proc/<pid>/stat`, field
 * 22); undefined when there is no such process or no `/proc` to ask.
 */
export function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isSafeInteger(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** The last status an agent wrote, or undefined when none (never run) or damaged. */
export function readStatus(stateDir: string): AgentStatus | undefined {
  try {
    const parsed = statusSchema.safeParse(readJsonSync(statusPath(stateDir)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Keeps the status file of one agent process: written at start, on every connect and loss, and at
 * a clean stop. A failed write is logged by the caller and never stops the agent.
 */
export class StatusFile {
  private value: AgentStatus;

  constructor(
    private readonly stateDir: string,
    server: string,
    private readonly clock: Clock,
  ) {
    // The last session of an earlier process stays visible until this one connects.
    const earlier = readStatus(stateDir);
    const procStart = processStart(process.pid);
    this.value = {
      pid: process.pid,
      ...(procStart === undefined ? {} : { procStart }),
      startedAt: this.at(),
      server,
      ...(earlier?.connectedAt && earlier.server === server
        ? { connectedAt: earlier.connectedAt, lostAt: earlier.lostAt ?? earlier.stoppedAt ?? earlier.connectedAt }
        : {}),
    };
  }

  get current(): AgentStatus {
    return this.value;
  }

  started(): void {
    this.write();
  }

  connected(sessionId: string): void {
    const { lostAt: _lost, ...rest } = this.value;
    this.value = { ...rest, connectedAt: this.at(), sessionId };
    this.write();
  }

  lost(): void {
    if (!this.value.connectedAt || this.value.lostAt) return;
    this.value = { ...this.value, lostAt: this.at() };
    this.write();
  }

  stopped(): void {
    const at = this.at();
    this.value = {
      ...this.value,
      ...(this.value.connectedAt && !this.value.lostAt ? { lostAt: at } : {}),
      stoppedAt: at,
    };
    this.write();
  }

  /** Now, as the file writes times. */
  private at(): string {
    return new Date(this.clock.now()).toISOString();
  }

  private write(): void {
    writeFileAtomicSync(statusPath(this.stateDir), `${JSON.stringify(this.value, null, 2)}\n`, 0o600);
  }
}
