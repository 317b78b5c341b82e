import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createServer, type Server } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enroll, EnrollError } from '../enroll.js';
import { connectTrusted, parseFingerprint, refusal, ServerTrustError } from './tls.js';

const A = `sha256:${Array(32).fill('AA').join(':')}`;
const B = `sha256:${Array(32).fill('BB').join(':')}`;

describe('server trust rules', () => {
  it.each([
    [A, A],
    [A.toLowerCase(), A],
    ['aa'.repeat(32), A],
    [`SHA256:${'aa'.repeat(32)}`, A],
    [`  ${A}  `, A],
    ['aa'.repeat(31), undefined],
    ['aa'.repeat(33), undefined],
    [`sha1:${'aa'.repeat(32)}`, undefined],
    ['zz'.repeat(32), undefined],
    ['', undefined],
  ])('reads the fingerprint %j as %j', (raw, expected) => {
    expect(parseFingerprint(raw)).toBe(expected);
  });

  it.each([
    { trust: { fingerprint: A }, presented: { fingerprint: A, verifyError: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, ok: true },
    {
      trust: { fingerprint: A },
      presented: { fingerprint: B, verifyError: undefined },
      ok: false,
      says: `${B}, not the pinned ${A}`,
    },
    { trust: { ca: 'pem' }, presented: { fingerprint: B, verifyError: undefined }, ok: true },
    {
      trust: { ca: 'pem' },
      presented: { fingerprint: B, verifyError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' },
      ok: false,
      says: 'not trusted by the CA certificate given at enrollment',
    },
    { trust: undefined, presented: { fingerprint: B, verifyError: undefined }, ok: true },
    {
      trust: undefined,
      presented: { fingerprint: B, verifyError: 'DEPTH_ZERO_SELF_SIGNED_CERT' },
      ok: false,
      says: `--fingerprint ${B}`,
    },
  ])('trust $trust and a server presenting $presented: ok=$ok', ({ trust, presented, ok, says }) => {
    const problem = refusal(trust, presented);
    if (ok) expect(problem).toBeUndefined();
    else expect(problem).toContain(says);
  });
});

interface Cert {
  cert: string;
  key: string;
  fingerprint: string;
}

function makeCert(dir: string, name: string, altNames = 'IP:127.0.0.1,DNS:localhost'): Cert {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'],
      ...['-subj', '/CN=localhost', '-addext', `subjectAltName=${altNames}`],
      ...['-keyout', keyFile, '-out', certFile],
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const cert = fs.readFileSync(certFile, 'utf8');
  return {
    cert,
    key: fs.readFileSync(keyFile, 'utf8'),
    fingerprint: `sha256:${new X509Certificate(cert).fingerprint256}`,
  };
}

/** A TLS server presenting `cert` that counts the application bytes it receives. */
async function recordingServer(
  cert: Cert,
): Promise<{ server: Server; port: number; received: () => string; closed: () => Promise<void> }> {
  let data = '';
  const sockets: Promise<void>[] = [];
  const server = createServer({ cert: cert.cert, key: cert.key }, (s) => {
    s.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
    s.on('error', () => {});
  });
  server.on('connection', (raw: Socket) => sockets.push(new Promise((resolve) => raw.once('close', () => resolve()))));
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    received: () => data,
    closed: async () => {
      await Promise.all(sockets);
    },
  };
}

describe('connecting to a control plane over TLS (real sockets)', () => {
  let dir: string;
  let good: Cert;
  let other: Cert;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-agent-tls-'));
    good = makeCert(dir, 'good');
    other = makeCert(dir, 'other');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('hands over a socket only for the pinned certificate, and writes nothing to another', async () => {
    const srv = await recordingServer(other);
    try {
      const target = { host: '127.0.0.1', port: srv.port };
      await expect(connectTrusted(target, { fingerprint: good.fingerprint })).rejects.toThrow(ServerTrustError);
      await expect(connectTrusted(target, { ca: good.cert })).rejects.toThrow(/not trusted by the CA certificate/);
      await expect(connectTrusted(target, undefined)).rejects.toThrow(/not trusted by the system CAs/);
      await srv.closed();
      expect(srv.received()).toBe('');

      // The same server, pinned right: what is written arrives.
      const socket = await connectTrusted(target, { fingerprint: other.fingerprint });
      socket.end('hello');
      await srv.closed();
      expect(srv.received()).toBe('hello');
    } finally {
      srv.server.close();
    }
  });

  it('checks the host name against a CA-verified certificate', async () => {
    const elsewhere = makeCert(dir, 'elsewhere', 'DNS:cairn.example.com');
    const srv = await recordingServer(elsewhere);
    try {
      await expect(connectTrusted({ host: '127.0.0.1', port: srv.port }, { ca: elsewhere.cert })).rejects.toThrow(
        /not trusted by the CA certificate.*127\.0\.0\.1 is not in the cert's list/,
      );
      await srv.closed();
      expect(srv.received()).toBe('');
      // By name, against the right certificate, it connects.
      const named = await recordingServer(good);
      const ok = await connectTrusted({ host: 'localhost', port: named.port }, { ca: good.cert });
      ok.destroy();
      named.server.close();
    } finally {
      srv.server.close();
    }
  });

  it('enrolls with no byte of the token sent to a server that fails the pin', async () => {
    const srv = await recordingServer(other);
    try {
      const stateDir = path.join(dir, 'state');
      const attempt = enroll({
        server: `https://127.0.0.1:${srv.port}`,
        token: 'enroll-token-that-must-not-leak',
        stateDir,
        fingerprint: good.fingerprint,
      });
      await expect(attempt).rejects.toThrow(EnrollError);
      await expect(attempt).rejects.toThrow(
        `presented certificate ${other.fingerprint}, not the pinned ${good.fingerprint}`,
      );
      await srv.closed();
      expect(srv.received()).toBe('');
      expect(fs.existsSync(path.join(stateDir, 'agent.json'))).toBe(false);
    } finally {
      srv.server.close();
    }
  });

  it.each([
    [{ caFile: '/nonexistent/ca.pem' }, 'https', /--ca-file: cannot read/],
    [{ fingerprint: 'abc' }, 'https', /--fingerprint must be the SHA-256 fingerprint/],
    [{ fingerprint: A }, 'http', /--fingerprint needs an https:\/\/ --server/],
    [{ fingerprint: A, caFile: '/x' }, 'https', /exclude each other/],
  ])('refuses the enroll flags %j with %s as a usage error', async (flags, scheme, message) => {
    const attempt = enroll({
      server: `${scheme}://127.0.0.1:1`,
      token: 't',
      stateDir: path.join(dir, 'never'),
      ...flags,
    });
    await expect(attempt).rejects.toThrow(message);
    await expect(attempt).rejects.toMatchObject({ exitCode: 2 });
  });
});
