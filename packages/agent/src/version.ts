import { readFileSync } from 'node:fs';

/**
 * The agent's own version, reported in every hello. Read from package.json at run time: the
 * file sits one level above both `src/` and `dist/`, and is outside the TypeScript root.
 */
export const AGENT_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();
