// expect: clean
import { dueFire } from '../domain/schedule.js';
import { newId } from '../store/ids.js';
import { Operations } from '../service/operations.js';
import { Metrics } from '../observability/metrics.js';
import { Scheduler } from './scheduler.js';

export const used = [dueFire, newId, Operations, Metrics, Scheduler];
