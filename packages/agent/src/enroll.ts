import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseFingerprint, ServerTrustError, trustedConnection, type ServerTrust } from './session/tls.js';
import { serverBase } from './session/url.js';
import { readCredential, writeCredential, type AgentCredential } from './state/credential.js';

export interface EnrollOptions {
  server: string;
  token: string;
  stateDir: string;
  name?: string;
  force?: boolean;
  hostname?: string;
  /** A PEM file of the CA that signed the control plane's certificate (https only). */
  caFile?: string;
  /** The SHA-256 fingerprint of the control plane's certificate, pinned (https only). */
  fingerprint?: string;
}

/** Raised for anything that stops an enrollment; `exitCode` is what the CLI exits with. */
export class EnrollError extends Error {
  override readonly name = 'EnrollError';
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

const enrolledSchema = z.object({
  agentId: z.string().min(1),
  credential: z.string().min(1),
  zone: z.string().min(1),
  name: z.string().optional(),
});

interface Answer {
  status: number;
  statusText: string;
  text: string;
}

/** Pulls the human message out of an `application/problem+json` error body. */
function problemDetail(res: Answer): string {
  try {
    const body = JSON.parse(res.text) as { detail?: unknown; title?: unknown };
    if (typeof body.detail === 'string' && body.detail !== '') return body.detail;
    if (typeof body.title === 'string' && body.title !== '') return body.title;
  } catch {
    // not JSON: fall through to the status line
  }
  return `HTTP ${res.status} ${res.statusText}`.trim();
}

/**
 * The server trust the enroll flags ask for. Pinning comes only from the operator's flag, never
 * from what a server shows on first contact.
 */
function trustOf(opts: EnrollOptions, https: boolean): ServerTrust | undefined {
  if (opts.caFile !== undefined && opts.fingerprint !== undefined)
    throw new EnrollError('--ca-file and --fingerprint exclude each other: give one', 2);
  if ((opts.caFile !== undefined || opts.fingerprint !== undefined) && !https)
    throw new EnrollError(
      `--${opts.caFile !== undefined ? 'ca-file' : 'fingerprint'} needs an https:// --server (plain http has no certificate to check)`,
      2,
    );
  if (opts.fingerprint !== undefined) {
    const fingerprint = parseFingerprint(opts.fingerprint);
    if (!fingerprint)
      throw new EnrollError(
        `--fingerprint must be the SHA-256 fingerprint of the control plane's certificate (32 bytes, sha256:AB:CD:...), got "${opts.fingerprint}"`,
        2,
      );
    return { fingerprint };
  }
  if (opts.caFile === undefined) return undefined;
  let ca: string;
  try {
    ca = readFileSync(opts.caFile, 'utf8');
  } catch (err) {
    throw new EnrollError(`--ca-file: cannot read ${opts.caFile}: ${(err as Error).message}`, 2);
  }
  try {
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM block');
    new X509Certificate(ca);
  } catch {
    throw new EnrollError(`--ca-file: ${opts.caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`, 2);
  }
  return { ca };
}

/** POSTs JSON; over https the request is written only to a server that passed `trust`. */
function postJson(url: string, body: unknown, trust: ServerTrust | undefined, timeoutMs: number): Promise<Answer> {
  const target = new URL(url);
  const https = target.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(
      target,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        signal: AbortSignal.timeout(timeoutMs),
        ...(https ? { createConnection: trustedConnection(trust) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? '',
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/**
 * Exchanges a one-time enrollment token for this agent's own credential and stores it in
 * `<stateDir>/agent.json` (mode 0600). Refuses to replace an enrolled agent unless `force`;
 * with `force`, the old agent's spool and journal are removed too, since their reports belong
 * to an identity the control plane will no longer accept from this state directory.
 *
 * @example await enroll({ server: 'https://cp.example', token, stateDir: '/var/lib/cairn-agent' });
 */
export async function enroll(opts: EnrollOptions): Promise<AgentCredential> {
  let base: string;
  try {
    const url = new URL(opts.server);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    base = serverBase(opts.server);
  } catch {
    throw new EnrollError(`--server must be an http:// or https:// URL, got "${opts.server}"`, 2);
  }
  const serverTrust = trustOf(opts, base.startsWith('https:'));
  let existing: AgentCredential | undefined;
  try {
    existing = readCredential(opts.stateDir);
  } catch (err) {
    if (!opts.force) throw new EnrollError(`${(err as Error).message}; use --force to enroll anew`);
  }
  if (existing && !opts.force) {
    throw new EnrollError(
      `${opts.stateDir} already holds enrolled agent ${existing.agentId} (zone ${existing.zone}, server ${existing.server}); use --force to replace it`,
    );
  }
  const hostname = opts.hostname ?? os.hostname();
  let res: Answer;
  try {
    res = await postJson(
      `${base}/v1/agents/enroll`,
      { token: opts.token, name: opts.name ?? hostname, hostname },
      serverTrust,
      30_000,
    );
  } catch (err) {
    if (err instanceof ServerTrustError)
      throw new EnrollError(`refusing the control plane at ${base}: ${err.message}; the token was not sent`);
    throw new EnrollError(`cannot reach the control plane at ${base}: ${(err as Error).message}`);
  }
  if (res.status !== 201 && res.status !== 200) throw new EnrollError(problemDetail(res));
  let body: z.infer<typeof enrolledSchema>;
  try {
    body = enrolledSchema.parse(JSON.parse(res.text));
  } catch {
    throw new EnrollError('the control plane answered the enrollment with an unexpected body');
  }
  const credential: AgentCredential = {
    server: base,
    agentId: body.agentId,
    credential: body.credential,
    zone: body.zone,
    name: body.name ?? opts.name ?? hostname,
    ...(serverTrust ? { serverTrust } : {}),
  };
  if (opts.force) {
    // The new identity starts with no reports nor journal of the old one (the log, and the
    // files of agents before it).
    for (const dir of ['wal', 'spool', 'tasks'])
      rmSync(path.join(opts.stateDir, dir), { recursive: true, force: true });
  }
  writeCredential(opts.stateDir, credential);
  return credential;
}
