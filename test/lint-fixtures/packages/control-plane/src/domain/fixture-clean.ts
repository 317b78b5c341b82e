// expect: clean
import type { wire } from '@cairn/proto';
import { InputError } from './errors.js';
import { normaliseName } from './names.js';

export type Used = wire.IEnvelope;
export const used = [InputError, normaliseName];
