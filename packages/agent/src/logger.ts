import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

/** The agent's logger: pino, JSON lines on stdout. */
export type Logger = PinoLogger;

export const LOG_LEVELS = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
] as const satisfies readonly LevelWithSilent[];
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Creates the process logger. Writes synchronously to stdout so that the last lines before a
 * crash or `kill -9` are not lost in a buffer.
 *
 * @example const log = createLogger('info'); log.info({ agentId }, 'agent connected');
 */
export function createLogger(level: LogLevel, destination: NodeJS.WritableStream | number = 1): Logger {
  const dest = typeof destination === 'number' ? pino.destination({ dest: destination, sync: true }) : destination;
  return pino({ name: 'cairn-agent', level, base: { pid: process.pid } }, dest);
}
