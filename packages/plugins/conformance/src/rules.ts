/**
 * The kit's pure rules: what makes a run's progress acceptable, which restore point the delete
 * check removes, and what a trait needs besides itself.
 */
import type { Capability, Operation, Trait } from '@cairn/plugin-sdk';

/**
 * What is wrong with an operation's progress reports (their percents in order), if anything:
 * a percent lower than the one before, and, with `complete`, no report at all or a last report
 * below 100 %.
 *
 * @example progressProblem([20, 60, 40, 100], { complete: true }) // → 'progress went backwards: 40 % after 60 %'
 */
export function progressProblem(percents: readonly number[], options: { complete: boolean }): string | undefined {
  for (let i = 1; i < percents.length; i++) {
    if (percents[i]! < percents[i - 1]!) return `progress went backwards: ${percents[i]} % after ${percents[i - 1]} %`;
  }
  if (!options.complete) return undefined;
  if (percents.length === 0) return 'reported no progress';
  const last = percents.at(-1)!;
  return last === 100 ? undefined : `progress ended at ${last} %, not 100 %`;
}

export interface PointRef {
  externalId: string;
  parentExternalId?: string | undefined;
}

/**
 * The restore point the delete check removes, oldest first as retention does: the oldest point
 * no other point builds on, or the oldest of all when the plugin declares `handles-chains` (its
 * backup system keeps what an increment needs). `points` are oldest first.
 *
 * @example deletionVictim([{externalId: 'a'}, {externalId: 'b', parentExternalId: 'a'}], false) // → {externalId: 'b', …}
 */
export function deletionVictim<P extends PointRef>(points: readonly P[], handlesChains: boolean): P | undefined {
  if (handlesChains) return points[0];
  return points.find((p) => !points.some((q) => q.parentExternalId === p.externalId));
}

/** The operations each trait needs the plugin to declare too. */
export const TRAIT_NEEDS: Record<Trait, readonly Operation[]> = {
  'handles-chains': ['delete-backup'],
  'restore-requires-stopped': ['restore', 'power-state'],
  'provider-schedules': ['configure-schedule', 'deconfigure-schedule'],
  incremental: ['backup'],
  'restore-to-path': ['restore'],
  'host-paths': ['backup'],
  'repository-identity': ['backup', 'preflight'],
  'sp-locators': ['backup'],
};

/** The operations a trait needs that `capabilities` lacks. */
export function missingForTrait(trait: Trait, capabilities: readonly Capability[]): Operation[] {
  return TRAIT_NEEDS[trait].filter((op) => !capabilities.includes(op));
}

/** npm names Cairn's convention asks of a plugin: `cairn-plugin-<id>` or `@scope/cairn-plugin-<id>`. */
export const PLUGIN_NAME = /^(@[a-z0-9][a-z0-9._-]*\/)?cairn-plugin-[a-z0-9][a-z0-9._-]*$/;

/**
 * Problems as one line: the first `max`, then how many more there are.
 *
 * @example summarize(['a', 'b', 'c', 'd', 'e'], 3) // → 'a; b; c (and 2 more)'
 */
export function summarize(problems: readonly string[], max = 3): string {
  const more = problems.length - max;
  return `${problems.slice(0, max).join('; ')}${more > 0 ? ` (and ${more} more)` : ''}`;
}

/** What the kit saw a plugin that does not declare `host-paths` do with the host. */
export interface HostUse {
  /** Its locator for the sample names the sample's directory, a path on the agent's host. */
  locatorNamesDir: boolean;
  /** Its backup read the sample's files (their access times moved); undefined where the kit cannot see reads. */
  backupRead: boolean | undefined;
  /** A restore wrote the sample back, byte for byte, into a directory of the host. */
  restoredOnHost: boolean;
}

/**
 * Why a plugin that does not declare `host-paths` must, if the kit saw it touch the host paths
 * its locator names: without the trait the agent confines none of its paths, so a tenant could
 * name /etc or the agent's own state. Undefined when the kit saw no such use.
 *
 * @example undeclaredHostUse({ locatorNamesDir: true, backupRead: true, restoredOnHost: false }) // → 'its locator names a directory on the agent's host, and its backup read the files there, …'
 */
export function undeclaredHostUse(use: HostUse): string | undefined {
  if (!use.locatorNamesDir) return undefined;
  const seen = [
    ...(use.backupRead ? ['its backup read the files there'] : []),
    ...(use.restoredOnHost ? ['its restores wrote them back into directories of the host'] : []),
  ];
  if (seen.length === 0) return undefined;
  return `its locator names a directory on the agent's host, and ${seen.join(' and ')}, but it does not declare host-paths: the agent then checks none of its paths, so a tenant could name /etc or the agent's own state. Declare host-paths, confine each path with confinePath and restore through makeStaging and placeRestored`;
}
