#!/usr/bin/env node
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { startControlPlane } from './server.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`cairn-control-plane: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const cp = await startControlPlane(config, log);
  log.info(
    {
      url: cp.url,
      port: cp.port,
      database: config.databaseUrl.replace(/\/\/[^@]*@/, '//***@'),
      // What an operator compares with, or gives to, `cairn-agent enroll --fingerprint`.
      ...(cp.tls ? { tls: cp.tls } : {}),
    },
    'control plane listening',
  );
  if (cp.tls && Date.parse(cp.tls.notAfter) < Date.now())
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
  if (err instanceof ConfigError) {
    process.stderr.write(`cairn-control-plane: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`cairn-control-plane: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
