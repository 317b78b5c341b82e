// expect: clean
import type { wire } from '@cairn/proto';
import { OPERATIONS } from '@cairn/proto/vocabulary';
import { PluginError } from './errors.js';

export type Used = wire.IEnvelope;
export const used = [PluginError, OPERATIONS];
