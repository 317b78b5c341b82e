import type { ClientRequestArgs } from 'node:http';
import { isIP } from 'node:net';
import { checkServerIdentity, connect, type TLSSocket } from 'node:tls';

/**
 * How the agent knows it reaches its own control plane over https:// and wss://, chosen by the
 * operator at enrollment and kept with the credential: a CA (PEM) the server's certificate must
 * chain to, its name checked as well; or the SHA-256 fingerprint of the server's certificate
 * itself (`sha256:AB:CD:...`). Without either, the system CAs.
 */
export type ServerTrust = { ca: string } | { fingerprint: string };

/**
 * The canonical `sha256:AB:CD:...` form of a SHA-256 certificate fingerprint as an operator may
 * type it (upper or lower case, with or without colons or the `sha256:` prefix); undefined when
 * it is not one.
 *
 * @example parseFingerprint('ab' + 'cd'.repeat(31)) // → 'sha256:AB:CD:CD:...'
 */
export function parseFingerprint(raw: string): string | undefined {
  const hex = raw
    .trim()
    .replace(/^sha256:/i, '')
    .replace(/:/g, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return undefined;
  return `sha256:${hex.toUpperCase().match(/../g)!.join(':')}`;
}

/** What the server showed in its handshake. */
export interface PresentedCertificate {
  /** SHA-256 of its certificate, `sha256:AB:CD:...`. */
  fingerprint: string;
  /** Why Node's check (chain to the CAs, then host name) failed; undefined when it passed. */
  verifyError: string | undefined;
}

/**
 * The reason to refuse a server, or undefined to go on. Pure. A pinned fingerprint is the whole
 * identity (it is the operator's word for this one certificate, whoever issued it); otherwise
 * the chain and host name must verify against the CA given at enrollment or the system CAs.
 *
 * @example refusal({ fingerprint: 'sha256:AA:...' }, { fingerprint: 'sha256:BB:...', verifyError: undefined })
 * // → 'the control plane presented certificate sha256:BB:..., not the pinned sha256:AA:...'
 */
export function refusal(trust: ServerTrust | undefined, presented: PresentedCertificate): string | undefined {
  if (trust && 'fingerprint' in trust) {
    if (presented.fingerprint === trust.fingerprint) return undefined;
    return `the control plane presented certificate ${presented.fingerprint}, not the pinned ${trust.fingerprint}`;
  }
  if (presented.verifyError === undefined) return undefined;
  const by = trust ? 'the CA certificate given at enrollment (--ca-file)' : 'the system CAs';
  const advice = trust
    ? ''
    : `; if that is your control plane's certificate (it logs its fingerprint at start), enroll with --ca-file <its CA certificate> or --fingerprint ${presented.fingerprint}`;
  return `the control plane's certificate is not trusted by ${by}: ${presented.verifyError}; it presented ${presented.fingerprint}${advice}`;
}

/** The server failed the trust check; nothing was written to it. */
export class ServerTrustError extends Error {
  override readonly name = 'ServerTrustError';
}

/**
 * Opens a TLS connection and resolves only once the server passed `trust`. Node is told not to
 * reject on its own so that the refusal can name what the server presented; in exchange nothing
 * is written to the socket before this check, which is what keeps a credential from ever
 * reaching a server that has not proved who it is.
 */
export function connectTrusted(
  target: { host: string; port: number },
  trust: ServerTrust | undefined,
  timeoutMs = 10_000,
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    let nameError: Error | undefined;
    const socket = connect({
      host: target.host,
      port: target.port,
      ...(isIP(target.host) ? {} : { servername: target.host }),
      ...(trust && 'ca' in trust ? { ca: trust.ca } : {}),
      rejectUnauthorized: false,
      checkServerIdentity: (host, cert) => (nameError = checkServerIdentity(host, cert)),
      ALPNProtocols: ['http/1.1'],
    });
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error(`no TLS handshake with ${target.host}:${target.port} within ${timeoutMs} ms`)),
    );
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate();
      const problem = refusal(trust, {
        fingerprint: `sha256:${cert.fingerprint256}`,
        verifyError: socket.authorized
          ? undefined
          : (nameError?.message ?? String(socket.authorizationError ?? 'not verified')),
      });
      if (problem) {
        socket.destroy();
        reject(new ServerTrustError(problem));
        return;
      }
      socket.setTimeout(0);
      socket.removeListener('error', reject);
      resolve(socket);
    });
  });
}

/**
 * A `createConnection` for `https.request` (and `ws`, which hands it on) that connects through
 * {@link connectTrusted}: the request, with its credential, is written only to a verified socket.
 */
export function trustedConnection(
  trust: ServerTrust | undefined,
  timeoutMs?: number,
): NonNullable<ClientRequestArgs['createConnection']> {
  return (options, done) => {
    const host = options.host ?? options.hostname ?? 'localhost';
    connectTrusted({ host, port: Number(options.port ?? 443) }, trust, timeoutMs).then(
      (socket) => done(null, socket),
      // Node reads no socket beside an error (its typings ask for one anyway).
      (err: Error) => (done as (err: Error) => void)(err),
    );
    return undefined;
  };
}
