// expect: @typescript-eslint/no-restricted-imports plugins are loaded by npm name at run time
import dummy from '@cairn/plugin-dummy';

export const used = dummy;
