// expect: @typescript-eslint/no-restricted-imports @cairn/proto imports protobufjs only
import WebSocket from 'ws';

export const used = WebSocket;
