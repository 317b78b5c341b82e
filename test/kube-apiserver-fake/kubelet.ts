/**
 * The fake's kubelet runs no images: it executes the narrow part of a busybox shell that the CSI
 * plugin's pods use, against the directories of the claims the pod mounts. A container's command
 * is either `sha256sum FILE...` or `sh -c SCRIPT`, where SCRIPT is statements joined by ` && `,
 * each `printf %s "$VAR" > FILE` (VAR from the container's env) or `sha256sum FILE...`. Output is
 * what busybox prints (`<hex>  FILE`, errors as `sha256sum: FILE: No such file or directory`).
 * A command `restic backup|restore|snapshots|forget|cat ...` runs the machine's restic (a data mover pod of
 * a restic image), in the container's `workingDir` mapped to its claim's directory, with the
 * container's RESTIC_REPOSITORY and RESTIC_PASSWORD and every absolute argument mapped the same.
 * Anything else fails with exit code 127, as a shell does for a command it cannot find, so a pod
 * spec the fake accepts is one a busybox or restic image runs the same way on a real cluster.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface ContainerRun {
  exitCode: number;
  log: string;
}

/** Maps a path inside the container to a host path, or undefined when no mounted claim holds it. */
export type Resolve = (path: string) => string | undefined;

const PRINTF = /^printf %s "\$([A-Za-z_][A-Za-z0-9_]*)" > (\S+)$/;
const SHA256SUM = /^sha256sum((?: \S+)+)$/;

export interface RunOptions {
  /** The host directory of the container's workingDir (restic runs there). */
  workingDir?: string;
  /** Where restic keeps its cache. */
  cacheDir?: string;
}

const RESTIC_COMMANDS = ['backup', 'restore', 'snapshots', 'forget', 'cat'];

export function runContainer(
  command: readonly string[],
  env: Record<string, string>,
  resolve: Resolve,
  opts: RunOptions = {},
): ContainerRun {
  const out: string[] = [];
  const finish = (exitCode: number) => ({ exitCode, log: out.join('') });
  if (command[0] === 'restic' && RESTIC_COMMANDS.includes(command[1] ?? '')) return restic(command, env, resolve, opts);
  if (command[0] === 'sha256sum') return finish(sha256sum(command.slice(1), resolve, out));
  if (command.length !== 3 || command[0] !== 'sh' || command[1] !== '-c')
    return finish(notFound(command.join(' '), out));
  for (const statement of command[2]!.split(' && ')) {
    const write = PRINTF.exec(statement);
    const hash = SHA256SUM.exec(statement);
    let code: number;
    if (write) code = printfTo(write[2]!, env[write[1]!] ?? '', resolve, out);
    else if (hash) code = sha256sum(hash[1]!.trim().split(' '), resolve, out);
    else code = notFound(statement, out);
    if (code !== 0) return finish(code);
  }
  return finish(0);
}

function notFound(what: string, out: string[]): number {
  out.push(`sh: ${what}: not found (the fake kubelet runs printf %s "$VAR" > FILE and sha256sum FILE... only)\n`);
  return 127;
}

function printfTo(path: string, text: string, resolve: Resolve, out: string[]): number {
  const host = resolve(path);
  if (!host || !existsSync(dirname(host))) {
    out.push(`sh: can't create ${path}: nonexistent directory\n`);
    return 1;
  }
  writeFileSync(host, text);
  return 0;
}

function sha256sum(paths: string[], resolve: Resolve, out: string[]): number {
  let code = 0;
  for (const path of paths) {
    const host = resolve(path);
    if (!host || !existsSync(host) || !statSync(host).isFile()) {
      out.push(`sha256sum: ${path}: No such file or directory\n`);
      code = 1;
      continue;
    }
    out.push(`${createHash('sha256').update(readFileSync(host)).digest('hex')}  ${path}\n`);
  }
  return code;
}

/** A resolver for mounts `[{mountPath, dir}]`: a path at or under a mount, without `..`. */
export function mountResolver(mounts: readonly { mountPath: string; dir: string }[]): Resolve {
  return (path) => {
    if (!path.startsWith('/') || path.split('/').includes('..')) return undefined;
    for (const { mountPath, dir } of mounts) {
      const base = mountPath.replace(/\/+$/, '');
      if (path === base) return dir;
      if (path.startsWith(`${base}/`)) return `${dir}${path.slice(base.length)}`;
    }
    return undefined;
  };
}

function restic(
  command: readonly string[],
  env: Record<string, string>,
  resolve: Resolve,
  opts: RunOptions,
): ContainerRun {
  const args: string[] = [];
  for (const arg of command.slice(1)) {
    const host = arg.startsWith('/') ? resolve(arg) : arg;
    if (host === undefined) return { exitCode: 1, log: `Fatal: ${arg} is not on a mounted volume\n` };
    args.push(host);
  }
  // restic runs in the cache directory when no claim is mounted: it must be there.
  if (opts.cacheDir) mkdirSync(opts.cacheDir, { recursive: true });
  const run = spawnSync('restic', args, {
    cwd: opts.workingDir ?? opts.cacheDir ?? '/',
    encoding: 'utf8',
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      RESTIC_REPOSITORY: env['RESTIC_REPOSITORY'] ?? '',
      RESTIC_PASSWORD: env['RESTIC_PASSWORD'] ?? '',
      ...(opts.cacheDir ? { RESTIC_CACHE_DIR: opts.cacheDir } : {}),
    },
    timeout: 120_000,
  });
  if (run.error) return { exitCode: 127, log: `restic: ${run.error.message}\n` };
  return { exitCode: run.status ?? 1, log: `${run.stdout}${run.stderr}` };
}
