export { loadConfig, type Config } from './config.js';
export { startControlPlane, type ControlPlane } from './server.js';
export { openStore, migrate, type Store } from './store/db.js';
export { DutyLeaseRepository } from './store/duty-lease-repository.js';
