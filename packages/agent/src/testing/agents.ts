import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadPlugin, PluginRegistry, type LoadedPlugin } from '@cairn/plugin-sdk/host';
import { Agent, type AgentOptions } from '../agent.js';
import { systemClock } from '../clock.js';
import { createLogger, type LogLevel } from '../logger.js';
import { AGENT_PACKAGES } from '../plugins.js';
import { writeCredential, type AgentCredential } from '../state/credential.js';
import { waitFor } from './wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** packages/agent */
export const PACKAGE_DIR = path.resolve(here, '..', '..');
/**
 * The plugin fixtures of the host's tests (`test-fixtures/` of `@cairn/plugin-sdk`, beside the
 * `dist/` its entry is built into), found through the agent's dependency on the SDK.
 */
export const FIXTURES_DIR = path.resolve(
  path.dirname(createRequire(import.meta.url).resolve('@cairn/plugin-sdk')),
  '..',
  'test-fixtures',
);
const MAIN_TS = path.join(PACKAGE_DIR, 'src', 'main.ts');

export function fixture(name: string): string {
  return path.join(FIXTURES_DIR, name);
}

/** Writes a credential for a fake control plane into `stateDir`. */
export function enrollForTest(
  stateDir: string,
  server: string,
  overrides: Partial<AgentCredential> = {},
): AgentCredential {
  const credential: AgentCredential = {
    server,
    agentId: 'agt_test',
    credential: 'test-credential',
    zone: 'zone-a',
    name: 'test agent',
    ...overrides,
  };
  writeCredential(stateDir, credential);
  return credential;
}

/** Log lines (parsed JSON) of an in-process agent. */
export class LogCapture extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() !== '') this.lines.push(JSON.parse(line) as Record<string, unknown>);
    }
    done();
  }
  find(msg: string): Record<string, unknown>[] {
    return this.lines.filter((l) => l['msg'] === msg);
  }
}

export interface TestAgent {
  agent: Agent;
  logs: LogCapture;
  stop(): Promise<void>;
}

/** Starts an in-process agent on `stateDir` (already enrolled) with the given plugins. */
export async function startTestAgent(
  stateDir: string,
  credential: AgentCredential,
  options: { plugins?: LoadedPlugin[]; level?: LogLevel } & Partial<Omit<AgentOptions, 'plugins'>> = {},
): Promise<TestAgent> {
  const plugins = options.plugins ?? [await loadPlugin('@cairn/plugin-dummy', { fallback: AGENT_PACKAGES })];
  const logs = new LogCapture();
  const agent = new Agent({
    stateDir,
    credential,
    plugins: new PluginRegistry(plugins),
    slots: options.slots ?? 2,
    disconnectAbortMs: options.disconnectAbortMs ?? 600_000,
    taskTimeoutMs: options.taskTimeoutMs ?? 60_000,
    log: createLogger(options.level ?? 'debug', logs),
    drainPollMs: options.drainPollMs ?? 50,
    backoff: options.backoff ?? { initialMs: 50, maxMs: 500 },
    clock: options.clock ?? systemClock,
  });
  agent.start();
  return { agent, logs, stop: () => agent.stop({ graceMs: 0 }) };
}

const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** A `cairn-agent` child process (run from source through tsx). */
export class AgentProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** stdout parsed as pino JSON lines (non-JSON lines skipped). */
  logLines(): Record<string, unknown>[] {
    return this.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  waitForLog(msg: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return waitFor(
      () => this.logLines().find((l) => l['msg'] === msg),
      `log line "${msg}" (stderr: ${this.stderr.slice(-500)})`,
      timeoutMs,
    );
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child.kill(signal);
  }
}

export function spawnAgentCli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): AgentProcess {
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  // The child must not inherit vitest's worker settings.
  delete env['NODE_OPTIONS'];
  delete env['VITEST'];
  const child = spawn(process.execPath, ['--import', tsxLoader, MAIN_TS, ...args], {
    cwd: options.cwd ?? PACKAGE_DIR,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  return new AgentProcess(child);
}
