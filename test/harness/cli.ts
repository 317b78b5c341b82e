/** Runs the built `cairn` CLI as a child process (asynchronously: tests talk to servers meanwhile). */
import { execFile, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
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

/** The formats `cairn` prints data in for scripts. */
export type DataFormat = 'json' | 'yaml';

/** `cairn` run with `-o json` or `-o yaml`, its stdout read back in that format. */
export interface FormattedCli {
  format: DataFormat;
  /** Reads stdout in the format. */
  parse(text: string): any;
  /** Runs `cairn args -o format`: its exit code and output. */
  run(args: string[]): Promise<CliRun>;
  /** Runs it, insisting on exit `code` (0 unless given): stdout parsed. */
  ok(args: string[], code?: number): Promise<any>;
  /** Runs a command the API refuses, insisting on exit 3 and nothing on stdout: stderr. */
  refused(args: string[]): Promise<string>;
}

/** `cairn` in `format`, each run with `env` (CAIRN_CONFIG, CAIRN_URL, …). */
export function formattedCli(format: DataFormat, env: Record<string, string>): FormattedCli {
  const parse = (text: string): any => (format === 'json' ? JSON.parse(text) : parseYaml(text));
  const run = (args: string[]) => startCli([...args, '-o', format], env).done;
  const insist = async (args: string[], code: number, emptyStdout = false): Promise<CliRun> => {
    const r = await run(args);
    if (r.code !== code || (emptyStdout && r.stdout !== ''))
      throw new Error(
        `cairn ${args.join(' ')} -o ${format}: exit ${r.code}, not ${code}${emptyStdout ? ' with nothing on stdout' : ''}\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`,
      );
    return r;
  };
  return {
    format,
    parse,
    run,
    ok: async (args, code = 0) => parse((await insist(args, code)).stdout),
    refused: async (args) => (await insist(args, 3, true)).stderr,
  };
}
