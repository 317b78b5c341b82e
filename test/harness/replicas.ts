import type { TestDatabase } from './databases.js';
import type { ControlPlaneProc, Proc } from './processes.js';
import { Stack } from './stack.js';

/** Two control-plane replicas on one fresh MySQL database, under one test clock, and one agent. */
export interface TwoReplicas {
  db: TestDatabase;
  /** The test clock file both replicas read. */
  clock: string;
  a: ControlPlaneProc;
  b: ControlPlaneProc;
  /** Enrolled through replica `a`, in zone `zone-a`. */
  agent: Proc;
  stop(): Promise<void>;
}

/**
 * Starts two replicas sharing a fresh MySQL database and a test clock set to `clockAt`, plus one
 * agent in `zone-a` named `agentName`. `env` goes to both replicas (on top of the clock's).
 * A stack (stack.ts) with `replicas: 2` does the same inside a describe block.
 */
export async function twoReplicas(opts: {
  clockAt: string;
  agentName?: string;
  env?: Record<string, string>;
}): Promise<TwoReplicas> {
  const stack = new Stack('mysql', {
    clockAt: opts.clockAt,
    replicas: 2,
    ...(opts.env ? { env: opts.env } : {}),
    agents: [{ name: opts.agentName ?? 'replica-host' }],
  });
  try {
    await stack.start();
  } catch (err) {
    await stack.stop();
    throw err;
  }
  const [a, b] = stack.replicas as [ControlPlaneProc, ControlPlaneProc];
  return { db: stack.db, clock: stack.clock, a, b, agent: stack.agent.proc, stop: () => stack.stop() };
}
