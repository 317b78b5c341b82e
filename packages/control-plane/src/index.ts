export { loadConfig, type Config } from './config.js';
export { startControlPlane, type ControlPlane } from './server.js';
