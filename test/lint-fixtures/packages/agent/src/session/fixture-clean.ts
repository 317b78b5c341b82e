// expect: clean
import WebSocket from 'ws';
import { encodeFrame } from '@cairn/proto';
import { Spool } from '../spool/spool.js';
import { AgentConnection } from './connection.js';

export const used = [WebSocket, encodeFrame, Spool, AgentConnection];
