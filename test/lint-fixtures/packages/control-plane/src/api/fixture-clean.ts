// expect: clean
import { OpenAPIHono } from '@hono/zod-openapi';
import { AppError } from '../domain/errors.js';
import { Operations } from '../service/operations.js';
import { isUniqueViolation } from '../store/db.js';
import { loadConfig } from '../config.js';
import { createApp } from './app.js';

export const used = [OpenAPIHono, AppError, Operations, isUniqueViolation, loadConfig, createApp];
