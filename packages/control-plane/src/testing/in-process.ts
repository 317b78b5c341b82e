import { pino } from 'pino';
import { Api } from '@cairn/test-harness/api';
import { freshDatabase, type Backend } from '@cairn/test-harness/databases';
import { loadConfig } from '../config.js';
import { startControlPlane, type ControlPlane } from '../server.js';

export interface InProcess {
  cp: ControlPlane;
  /** A client holding the sp-admin token. */
  admin: Api;
  adminToken: string;
  /** Stops the control plane and drops its database. */
  close(): Promise<void>;
}

/** A control plane in the test's own process, on a fresh database, for API-level tests. */
export async function inProcessControlPlane(backend: Backend): Promise<InProcess> {
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
    }),
    pino({ level: 'silent' }),
  );
  return {
    cp,
    admin: new Api(cp.url, adminToken),
    adminToken,
    async close() {
      await cp.close();
      await db.drop();
    },
  };
}
