/** Runs the built `cairn` CLI as a child process (asynchronously: tests talk to servers meanwhile). */
import { execFile, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { root } from './processes.js';

export const CLI = path.join(root, 'packages/cli/dist/main.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a run gets: none of the caller's CAIRN_* settings leak in, no colour. */
export function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const k of Object.keys(env)) if (k.startsWith('CAIRN_')) delete env[k];
  return { ...env, ...extra };
}

/** Starts `file args…` (default: `node cairn`); `done` resolves with its exit code and output once it ends. */
export function startCli(
  args: string[],
  env: Record<string, string>,
  command: { file: string; args: string[] } = { file: process.execPath, args: [CLI] },
): { child: ChildProcess; done: Promise<CliRun> } {
  let child!: ChildProcess;
  const done = new Promise<CliRun>((resolve) => {
    child = execFile(
      command.file,
      [...command.args, ...args],
      { env: cliEnv(env), timeout: 120_000 },
      (err, stdout, stderr) =>
        resolve({
          code: err ? (typeof err.code === 'number' ? err.code : null) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        }),
    );
  });
  return { child, done };
}
