// expect: @typescript-eslint/no-restricted-imports the SDK imports nothing at run time: wire types only
// expect: @typescript-eslint/no-restricted-imports the SDK imports nothing at run time but the wire vocabulary: no node:*
import { wire } from '@cairn/proto';
import fs from 'node:fs';

export const used = [wire, fs];
