// expect: import-x/no-restricted-paths plugin-host/ runs plugin code: it never sees the wire
// expect: @typescript-eslint/no-restricted-imports only session/ holds the socket
import { Spool } from '../spool/spool.js';
import WebSocket from 'ws';

export const used = [Spool, WebSocket];
