import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PluginError, REPOSITORY_NOT_FOUND, type PluginLogger } from '@cairn/plugin-sdk';
import {
  localDirectory,
  lockState,
  parseLock,
  planLocks,
  processStartMs,
  type LockInfo,
  type LockState,
} from './locks.js';

/** The oldest restic this plugin drives: `--json` backup summaries and `snapshots --json` as used here. */
export const MIN_VERSION = [0, 14, 0] as const;

/** How a connection reaches restic. The password travels only in the child's environment. */
export interface ResticTarget {
  /** The restic executable (a path, or a name looked up on PATH). */
  binary: string;
  /** The repository: an absolute local path or a restic URL (`rest:`, `sftp:`, ...). */
  repository: string;
  password: string;
  /** After a cancel, how long restic may take to stop on SIGINT before it is killed. */
  cancelGraceMs: number;
  /** How long a command waits, retrying, for a lock another restic holds on the repository. */
  lockWaitMs: number;
}

/**
 * On Linux, each restic is started through util-linux's `setpriv --pdeathsig INT`, so that it is
 * interrupted when the thread that started it dies: an agent killed with -9 (or a plugin thread
 * stopped) takes its restics with it, instead of leaving them to run on, orphaned, holding a live
 * lock on the repository and writing a snapshot no task will record. On SIGINT restic removes its
 * lock and exits. Without setpriv (other systems, a minimal image) restic is started directly;
 * under the shipped systemd unit the agent's cgroup ends its children anyway.
 */
const SETPRIV =
  process.platform === 'linux' ? ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) : undefined;

/** The command and arguments that start `binary` with `args` (through setpriv where there is one). */
function resticCommand(binary: string, args: readonly string[]): [string, string[]] {
  return SETPRIV ? [SETPRIV, ['--pdeathsig', 'INT', '--', binary, ...args]] : [binary, [...args]];
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Called with each stdout line as it arrives (for `--json` status streams). */
  onLine?: (line: string) => void;
  /** Exit codes that are not failures (backup: 3 means some source files could not be read). */
  okCodes?: readonly number[];
  /** Variables for restic besides the repository and password, unless the agent's environment sets them. */
  defaults?: Record<string, string>;
  /**
   * How long {@link ResticClient.ok} waits for another restic's lock, for this call (the target's
   * `lockWaitMs` otherwise). 0: stale locks are still cleared once, and a live lock fails at once.
   */
  lockWaitMs?: number;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The signal that ended restic, when one did (SIGKILL after a cancel's grace): it left its lock. */
  signal?: NodeJS.Signals;
}

/** The most stderr kept from one command: the end of it, where restic says why it stopped. */
const MAX_STDERR = 64 * 1024;

/** Variables restic would read a password or repository from besides the ones set here. */
const SHADOWING_ENV = ['RESTIC_PASSWORD_FILE', 'RESTIC_PASSWORD_COMMAND', 'RESTIC_REPOSITORY_FILE'];

function childEnv(target: ResticTarget, defaults: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...defaults, ...process.env };
  for (const key of SHADOWING_ENV) delete env[key];
  return { ...env, RESTIC_REPOSITORY: target.repository, RESTIC_PASSWORD: target.password };
}

/**
 * Hides the password (and a password in a URL's user info) in text that leaves the plugin:
 * error messages, events and logs never carry it, even where restic or a path happens to.
 */
export function redact(text: string, password: string): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@\s/]*@/gi, '$1***@');
  if (password.length >= 4) out = out.split(password).join('***');
  return out;
}

/** The line restic gave as its reason (`Fatal: ...`), else the last lines of stderr, shortened. */
function reason(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const fatal = lines.find((l) => l.startsWith('Fatal:'));
  const text = fatal ? fatal.slice('Fatal:'.length).trim() : lines.slice(-3).join('; ');
  return text.length > 500 ? `${text.slice(0, 499)}…` : text || 'restic failed without a message';
}

/**
 * Maps a failed restic command to a PluginError with a code a tenant can act on. restic 0.14
 * exits 1 for every fatal error, so its message decides. Transient causes are retryable.
 */
export function classify(res: RunResult, target: ResticTarget, what: string): PluginError {
  const text = res.stderr;
  const why = redact(reason(text), target.password);
  const repo = redact(target.repository, target.password);
  if (/wrong password or no key found/i.test(text))
    return new PluginError('WRONG_PASSWORD', `restic: wrong password for repository ${repo}`);
  if (
    /connection refused|no such host|i\/o timeout|connection reset|dial tcp|ssh: |unable to start the sftp session|unexpected HTTP response/i.test(
      text,
    )
  )
    return new PluginError('REPOSITORY_UNREACHABLE', `restic: repository ${repo} cannot be reached (${why})`, {
      retryable: true,
    });
  if (/unable to open config file|Is there a repository at the following location/i.test(text))
    return new PluginError(REPOSITORY_NOT_FOUND, `restic: there is no repository at ${repo} (${why})`);
  if (/repository is already locked|unable to create lock/i.test(text))
    return new PluginError('REPOSITORY_LOCKED', `restic: repository ${repo} is locked by another restic (${why})`, {
      retryable: true,
    });
  if (/no matching ID found/i.test(text))
    return new PluginError('BACKUP_NOT_FOUND', `restic: ${what}: no such snapshot in ${repo} (${why})`);
  if (/no space left on device/i.test(text))
    return new PluginError('NO_SPACE', `restic: ${what}: no space left (${why})`, { retryable: true });
  return new PluginError('RESTIC_FAILED', `restic: ${what} failed (exit ${res.code}): ${why}`);
}

