import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import path from 'node:path';

/** A self-signed server certificate made for one test. */
export interface TestCertificate {
  certFile: string;
  keyFile: string;
  /** The certificate as PEM (a client trusts it as its own CA). */
  pem: string;
  /** `sha256:AB:CD:...`, as the control plane logs it and agents pin it. */
  fingerprint: string;
}

/**
 * A fresh self-signed P-256 certificate for `localhost` and 127.0.0.1, made by openssl (Node's
 * crypto cannot issue certificates) into `<dir>/<name>.crt` and `<dir>/<name>.key`.
 */
export function makeCertificate(dir: string, name: string): TestCertificate {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const pem = fs.readFileSync(certFile, 'utf8');
  return { certFile, keyFile, pem, fingerprint: `sha256:${new X509Certificate(pem).fingerprint256}` };
}

/**
 * A `fetch` for the harness's clients that trusts `ca` (Node's own fetch takes no CA option).
 * Enough for JSON calls: the whole body is read before the answer is returned.
 */
export function fetchTrusting(ca: string): typeof fetch {
  return (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    new Promise((resolve, reject) => {
      const options: RequestOptions = {
        method: init?.method ?? 'GET',
        headers: Object.fromEntries(new Headers(init?.headers).entries()),
        ca,
      };
      const req = request(new URL(input instanceof Request ? input.url : input), options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) {
            for (const one of Array.isArray(v) ? v : v === undefined ? [] : [v]) headers.append(k, one);
          }
          const status = res.statusCode ?? 0;
          const body = chunks.length > 0 && status !== 204 && status !== 304 ? Buffer.concat(chunks) : null;
          resolve(new Response(body, { status, statusText: res.statusMessage ?? '', headers }));
        });
      });
      req.on('error', reject);
      req.end(typeof init?.body === 'string' ? init.body : undefined);
    });
}
