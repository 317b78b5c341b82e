// expect: import-x/no-restricted-paths api/ may import only domain/, store/, lifecycle/, service/ and the leaves
// expect: import-x/no-restricted-paths api/ may import only domain/, store/, lifecycle/, service/ and the leaves
import { AGENT_PATH } from '../dispatch/gateway.js';
import { startControlPlane } from '../server.js';

export const used = [AGENT_PATH, startControlPlane];
