/**
 * @cairn/plugin-conformance: checks that a Cairn provider plugin behaves as the control plane and
 * the agent expect. It runs the plugin's operations through the SDK host the way the agent does,
 * on sample data it writes (files, a large sparse file, unicode names, a symlink…): backup,
 * a second backup after a change (an INCREMENT where the plugin declares `incremental`),
 * restores compared byte for byte (with `restore-to-path`, or where the options say a restore off the host lands), a cancel midway, a delete, every
 * declared capability, and for a plugin that declares `host-paths` its own confinement: locators
 * and restore targets outside the roots it is granted refused, links planted in its data before a
 * restore never written through; and for one that declares `repository-identity`: the identity
 * reported, another one refused (`REPOSITORY_CHANGED`), no repository created by a backup. As a command: `cairn-plugin-conformance <package> --config <file>`; in
 * vitest: `@cairn/plugin-conformance/vitest`.
 *
 * @example
 * import { runConformance, formatReport } from '@cairn/plugin-conformance';
 * const report = await runConformance({ plugin, connection: { config: { storeDir } }, locatorFor: (dir) => ({ path: dir }) });
 * console.log(formatReport(report));
 */
export {
  CHECK_NAMES,
  ConformanceUsageError,
  runConformance,
  type CheckResult,
  type CheckStatus,
  type ConformanceOptions,
  type ConformanceReport,
  type WorkDirs,
} from './run.js';
export {
  ConfigFileSchema,
  fill,
  optionsFromConfig,
  readConfigFile,
  type ConfigFile,
  type ConfigOptions,
} from './config.js';
export { formatCheck, formatReport, formatSummary } from './report.js';
export { compareTree, sample, SPARSE_SIZE, type SampleEntry } from './sample.js';
export { withProvider } from './wrap.js';
