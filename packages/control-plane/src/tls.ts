import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from './config.js';

/** What the HTTPS listener needs, read and checked once at start-up. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** SHA-256 of the server certificate, as agents pin it: `sha256:AB:CD:...`. */
  fingerprint: string;
  /** When the certificate expires (RFC 3339). */
  notAfter: string;
}

function invalid(setting: string, message: string): ConfigError {
  return new ConfigError(`invalid configuration:\n  ${setting}: ${message}`);
}

function read(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw invalid(setting, `cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * Reads `CAIRN_TLS_CERT` and `CAIRN_TLS_KEY` and checks that they make a usable pair, so that a
 * wrong file stops the start with a message naming the setting instead of failing every
 * handshake later. Files are read once: replacing them takes a restart.
 *
 * @example const tls = loadTlsFiles({ certFile: '/etc/cairn/tls.crt', keyFile: '/etc/cairn/tls.key' });
 */
export function loadTlsFiles(files: { certFile: string; keyFile: string }): TlsMaterial {
  const cert = read('CAIRN_TLS_CERT', files.certFile);
  const key = read('CAIRN_TLS_KEY', files.keyFile);
  let x509: X509Certificate;
  try {
    // X509Certificate also takes DER, which the TLS listener does not.
    if (!cert.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM block');
    x509 = new X509Certificate(cert);
  } catch {
    throw invalid('CAIRN_TLS_CERT', `${files.certFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw invalid(
      'CAIRN_TLS_KEY',
      `${files.keyFile} holds no usable PEM private key (${(err as Error).message}); a passphrase-protected key is not supported`,
    );
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw invalid(
      'CAIRN_TLS_KEY',
      `${files.keyFile} is not the private key of the certificate in CAIRN_TLS_CERT (${files.certFile})`,
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw invalid('CAIRN_TLS_CERT', `${files.certFile} with ${files.keyFile}: ${(err as Error).message}`);
  }
  return {
    cert,
    key,
    fingerprint: `sha256:${x509.fingerprint256}`,
    notAfter: new Date(x509.validTo).toISOString(),
  };
}
