/**
 * The exit codes of `cairn`, stable for scripts (the table in docs/cli.md). An error that ends
 * the command carries its code; main.ts prints its message on stderr and exits with it.
 */
export const EXIT = {
  /** Done; for a task waited on: it succeeded. */
  ok: 0,
  /** The task waited on failed, was cancelled or lost; or an error of no other kind. */
  failed: 1,
  /** A bad flag, argument or command; a missing or unreadable configuration. */
  usage: 2,
  /** The server refused the request (a 4xx or 5xx problem other than 404). */
  api: 3,
  /** The id (or context) named does not exist, or is not visible to this token. */
  notFound: 4,
  /** `--timeout` passed while waiting; the work goes on. */
  timeout: 5,
  /** The server could not be reached (refused, unknown host, no answer). */
  unreachable: 6,
  /** Interrupted by Ctrl-C (SIGINT). */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that ends the command with `code`, its message on stderr (each line prefixed once). */
export class CliError extends Error {
  constructor(
    readonly code: ExitCode,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
