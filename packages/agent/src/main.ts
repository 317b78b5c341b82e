#!/usr/bin/env node
/**
 * The `cairn-agent` command: enroll, run, drain, undrain, status.
 *
 * Exit codes: 0 success (for `run`: stopped by a signal, its tasks finished or interrupted);
 * 1 enrollment failed (refused, unreachable, already enrolled), or `run` stopped by a third
 * signal without waiting for anything; 2 bad usage or an agent that cannot start (flags, missing
 * state, unusable plugin); 70 (EX_SOFTWARE) a bug of the agent's own (an uncaught exception or
 * unhandled rejection on its thread).
 */
import { loadPlugins, PluginRegistry } from '@cairn/plugin-sdk/host';
import { Command, CommanderError, Option } from 'commander';
import { Agent } from './agent.js';
import { systemClock, type Clock } from './clock.js';
import {
  CONFIG_ENV,
  parseRunConfig,
  readRunFile,
  RUN_DEFAULTS,
  RUN_ENV,
  type RunFile,
  type RunFlags,
} from './config.js';
import { enroll, EnrollError } from './enroll.js';
import { createLogger } from './logger.js';
import { AGENT_PACKAGES } from './plugins.js';
import { credentialPath, readCredential, type AgentCredential } from './state/credential.js';
import { DEFAULT_DRAIN_MESSAGE, drainPath, writeDrain } from './state/drain.js';
import { formatStatus, statusReport } from './status-report.js';
import { AGENT_VERSION } from './version.js';

/** The one clock of this process: the agent it runs and the drain files it writes read the time here. */
const clock: Clock = systemClock;

/** The exit code of an error the agent did not expect (sysexits.h EX_SOFTWARE). */
const EXIT_AGENT_BUG = 70;

/**
 * Test hook, read only here: `CAIRN_AGENT_TEST_THROW_AFTER_MS=<ms>` throws an error from a timer
 * on the agent's own thread that long after start, standing in for a bug of the agent's. Only the
 * test suite sets it; it exists to prove such a bug ends the process instead of being swallowed.
 */
const TEST_THROW_ENV = 'CAIRN_AGENT_TEST_THROW_AFTER_MS';

/** Writes to stderr and exits; stderr is synchronous for files and pipes on POSIX. */
function exit(code: number, lines: string[] = []): never {
  for (const line of lines) process.stderr.write(`${line}\n`);
  process.exit(code);
}

/** The enrolled credential of a state directory, or exit 2 with a message naming the command. */
function requireCredential(command: string, stateDir: string): AgentCredential {
  let credential: AgentCredential | undefined;
  try {
    credential = readCredential(stateDir);
  } catch (err) {
    exit(2, [`cairn-agent ${command}: ${(err as Error).message}`]);
  }
  if (!credential) {
    exit(2, [
      `cairn-agent ${command}: no enrolled agent in ${stateDir} (${credentialPath(stateDir)} is missing); run cairn-agent enroll first`,
    ]);
  }
  return credential;
}

const CONFIG_HELP = `agent config file, TOML (or ${CONFIG_ENV}); flags and variables win over it`;

/** The config file of `--config` (or CAIRN_AGENT_CONFIG), checked; exit 2 when it is bad. */
function configFile(command: string, flag: string | undefined): RunFile | undefined {
  const file = flag ?? (process.env[CONFIG_ENV] || undefined);
  if (file === undefined) return undefined;
  const read = readRunFile(file);
  if (!read.ok)
    exit(
      2,
      read.problems.map((p) => `cairn-agent ${command}: ${p}`),
    );
  return read.file;
}

/** The state directory of a command: `--state-dir`, else CAIRN_AGENT_STATE_DIR, else the config file's. */
function stateDirOf(command: string, opts: { stateDir?: string; config?: string }): string {
  const file = configFile(command, opts.config);
  const dir = opts.stateDir ?? process.env[RUN_ENV.stateDir] ?? file?.flags.stateDir;
  if (dir === undefined || dir.trim() === '')
    exit(2, [
      `cairn-agent ${command}: --state-dir (or ${RUN_ENV.stateDir}${file ? `, or state_dir in ${file.path}` : ''}) is required`,
    ]);
  return dir;
}

