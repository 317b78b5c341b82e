import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { serverBase } from './session/url.js';
import { readCredential, writeCredential, type AgentCredential } from './state/credential.js';

export interface EnrollOptions {
  server: string;
  token: string;
  stateDir: string;
  name?: string;
  force?: boolean;
  hostname?: string;
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

/** Pulls the human message out of an `application/problem+json` error body. */
async function problemDetail(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { detail?: unknown; title?: unknown };
    if (typeof body.detail === 'string' && body.detail !== '') return body.detail;
    if (typeof body.title === 'string' && body.title !== '') return body.title;
  } catch {
    // not JSON: fall through to the status line
  }
  return `HTTP ${res.status} ${res.statusText}`.trim();
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
  let res: Response;
  try {
    res = await fetch(`${base}/v1/agents/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ token: opts.token, name: opts.name ?? hostname, hostname }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new EnrollError(`cannot reach the control plane at ${base}: ${cause ?? (err as Error).message}`);
  }
  if (res.status !== 201 && res.status !== 200) throw new EnrollError(await problemDetail(res));
  let body: z.infer<typeof enrolledSchema>;
  try {
    body = enrolledSchema.parse(await res.json());
  } catch {
    throw new EnrollError('the control plane answered the enrollment with an unexpected body');
  }
  const credential: AgentCredential = {
    server: base,
    agentId: body.agentId,
    credential: body.credential,
    zone: body.zone,
    name: body.name ?? opts.name ?? hostname,
  };
  if (opts.force) {
    rmSync(path.join(opts.stateDir, 'spool'), { recursive: true, force: true });
    rmSync(path.join(opts.stateDir, 'tasks'), { recursive: true, force: true });
  }
  writeCredential(opts.stateDir, credential);
  return credential;
}
