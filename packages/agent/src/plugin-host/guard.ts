/**
 * The guard around every plugin call lives in `@cairn/plugin-sdk/host`, so that
 * `@cairn/plugin-sdk/testing` runs plugins under exactly the agent's rules.
 */
export {
  abortFailure,
  DEFAULT_ABORT_GRACE_MS,
  failureOf,
  guard,
  TaskAbort,
  type Guarded,
  type GuardOptions,
  type TaskFailure,
} from '@cairn/plugin-sdk/host';
