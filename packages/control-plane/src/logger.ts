import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; secrets never reach them. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'cairn-control-plane' },
    redact: {
      paths: [
        'token',
        'credential',
        'credentials',
        '*.token',
        '*.credential',
        '*.credentials',
        'req.headers.authorization',
      ],
      censor: '[redacted]',
    },
  });
}
