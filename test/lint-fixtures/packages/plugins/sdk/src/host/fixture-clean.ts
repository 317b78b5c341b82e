// expect: clean
import { Worker } from 'node:worker_threads';
import type { wire } from '@cairn/proto';
import { PluginError } from '../errors.js';
import { guard } from './guard.js';

export type Used = wire.IPluginInfo;
export const used = [Worker, PluginError, guard];
