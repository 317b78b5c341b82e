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
  return new ConfigError([`${setting}: ${message}`]);
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
export function loadTlsFiles(files: {
  certFile: string;
  keyFile: string;
  /** Where each file was named (a variable, or a config file and key), for the errors. */
  certSetting?: string;
  keySetting?: string;
}): TlsMaterial {
  const { certSetting = 'CAIRN_TLS_CERT', keySetting = 'CAIRN_TLS_KEY' } = files;
  const cert = read(certSetting, files.certFile);
  const key = read(keySetting, files.keyFile);
  let x509: X509Certificate;
  try {
    // X509Certificate also takes DER, which the TLS listener does not.
    if (!cert.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM block');
    x509 = new X509Certificate(cert);
  } catch {
    throw invalid(certSetting, `${files.certFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw invalid(
      keySetting,
      `${files.keyFile} holds no usable PEM private key (${(err as Error).message}); a passphrase-protected key is not supported`,
    );
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw invalid(
      keySetting,
      `${files.keyFile} is not the private key of the certificate in ${certSetting} (${files.certFile})`,
    );
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw invalid(certSetting, `${files.certFile} with ${files.keyFile}: ${(err as Error).message}`);
  }
  return {
    cert,
    key,
    fingerprint: `sha256:${x509.fingerprint256}`,
    notAfter: new Date(x509.validTo).toISOString(),
  };
}
