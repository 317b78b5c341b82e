// expect: clean
import { encodeFrame } from '@cairn/proto';
import { unfit } from '../domain/placement.js';
import { newId } from '../store/ids.js';
import { Reports } from '../lifecycle/reports.js';
import { Metrics } from '../observability/metrics.js';
import { Dispatcher } from './dispatcher.js';

export const used = [encodeFrame, unfit, newId, Reports, Metrics, Dispatcher];
