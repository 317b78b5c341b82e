import path from 'node:path';
import { clockEnv, setClock } from './clock.js';
import { freshDatabase, type TestDatabase } from './databases.js';
import { enrollAgent, startAgent, startControlPlane, tempDir, type ControlPlaneProc, type Proc } from './processes.js';

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
 */
export async function twoReplicas(opts: {
  clockAt: string;
  agentName?: string;
  env?: Record<string, string>;
}): Promise<TwoReplicas> {
  const db = await freshDatabase('mysql');
  const clock = path.join(tempDir('clock'), 'now');
  setClock(clock, opts.clockAt);
  const env = { ...clockEnv(clock), ...opts.env };
  const a = await startControlPlane({ databaseUrl: db.url, dataDir: db.dataDir, env });
  const b = await startControlPlane({ databaseUrl: db.url, dataDir: db.dataDir, env });
  const agent = await startAgent((await enrollAgent(a, 'zone-a', opts.agentName ?? 'replica-host')).stateDir);
  return {
    db,
    clock,
    a,
    b,
    agent,
    async stop() {
      await agent.stop();
      await a.proc.stop();
      await b.proc.stop();
      await db.drop();
    },
  };
}
