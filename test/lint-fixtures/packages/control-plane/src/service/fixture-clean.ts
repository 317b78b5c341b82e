// expect: clean
import { ConflictError } from '../domain/errors.js';
import { newId } from '../store/ids.js';
import { createLogger } from '../logger.js';
import { Operations } from './operations.js';

export const used = [ConflictError, newId, createLogger, Operations];
