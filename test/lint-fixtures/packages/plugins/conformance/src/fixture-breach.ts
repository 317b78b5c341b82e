// expect: @typescript-eslint/no-restricted-imports the conformance kit imports the SDK (its host loads plugins
// expect: @typescript-eslint/no-restricted-imports the conformance kit imports the SDK (its host loads plugins
import dummy from '@cairn/plugin-dummy';
import { encodeFrame } from '@cairn/proto';

export const used = [dummy, encodeFrame];
