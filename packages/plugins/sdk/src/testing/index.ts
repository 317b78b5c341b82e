/**
 * @cairn/plugin-sdk/testing: run a plugin's operations in tests as the Cairn agent would, with
 * a task context that records progress, events and logs, can be cancelled, and checks results
 * with the agent's own rules. See {@link MockTaskEnvironment}.
 *
 * @example
 * import { MockTaskEnvironment } from '@cairn/plugin-sdk/testing';
 * const run = await new MockTaskEnvironment(plugin, { config }).run('list-offerings');
 * expect(run).toMatchObject({ ok: true });
 */
export {
  MockTaskEnvironment,
  PluginRefusedError,
  type MockRun,
  type MockRunRecord,
  type MockTaskOptions,
  type OperationTypes,
  type RecordedEvent,
  type RecordedLog,
  type RecordedProgress,
} from './mock-environment.js';
export type { TaskFailure } from '../host/guard.js';
export type { BackupRecord } from '../host/results.js';
