/** Operations a provider may implement; the manifest's `capabilities` lists the ones it does. */
export { OPERATIONS, isOperation, type Operation } from '@cairn/proto/vocabulary';
import type { Operation } from '@cairn/proto/vocabulary';

/**
 * Capabilities that are not operations but change how the control plane treats the plugin:
 * `handles-chains`: the backup system keeps (or merges) what an incremental restore point
 * needs, so retention may delete an increment's base through the plugin.
 * `restore-requires-stopped`: an in-place restore needs the instance stopped; the control plane
 * asks the plugin's `power-state` first and refuses to restore onto a running instance.
 * `provider-schedules`: the backup system can run an SLA's schedule on its own clock; the
 * control plane asks it (`configure-schedule`) when an instance joins an SLA offering, and the
 * plugin answers whether it took the clock over.
 * `incremental`: a backup asked for `INCREMENT` with a `parentExternalId` stores only what changed
 * since that point and answers `mode: 'INCREMENT'` with that parent; without it, a plugin may answer
 * any backup with a full one.
 * `restore-to-path`: `restore` accepts `target: {path}` (`RestoreToPathTarget`), an empty
 * directory on the agent's host, and writes the restore point's files under it with their
 * content, size, mode and symlink target: each at its path relative to the directory the locator
 * names, or (as restic does) at its absolute path below the target; the plugin documents which.
 * The conformance kit compares such restores byte for byte (its `restoredDir` says where).
 * `host-paths`: the locator is `{paths: [absolute paths on the agent's host]}` and a restore
 * target `{path}`. The agent then checks every such path against the roots of its own
 * configuration before any plugin code runs (`PATH_NOT_ALLOWED` outside them), hands the roots
 * to the plugin as `ctx.host`, and the plugin restores through `makeStaging` and `placeRestored`
 * so that no write follows a link out of them. The control plane lets tenants name such paths
 * only below the roots the SP granted them on the connection.
 * `repository-identity`: the backup system's repository has an identity of its own (restic's
 * repository id). Every operation that opens the repository checks it against the connection's
 * `identity` and fails `REPOSITORY_CHANGED` on another one before changing anything, reports the
 * identity it found when the connection records none (`checkRepositoryIdentity`), and no
 * operation but a preflight asked to `initialise` ever creates a repository: a missing one fails
 * `REPOSITORY_NOT_FOUND`.
 * `sp-locators`: the locator and restore targets name resources of the service provider that no
 * grant of host roots covers (a Kubernetes namespace): the control plane refuses
 * `tenantLocators: any` on its connections, so only sp-admins name them.
 */
export const TRAITS = [
  'handles-chains',
  'restore-requires-stopped',
  'provider-schedules',
  'incremental',
  'restore-to-path',
  'host-paths',
  'repository-identity',
  'sp-locators',
] as const;
export type Trait = (typeof TRAITS)[number];
export type Capability = Operation | Trait;

/** A JSON Schema (draft 2020-12 subset) describing a provider connection's `config`. */
export type JsonSchema = { [key: string]: unknown };

/**
 * What a plugin says about itself. The agent validates it before running any plugin code,
 * reports it to the control plane, and routes tasks by `capabilities`.
 */
export interface PluginManifest {
  /** npm package name, e.g. `@cairn/plugin-dummy` or `cairn-plugin-acme`. */
  name: string;
  /** The plugin's own semver version. */
  version: string;
  /**
   * The SDK API version the plugin was written for (see SDK_API_VERSION). Together with
   * `apiVersions` it must list exactly the versions of the package.json field
   * `"cairn": {"apiVersions": [...]}`, which the agent reads before loading any plugin code.
   */
  apiVersion: number;
  /** Extra API versions the plugin can also speak, for negotiation. */
  apiVersions?: number[];
  /** Which operations the plugin implements, plus any traits it declares. */
  capabilities: Capability[];
  /** JSON Schema of the provider connection's config. */
  configSchema: JsonSchema;
  /** One line for humans. */
  description?: string;
}