function spawnFailure(err: NodeJS.ErrnoException, binary: string): PluginError {
  if (err.code === 'ENOENT')
    return new PluginError(
      'RESTIC_MISSING',
      `restic is not installed: ${binary} was not found (install restic >= 0.14)`,
    );
  if (err.code === 'EACCES')
    return new PluginError('RESTIC_MISSING', `restic at ${binary} cannot be run (${err.code})`);
  return new PluginError('RESTIC_FAILED', `restic could not be started: ${err.message}`);
}

/** The version a `restic version` line states, e.g. `restic 0.14.0 compiled with go1.19.8`. */
export function parseVersion(text: string): [number, number, number] | undefined {
  const m = /restic (\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

export function isSupported(version: readonly number[]): boolean {
  for (let i = 0; i < MIN_VERSION.length; i++) {
    if (version[i]! !== MIN_VERSION[i]) return version[i]! > MIN_VERSION[i]!;
  }
  return true;
}

export type VersionCheck = { ok: true; version: string } | { ok: false; error: PluginError };

const versions = new Map<string, VersionCheck>();

/**
 * Runs `<binary> version` once per binary (per process) and refuses restic older than 0.14, a
 * binary that is missing, or one that does not say which version it is.
 */
export function checkVersion(binary: string): VersionCheck {
  const known = versions.get(binary);
  if (known) return known;
  let check: VersionCheck;
  try {
    const out = execFileSync(binary, ['version'], { encoding: 'utf8', timeout: 10_000, stdio: 'pipe' });
    const version = parseVersion(out);
    if (!version) {
      check = {
        ok: false,
        error: new PluginError(
          'RESTIC_MISSING',
          `${binary} does not look like restic: "version" printed ${JSON.stringify(out.trim().slice(0, 100))}`,
        ),
      };
    } else if (!isSupported(version)) {
      check = {
        ok: false,
        error: new PluginError(
          'RESTIC_TOO_OLD',
          `restic ${version.join('.')} at ${binary} is too old: Cairn needs restic ${MIN_VERSION.join('.')} or newer`,
        ),
      };
    } else check = { ok: true, version: version.join('.') };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { status?: number | null };
    check = {
      ok: false,
      error:
        e.code === 'ENOENT' || e.code === 'EACCES'
          ? spawnFailure(e, binary)
          : new PluginError('RESTIC_MISSING', `${binary} version failed: ${e.message.split('\n')[0]}`),
    };
  }
  versions.set(binary, check);
  return check;
}

/** Runs restic commands against one repository. */
export class ResticClient {
  constructor(
    readonly target: ResticTarget,
    private readonly logger?: PluginLogger,
  ) {}

  /**
   * Runs `restic <args>` to its end. On abort, restic gets SIGINT (it removes its own lock and
   * exits), then SIGKILL after `cancelGraceMs`; a restic that a signal ended left its lock, which
   * is then cleared ({@link clearStaleLocks}), so the repository stays usable, and the call
   * rejects with the abort reason. (Reading every lock costs a key derivation each: not paid for a
   * restic that stopped on SIGINT and removed its own.)
   */
  async run(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const { signal } = opts;
    signal?.throwIfAborted();
    const started = Date.now();
    const res = await this.spawn(args, opts);
    // The arguments carry no secret (the password is in the environment); output is not logged.
    this.logger?.debug({ args: [...args], code: res.code, ms: Date.now() - started }, `restic ${args[0]} ended`);
    if (signal?.aborted) {
      if (res.signal) await this.clearStaleLocks().catch(() => undefined);
      throw signal.reason;
    }
    return res;
  }

  /**
   * Like {@link run}, but a non-zero exit (outside `okCodes`) is a PluginError. A repository
   * another restic has locked (a prune, a check) is waited for up to `lockWaitMs`. The first time
   * a call finds the repository locked, stale locks are cleared once first
   * ({@link clearStaleLocks}), never a live one, which is then waited for.
   */
  async ok(args: readonly string[], what: string, opts: RunOptions = {}): Promise<RunResult> {
    const deadline = Date.now() + (opts.lockWaitMs ?? this.target.lockWaitMs);
    let unlocked = false;
    for (let wait = 500; ;) {
      const res = await this.run(args, opts);
      if (res.code === 0 || opts.okCodes?.includes(res.code)) return res;
      const err = classify(res, this.target, what);
      if (err.code !== 'REPOSITORY_LOCKED') throw err;
      if (!unlocked) {
        unlocked = true;
        // A lock that cannot be cleared is waited for, like a live one.
        await this.clearStaleLocks().catch((e: Error) =>
          this.logger?.warn({ err: e.message }, 'restic: stale locks could not be cleared'),
        );
        continue;
      }
      if (Date.now() + wait > deadline) throw err;
      await sleep(wait, undefined, opts.signal ? { signal: opts.signal } : {});
      wait = Math.min(wait * 2, 5_000);
    }
  }

  /**
   * Removes the locks of restics that no longer run on this host: the lock of one killed with
   * its agent (`kill -9`, a power cut), which would otherwise keep every prune, forget and check
   * out of the repository for restic's 30 minutes.
   *
   * `restic unlock` is not used where it can be helped: restic 0.14 tests whether a lock's process
   * still runs by sending SIGHUP to its PID. Once that PID is reused, the signal reaches whatever
   * process has it now, and most processes end on SIGHUP. So each lock is read and judged here
   * ({@link lockState}) without signalling anyone. In a local repository a stale lock's file is
   * removed. Elsewhere `restic unlock` runs only when it would signal no stranger: no lock of this
   * host's has a PID a later process has taken (a live restic ignores the signal). Otherwise the
   * lock is waited for, and stays until restic's 30 minutes are up.
   */
  private async clearStaleLocks(): Promise<void> {
    const listed = await this.spawn(['list', 'locks', '--no-lock']).catch(() => undefined);
    if (listed?.code !== 0) return;
    const host = hostname();
    const found: { id: string; lock: LockInfo; state: LockState }[] = [];
    for (const id of listed.stdout.split('\n').filter((l) => /^[0-9a-f]{64}$/.test(l))) {
      // A lock removed meanwhile (its restic ended) fails to print: nothing to do.
      const shown = await this.spawn(['cat', 'lock', id, '--no-lock']).catch(() => undefined);
      if (shown?.code !== 0) continue;
      let lock;
      try {
        lock = parseLock(JSON.parse(shown.stdout));
      } catch {
        lock = undefined;
      }
      if (!lock) continue;
      const state = lockState(lock, host, processStartMs(lock.pid), Date.now());
      found.push({ id, lock, state });
    }
    const dir = localDirectory(this.target.repository);
    const plan = planLocks(found, dir !== undefined);
    if (plan.do === 'remove') {
      for (const { id, lock, state } of found.filter((f) => plan.ids.includes(f.id))) {
        await rm(path.join(dir!, 'locks', id), { force: true });
        this.logger?.info(
          { lock: id.slice(0, 8), pid: lock.pid, taken: lock.time, state },
          'restic: removed a lock its restic left behind',
        );
      }
    } else if (plan.do === 'unlock') {
      const unlocked = await this.spawn(['unlock']).catch(() => undefined);
      this.logger?.info({ code: unlocked?.code }, 'restic unlock: stale locks removed');
    } else if (found.length > 0)
      this.logger?.info({ locks: found.length }, `restic: locks left as they are: ${plan.why}`);
  }

  /** Runs a command that prints one JSON document and parses it. */
  async json<T>(args: readonly string[], what: string, signal?: AbortSignal): Promise<T> {
    const res = await this.ok([...args, '--json'], what, signal ? { signal } : {});
    try {
      return JSON.parse(res.stdout) as T;
    } catch {
      throw new PluginError('RESTIC_FAILED', `restic: ${what} printed no JSON: ${res.stdout.slice(0, 200)}`);
    }
  }

  private spawn(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const { signal, onLine } = opts;
    return new Promise((resolve, reject) => {
      const [command, argv] = resticCommand(this.target.binary, args);
      const child = spawn(command, argv, {
        env: childEnv(this.target, opts.defaults),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let pending = '';
      let killTimer: NodeJS.Timeout | undefined;
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        if (!onLine) {
          stdout += chunk;
          return;
        }
        pending += chunk;
        let i;
        while ((i = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, i);
          pending = pending.slice(i + 1);
          stdout = line;
          onLine(line);
        }
      });
      child.stderr.on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-MAX_STDERR);
      });
      const onAbort = () => {
        child.kill('SIGINT');
        killTimer = setTimeout(() => child.kill('SIGKILL'), this.target.cancelGraceMs);
      };
      if (signal) signal.addEventListener('abort', onAbort, { once: true });
      child.once('error', (err: NodeJS.ErrnoException) => {
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(killTimer);
        reject(spawnFailure(err, this.target.binary));
      });
      child.once('close', (code, sig) => {
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(killTimer);
        if (onLine && pending !== '') {
          stdout = pending;
          onLine(pending);
        }
        // setpriv could not start restic: as spawn's own ENOENT / EACCES.
        if (
          command !== this.target.binary &&
          (code === 127 || code === 126) &&
          /^setpriv: failed to execute/m.test(stderr)
        ) {
          reject(
            spawnFailure(
              Object.assign(new Error(stderr.trim()), { code: code === 127 ? 'ENOENT' : 'EACCES' }),
              this.target.binary,
            ),
          );
          return;
        }
        resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr, ...(sig ? { signal: sig } : {}) });
      });
    });
  }
}
