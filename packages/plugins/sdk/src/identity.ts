import { MAX_REPOSITORY_IDENTITY, REPOSITORY_IDENTITY_EVENT, REPOSITORY_NOT_FOUND } from '@cairn/proto/vocabulary';
import { PluginError } from './errors.js';
import type { ProviderConnection, TaskContext } from './provider.js';

export { MAX_REPOSITORY_IDENTITY, REPOSITORY_IDENTITY_EVENT, REPOSITORY_NOT_FOUND };

/** The code of an operation that found another repository than the one its connection recorded. */
export const REPOSITORY_CHANGED = 'REPOSITORY_CHANGED';

/**
 * Tells the control plane the identity of the repository this task opened, as the reserved task
 * event `repository.identity` with `data: {identity}`. The control plane records it on the task's
 * provider connection if that records none yet, sends it with every later task
 * (`ProviderConnection.identity`), and shows the event to no one.
 */
export function reportIdentity(ctx: TaskContext, identity: string): void {
  ctx.event({
    type: REPOSITORY_IDENTITY_EVENT,
    message: `repository identity ${identity}`,
    data: { identity },
  });
}

/**
 * The check a plugin that declares `repository-identity` makes each time it opens the repository,
 * before it changes anything: `found` is the identity of the repository it opened (`where` names
 * it in the message). Through a connection that records no identity, it reports `found`
 * ({@link reportIdentity}); through one that records another, it throws `REPOSITORY_CHANGED`
 * naming both: the connection now reaches another repository (an unmounted disk, a moved or
 * re-created repository), and backing up into it or listing it would fork the catalogue.
 *
 * @example checkRepositoryIdentity(connection, ctx, config.id, `repository ${endpoint}`);
 */
export function checkRepositoryIdentity(
  connection: ProviderConnection,
  ctx: TaskContext,
  found: string,
  where = 'the repository',
): void {
  if (typeof found !== 'string' || found === '' || found.length > MAX_REPOSITORY_IDENTITY)
    throw new TypeError(`${where}: checkRepositoryIdentity needs the identity found, got ${JSON.stringify(found)}`);
  const recorded = connection.identity;
  if (recorded === undefined || recorded === null || recorded === '') {
    reportIdentity(ctx, found);
    return;
  }
  if (recorded !== found)
    throw new PluginError(
      REPOSITORY_CHANGED,
      `${where} is repository ${found}, not ${recorded}, the one this connection recorded: it is not the repository backed up to before (is its disk mounted?). Nothing was changed. If the repository was moved on purpose, an SP admin clears the connection's repositoryIdentity`,
    );
}
