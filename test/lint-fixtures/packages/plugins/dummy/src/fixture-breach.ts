// expect: @typescript-eslint/no-restricted-imports a plugin imports the SDK only
// expect: @typescript-eslint/no-restricted-imports a plugin imports the SDK only
import { z } from 'zod';
import { encodeFrame } from '@cairn/proto';

export const used = [z, encodeFrame];
