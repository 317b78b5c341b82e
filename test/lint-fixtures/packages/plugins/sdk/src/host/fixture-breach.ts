// expect: @typescript-eslint/no-restricted-imports @cairn/plugin-sdk/host imports node:* and the SDK itself only
// expect: @typescript-eslint/no-restricted-imports the plugin host imports no wire code: wire types only
import WebSocket from 'ws';
import { wire } from '@cairn/proto';

export const used = [WebSocket, wire];
