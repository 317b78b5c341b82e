import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { Api } from '@cairn/test-harness/api';
import { freshDatabase, type Backend } from '@cairn/test-harness/databases';
import { offerDummy } from '@cairn/test-harness/scenario';
import { loadConfig } from '../config.js';
import { startControlPlane, type ControlPlane } from '../server.js';
import { checkTaskCountsAt } from './task-counts.js';

export interface InProcess {
  cp: ControlPlane;
  /** A client holding the sp-admin token. */
  admin: Api;
  adminToken: string;
  /** Stops the control plane and drops its database. */
  close(): Promise<void>;
}

/**
 * A control plane in the test's own process, on a fresh database, for API-level tests; `env`
 * adds to or replaces its settings.
 */
export async function inProcessControlPlane(backend: Backend, env: Record<string, string> = {}): Promise<InProcess> {
  const adminToken = 'in-process-test-admin-token';
  const db = await freshDatabase(backend);
  const cp = await startControlPlane(
    loadConfig({
      CAIRN_DATABASE_URL: db.url,
      CAIRN_DATA_DIR: db.dataDir,
      CAIRN_PORT: '0',
      CAIRN_ADMIN_TOKEN: adminToken,
      CAIRN_SHUTDOWN_DRAIN_MS: '0',
      // Periodic sync and prune have tests of their own; here they would add tasks and events no test counts.
      CAIRN_SYNC_INTERVAL_S: '0',
      CAIRN_PRUNE_INTERVAL_S: '0',
      ...env,
    }),
    pino({ level: 'silent' }),
  );
  return {
    cp,
    admin: new Api(cp.url, adminToken),
    adminToken,
    async close() {
      await cp.close();
      try {
        // Whatever the tests did to tasks, the kept counts of ended ones followed it.
        await checkTaskCountsAt(db.url);
      } finally {
        await db.drop();
      }
    },
  };
}

/**
 * A control plane in the test's own process for the tests of one `describe` block: started before
 * its first test, closed (its database dropped) after its last. Call it in the block's body.
 */
export function inProcessFixture(backend: Backend, env: Record<string, string> = {}): InProcessFixture {
  const fixture = new InProcessFixture();
  beforeAll(async () => {
    fixture.env = await inProcessControlPlane(backend, env);
  });
  afterAll(() => fixture.env?.close());
  return fixture;
}

export class InProcessFixture {
  /** @internal set by inProcessFixture's hook. */
  env?: InProcess;

  get cp(): ControlPlane {
    return this.started().cp;
  }

  /** A client holding the sp-admin token. */
  get admin(): Api {
    return this.started().admin;
  }

  get adminToken(): string {
    return this.started().adminToken;
  }

  /** A client of this control plane holding `token`. */
  as(token: string): Api {
    return new Api(this.cp.url, token);
  }

  /** A dummy provider `provider` in zone `z1` and an offering `offering` of it (see offerDummy); its id. */
  async dummyOffering(offering: string, provider = 'd'): Promise<string> {
    return (await offerDummy(this.admin, 'z1', { provider, offering })).offeringId;
  }

  private started(): InProcess {
    if (!this.env) throw new Error('the in-process control plane starts in beforeAll: use it inside a hook or test');
    return this.env;
  }
}
