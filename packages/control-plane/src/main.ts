#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, readConfigFile, type Config } from './config.js';
import { createLogger } from './logger.js';
import { startControlPlane } from './server.js';

const USAGE =
  'usage: cairn-control-plane [--config FILE]  (or CAIRN_CONFIG=FILE; every setting may also be a CAIRN_* variable)';

/** Exits 2 with one line per problem: a configuration the process cannot start with. */
function refuse(problems: string[]): never {
  for (const problem of problems) process.stderr.write(`cairn-control-plane: ${problem}\n`);
  process.exit(2);
}

/** The settings from `--config FILE` (or CAIRN_CONFIG) and the environment, which wins; exits 2 when they are bad. */
function configure(): { config: Config; file: string | undefined } {
  let file: string | undefined;
  try {
    const { values } = parseArgs({
      options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    file = values.config ?? (process.env['CAIRN_CONFIG'] || undefined);
  } catch (err) {
    refuse([(err as Error).message, USAGE]);
  }
  try {
    return { config: loadConfig(process.env, file === undefined ? undefined : readConfigFile(file)), file };
  } catch (err) {
    if (err instanceof ConfigError) refuse(err.problems);
    throw err;
  }
}

async function main(): Promise<void> {
  const { config, file } = configure();
  const log = createLogger(config.logLevel);
  const cp = await startControlPlane(config, log);
  log.info(
    {
      url: cp.url,
      port: cp.port,
      database: config.databaseUrl.replace(/\/\/[^@]*@/, '//***@'),
      ...(file !== undefined ? { config: file } : {}),
      // What an operator compares with, or gives to, `cairn-agent enroll --fingerprint`.
      ...(cp.tls ? { tls: cp.tls } : {}),
    },
    'control plane listening',
  );
  if (cp.tls && Date.parse(cp.tls.notAfter) < cp.clock.now())
    log.warn({ notAfter: cp.tls.notAfter }, 'the TLS certificate has expired: agents and clients will refuse it');
  if (cp.generatedAdminToken) {
    // Shown once: only its hash is stored.
    process.stderr.write(`\nInitial sp-admin token (shown only now; keep it safe):\n\n  ${cp.generatedAdminToken}\n\n`);
  }
  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    log.info({ signal }, 'shutting down');
    cp.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  // A setting found wrong only when it is used (a TLS file) is still a configuration error.
  if (err instanceof ConfigError) refuse(err.problems);
  process.stderr.write(`cairn-control-plane: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
