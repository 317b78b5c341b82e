// expect: @typescript-eslint/no-restricted-imports the conformance kit imports the SDK, the agent
// expect: @typescript-eslint/no-restricted-imports the conformance kit imports the SDK, the agent
import dummy from '@cairn/plugin-dummy';
import { encodeFrame } from '@cairn/proto';

export const used = [dummy, encodeFrame];