async function runCommand(flags: RunFlags & { config?: string }): Promise<void> {
  const file = configFile('run', flags.config);
  const parsed = parseRunConfig(flags, process.env, file);
  if (!parsed.ok)
    exit(
      2,
      parsed.problems.map((p) => `cairn-agent run: ${p}`),
    );
  const config = parsed.config;
  const credential = requireCredential('run', config.stateDir);
  // An agent enrolled over TLS never sends its credential in clear text, whatever --server says.
  const plain = config.servers?.find((s) => s.startsWith('http:'));
  if (plain && credential.server.startsWith('https:'))
    exit(2, [
      `cairn-agent run: --server ${plain} is plain http, but this agent was enrolled over https (${credential.server}); use https`,
    ]);

  const { plugins, errors } = await loadPlugins(config.plugins, { fallback: AGENT_PACKAGES });
  // The agent refuses to start with a plugin it cannot host: a half-equipped agent would
  // advertise less than the operator intended and fail its tasks later, far from the cause.
  if (errors.length > 0)
    exit(
      2,
      errors.map((e) => e.message),
    );

  const log = createLogger(config.logLevel);
  // Plugin code runs on worker threads (the default isolation): what it throws from a timer, or a
  // promise it leaves to reject, ends that thread and fails its task there, and never reaches
  // these handlers. What does reach them is the agent's own bug, after which its state cannot be
  // trusted: log it and exit non-zero, and let the supervisor restart the agent. That is safe:
  // the spool holds every report not yet acknowledged, and the journal turns each task that was
  // running into an AGENT_INTERRUPTED result on the next start. With `--plugin-isolation inline`
  // plugins share this thread and cannot be told apart from the agent, so their stray errors end
  // the process too: inline is for trusted plugins, and a crash is safer than running on after
  // an error nobody handled.
  const fatal = (what: string) => (err: unknown) => {
    try {
      log.fatal(
        { err, pluginIsolation: config.pluginIsolation },
        `${what} on the agent's thread; exiting (the journal and spool make the restart safe)`,
      );
    } finally {
      process.exit(EXIT_AGENT_BUG);
    }
  };
  process.on('uncaughtException', fatal('uncaught exception'));
  process.on('unhandledRejection', fatal('unhandled rejection'));
  const throwAfter = process.env[TEST_THROW_ENV];
  if (throwAfter !== undefined && /^\d+$/.test(throwAfter)) {
    setTimeout(() => {
      throw new Error(`injected agent bug (${TEST_THROW_ENV})`);
    }, Number(throwAfter));
  }

  const agent = new Agent({
    stateDir: config.stateDir,
    credential,
    plugins: new PluginRegistry(plugins),
    slots: config.slots,
    disconnectAbortMs: config.disconnectAbortMs,
    taskTimeoutMs: config.taskTimeoutMs,
    pluginIsolation: config.pluginIsolation,
    pluginHeapMb: config.pluginHeapMb,
    maxFrameBytes: config.maxFrameBytes,
    roots: config.roots,
    clock,
    log,
    ...(config.servers ? { servers: config.servers } : {}),
  });
  log.info(
    {
      agentId: credential.agentId,
      zone: credential.zone,
      servers: config.servers ?? [credential.server],
      slots: config.slots,
      roots: config.roots,
      ...(file ? { config: file.path } : {}),
      plugins: plugins.map((p) => `${p.manifest.name}@${p.manifest.version}`),
      agentVersion: AGENT_VERSION,
    },
    'agent starting',
  );
  agent.start();

  // First signal: refuse new tasks, let the running ones finish within the grace, flush the
  // spool, exit 0 (what a rolling restart needs). Second: interrupt the running tasks now.
  // Third: exit at once; the journal reports what was still running on the next start.
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      log.info({ signal, shutdownGraceMs: config.shutdownGraceMs }, 'agent stopping');
      agent.shutdown({ graceMs: config.shutdownGraceMs }).then((outcome) => {
        log.info(outcome, 'agent stopped');
        process.exit(0);
      }, fatal('failed shutdown'));
    } else if (signals === 2) {
      log.warn({ signal }, 'second signal: interrupting the running tasks now');
      agent.interrupt();
    } else {
      log.warn({ signal }, 'third signal: exiting at once');
      process.exit(1);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

interface EnrollFlags {
  server: string;
  token: string;
  stateDir?: string;
  config?: string;
  name?: string;
  force?: boolean;
  caFile?: string;
  fingerprint?: string;
}

function buildProgram(): Command {
  const program = new Command('cairn-agent')
    .description('Cairn agent: runs backup tasks through provider plugins for a Cairn control plane')
    .version(AGENT_VERSION);
  // Set before the subcommands are added so that they inherit it: usage errors exit 2.
  program.exitOverride((err: CommanderError) => exit(err.exitCode === 0 ? 0 : 2));
  program.showHelpAfterError('(run with --help for usage)');

  program
    .command('enroll')
    .description("exchange a one-time enrollment token for this agent's credential")
    .requiredOption('--server <url>', 'control plane URL, e.g. https://cairn.example.com')
    .requiredOption('--token <token>', 'one-time enrollment token')
    .option('--state-dir <dir>', `agent state directory (or ${RUN_ENV.stateDir})`)
    .option('--config <file>', CONFIG_HELP)
    .option('--name <name>', 'agent name shown in the control plane (default: the host name)')
    .option('--force', 'replace an agent already enrolled in the state directory')
    .option('--ca-file <file>', "PEM file of the CA that signed the control plane's certificate (https only)")
    .option(
      '--fingerprint <sha256>',
      "pin the control plane's certificate by its SHA-256 fingerprint, sha256:AB:CD:... (https only)",
    )
    .action(async (opts: EnrollFlags) => {
      const stateDir = stateDirOf('enroll', opts);
      try {
        const cred = await enroll({
          server: opts.server,
          token: opts.token,
          stateDir,
          force: opts.force === true,
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          ...(opts.caFile !== undefined ? { caFile: opts.caFile } : {}),
          ...(opts.fingerprint !== undefined ? { fingerprint: opts.fingerprint } : {}),
        });
        process.stdout.write(
          `enrolled agent ${cred.agentId} (${cred.name}) in zone ${cred.zone}; credential saved to ${credentialPath(stateDir)}\n`,
        );
      } catch (err) {
        if (err instanceof EnrollError) exit(err.exitCode, [`cairn-agent enroll: ${err.message}`]);
        exit(1, [`cairn-agent enroll: ${(err as Error).message}`]);
      }
    });

  program
    .command('run')
    .description('connect to the control plane and run tasks')
    .option('--state-dir <dir>', `agent state directory (or ${RUN_ENV.stateDir})`)
    .option('--config <file>', CONFIG_HELP)
    .option(
      '--plugins <list>',
      `comma-separated plugin packages or paths (or ${RUN_ENV.plugins}; default ${RUN_DEFAULTS.plugins.join(',')})`,
    )
    .option('--slots <n>', `tasks run at once (or ${RUN_ENV.slots}; default ${RUN_DEFAULTS.slots})`)
    .option(
      '--server <urls>',
      'control plane URL, or a comma-separated list of its replicas tried in turn (default: the one given at enrollment)',
    )
    .option('--log-level <level>', `log level (default ${RUN_DEFAULTS.logLevel})`)
    .option(
      '--disconnect-abort-ms <ms>',
      `abort running backups after this long without the control plane (default ${RUN_DEFAULTS.disconnectAbortMs})`,
    )
    .option(
      '--plugin-isolation <mode>',
      `where plugin code runs: worker (own thread per operation) or inline (or ${RUN_ENV.pluginIsolation}; default ${RUN_DEFAULTS.pluginIsolation})`,
    )
    .option(
      '--plugin-heap-mb <mb>',
      `heap each plugin worker thread may use; a plugin needing more fails its task (or ${RUN_ENV.pluginHeapMb}; default ${RUN_DEFAULTS.pluginHeapMb})`,
    )
    .option(
      '--task-timeout-ms <ms>',
      `fail any operation running longer than this (default ${RUN_DEFAULTS.taskTimeoutMs})`,
    )
    .option(
      '--max-frame-bytes <n>',
      `largest frame accepted from the control plane, told to it in the hello (default ${RUN_DEFAULTS.maxFrameBytes})`,
    )
    .option(
      '--roots <dirs>',
      `comma-separated host directories that host-path plugins (restic) may back up and restore into; {tenant} stands for the task's tenant id (or ${RUN_ENV.roots}; default none)`,
    )
    .option(
      '--shutdown-grace <duration>',
      `on SIGTERM, how long running tasks may take to finish, e.g. 10m, 90s (or ${RUN_ENV.shutdownGrace}; default 10m)`,
    )
    .action((flags: RunFlags & { config?: string }) => runCommand(flags));

  program
    .command('drain')
    .description('refuse new backup tasks (maintenance); running backups finish')
    .option('--state-dir <dir>', `agent state directory (or ${RUN_ENV.stateDir})`)
    .option('--config <file>', CONFIG_HELP)
    .option('--message <text>', `message shown for refused backups (default "${DEFAULT_DRAIN_MESSAGE}")`)
    .action((opts: { stateDir?: string; config?: string; message?: string }) => {
      const stateDir = stateDirOf('drain', opts);
      requireCredential('drain', stateDir);
      const record = writeDrain(stateDir, { enabled: true, message: opts.message ?? '', source: 'local' }, clock);
      process.stdout.write(`agent drained: ${record.message || DEFAULT_DRAIN_MESSAGE} (${drainPath(stateDir)})\n`);
    });

  program
    .command('undrain')
    .description('accept backup tasks again')
    .option('--state-dir <dir>', `agent state directory (or ${RUN_ENV.stateDir})`)
    .option('--config <file>', CONFIG_HELP)
    .action((opts: { stateDir?: string; config?: string }) => {
      const stateDir = stateDirOf('undrain', opts);
      requireCredential('undrain', stateDir);
      writeDrain(stateDir, { enabled: false, message: '', source: 'local' }, clock);
      process.stdout.write(`agent undrained (${drainPath(stateDir)})\n`);
    });

  program
    .command('status')
    .description('show the drain state, the running tasks and the control plane last reached')
    .option('--state-dir <dir>', `agent state directory (or ${RUN_ENV.stateDir})`)
    .option('--config <file>', CONFIG_HELP)
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action((opts: { stateDir?: string; config?: string; output: 'table' | 'json' }) => {
      const stateDir = stateDirOf('status', opts);
      const report = statusReport(stateDir, requireCredential('status', stateDir));
      process.stdout.write(
        opts.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : `${formatStatus(report).join('\n')}\n`,
      );
    });

  return program;
}

await buildProgram().parseAsync(process.argv);
