// expect: clean
import { decideReport } from '../domain/report-outcome.js';
import { ReportRepository } from '../store/report-repository.js';
import { Metrics } from '../observability/metrics.js';
import { reactToTaskEnds } from './task-end.js';

export const used = [decideReport, ReportRepository, Metrics, reactToTaskEnds];
