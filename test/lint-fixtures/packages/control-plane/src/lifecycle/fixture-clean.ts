// expect: clean
import { toStart } from '../domain/job-run.js';
import { JobRepository } from '../store/job-repository.js';
import { createLogger } from '../logger.js';

export const used = [toStart, JobRepository, createLogger];
