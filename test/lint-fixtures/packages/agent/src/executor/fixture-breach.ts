// expect: import-x/no-restricted-paths executor/ writes reports to the spool; only session/ talks
import { AgentConnection } from '../session/connection.js';

export const used = AgentConnection;
