import { PluginError } from '../errors.js';
import { confinePath, type HostAccess } from '../host-paths.js';
import type { Operation } from '../manifest.js';

/** The operations whose host paths are judged before the plugin runs. */
const TOUCHING: ReadonlySet<Operation> = new Set(['backup', 'restore', 'restore-volume', 'preflight']);

const field = (o: unknown, key: string): unknown =>
  typeof o === 'object' && o !== null && !Array.isArray(o) ? (o as Record<string, unknown>)[key] : undefined;

async function confineLocator(locator: unknown, host: HostAccess, what: string): Promise<void> {
  const paths = field(locator, 'paths');
  if (!Array.isArray(paths) || paths.length === 0)
    throw new PluginError(
      'BAD_LOCATOR',
      `${what} must be {"paths": [...]}, a non-empty list of absolute paths on the agent's host; got ${JSON.stringify(locator ?? null).slice(0, 200)}`,
    );
  for (const [i, p] of paths.entries()) await confinePath(p, host, `${what}.paths[${i}]`);
}

/**
 * The agent's own check of a task for a plugin that declares `host-paths`, before any plugin code
 * runs: every path of the locator, of a restore-volume's target locator and of a restore target
 * must resolve below the agent's roots for the task's tenant and away from its own state, whatever
 * the control plane sent. Rejects with PluginError `PATH_NOT_ALLOWED` (or `BAD_LOCATOR`).
 *
 * @example await confineRequest('restore', { locator: { paths: ['/srv/t/a'] }, target: { path: '/etc' } }, host) // → throws PATH_NOT_ALLOWED
 */
export async function confineRequest(
  operation: Operation,
  params: Record<string, unknown>,
  host: HostAccess,
): Promise<void> {
  if (!TOUCHING.has(operation)) return;
  const locator = params['locator'];
  // A preflight of the connection alone names no instance.
  if (!(operation === 'preflight' && (locator === undefined || locator === null)))
    await confineLocator(locator, host, 'locator');
  if (operation === 'restore-volume' && params['targetLocator'] !== undefined && params['targetLocator'] !== null)
    await confineLocator(params['targetLocator'], host, 'targetLocator');
  const target = params['target'];
  if ((operation === 'restore' || operation === 'restore-volume') && target !== undefined && target !== null) {
    const p = typeof target === 'string' ? target : field(target, 'path');
    await confinePath(p, host, 'target.path');
  }
}
