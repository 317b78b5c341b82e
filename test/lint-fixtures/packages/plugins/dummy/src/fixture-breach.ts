// expect: @typescript-eslint/no-restricted-imports a plugin imports the SDK only
// expect: @typescript-eslint/no-restricted-imports a plugin imports the SDK only
// expect: @typescript-eslint/no-restricted-imports a plugin imports the SDK only, and not its host
import { z } from 'zod';
import { encodeFrame } from '@cairn/proto';
import { loadPlugin } from '@cairn/plugin-sdk/host';

export const used = [z, encodeFrame, loadPlugin];
